# source scripts/env.sh [VENV]: use the venv that `make setup` built in this shell: activates it
# and makes it an ament prefix (AMENT_PREFIX_PATH: ros2 run/launch, ament_index; LD_LIBRARY_PATH:
# the message libraries built into it). Afterwards: mirage-ros --help, sim_camera, pytest...
# With a ROS install, source its setup.bash first.
_mirage_repo=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
_mirage_venv=$(cd "${1:-$_mirage_repo/.venv}" 2>/dev/null && pwd) || {
  echo "scripts/env.sh: no venv at ${1:-$_mirage_repo/.venv}: run 'make setup' first" >&2; return 1; }
# shellcheck disable=SC1091
source "$_mirage_venv/bin/activate"
case ":${AMENT_PREFIX_PATH:-}:" in *":$_mirage_venv:"*) ;; *)
  export AMENT_PREFIX_PATH=$_mirage_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH} ;; esac
case ":${LD_LIBRARY_PATH:-}:" in *":$_mirage_venv/lib:"*) ;; *)
  export LD_LIBRARY_PATH=$_mirage_venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ;; esac
unset _mirage_repo _mirage_venv
