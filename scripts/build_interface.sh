#!/usr/bin/env bash
# build_interface.sh VENV PACKAGE_DIR: build one ROS interface package (ament_cmake + rosidl)
# with CMake and install it into VENV, the way colcon would install it into install/.
# Where no ROS is sourced, the ROS PyPI wheels in VENV provide ament_cmake and the rosidl
# generators (run scripts/fix_wheel_cmake.sh VENV first); with ROS sourced, CMAKE_PREFIX_PATH
# from the environment is searched after VENV.
# A tf2_msgs package is a stand-in (scripts/interfaces/tf2_msgs): it is built only if no
# tf2_msgs is importable, or if the importable one is our own earlier build.
set -euo pipefail
VENV=$(realpath "${1:?usage: build_interface.sh VENV PACKAGE_DIR}")
SRC=$(realpath "${2:?usage: build_interface.sh VENV PACKAGE_DIR}")
PY=$VENV/bin/python
NAME=$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$SRC/package.xml" | head -1)
BUILD=$VENV/.build/$NAME

if [[ $NAME == tf2_msgs ]]; then
  # the stand-in's install is marked with share/tf2_msgs/mirage_ros_standin.xml
  where=$("$PY" -c 'import tf2_msgs, os; print(os.path.dirname(tf2_msgs.__file__))' 2>/dev/null || true)
  if [[ -n $where && ! -e $VENV/share/tf2_msgs/mirage_ros_standin.xml ]]; then
    echo "build_interface: tf2_msgs already installed ($where): using it, stand-in not built"
    exit 0
  fi
fi

t=$SECONDS
mkdir -p "$BUILD"
# generators and the wheels' Python helpers must run with VENV's interpreter
export PATH=$VENV/bin:$PATH
export CMAKE_PREFIX_PATH=$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
export AMENT_PREFIX_PATH=$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
LOG=$BUILD/build.log
{
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY"
  cmake --build "$BUILD" -j"$(nproc)" --target install
} > "$LOG" 2>&1 || { tail -40 "$LOG" >&2; echo "build_interface: $NAME failed (full log: $LOG)" >&2; exit 1; }
# instantiating each message (service request) loads its C type support: the install is usable
LD_LIBRARY_PATH=$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$PY" -c "
import importlib
loaded = 0
for kind in ('msg', 'srv'):
    try:
        module = importlib.import_module('$NAME.' + kind)
    except ModuleNotFoundError:
        continue
    for name in [n for n in dir(module) if n[:1].isupper()]:
        interface = getattr(module, name)
        getattr(interface, 'Request', interface)()  # a service: its request
        loaded += 1
assert loaded, 'no interfaces generated'" \
  || { echo "build_interface: $NAME built but its interfaces do not load" >&2; exit 1; }
echo "build_interface: $NAME installed into $VENV ($((SECONDS - t)) s)"
