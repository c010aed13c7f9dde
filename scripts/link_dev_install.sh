#!/usr/bin/env bash
# link_dev_install.sh PREFIX [REPO]: complete a pip install of mirage_ros in PREFIX (a venv)
# with the layout ros2 run / ros2 launch / ament_index expect, as colcon --symlink-install does:
#   PREFIX/lib/mirage_ros/<console script> -> PREFIX/bin/<console script>
#     (pip puts console scripts in bin/ whatever setup.cfg says; ros2 run looks in lib/<pkg>/)
#   with REPO (editable installs, whose wheels carry no data_files):
#   PREFIX/share/ament_index/resource_index/packages/mirage_ros   (the ament index marker)
#   PREFIX/share/mirage_ros/package.xml -> REPO/package.xml
#   PREFIX/share/mirage_ros/launch/X.launch.py -> REPO/launch/X.launch.py, same for
#     config/*.yaml and config/*.rviz (the globs of setup.py): edits show up at once, a new or
#     removed file needs a re-run (make does it). Folders are real, files are links, as with
#     colcon --symlink-install: ros2 launch finds files with os.walk, which skips linked folders.
# Idempotent.
set -euo pipefail
PREFIX=$(realpath "${1:?usage: link_dev_install.sh PREFIX [REPO]}")
REPO=${2:+$(realpath "$2")}
PKG=mirage_ros

# console scripts as pip recorded them: [console_scripts] of the dist-info's entry_points.txt
shopt -s nullglob
eps=("$PREFIX"/lib/python3*/site-packages/"$PKG"-*.dist-info/entry_points.txt)
[[ ${#eps[@]} == 1 ]] || { echo "link_dev_install: expected one $PKG dist-info in $PREFIX, found ${#eps[@]}" >&2; exit 1; }
scripts=$(awk '/^\[/{on = ($0 == "[console_scripts]"); next} on && /=/{sub(/ *=.*/, ""); print}' "${eps[0]}")
[[ -n $scripts ]] || { echo "link_dev_install: $PKG has no console scripts in $PREFIX" >&2; exit 1; }
mkdir -p "$PREFIX/lib/$PKG"
for s in $scripts; do
  [[ -e $PREFIX/bin/$s ]] || { echo "link_dev_install: $PREFIX/bin/$s missing" >&2; exit 1; }
  ln -sfn "../../bin/$s" "$PREFIX/lib/$PKG/$s"
done
find "$PREFIX/lib/$PKG" -xtype l -delete  # executables that setup.py no longer declares

if [[ -n $REPO ]]; then
  index=$PREFIX/share/ament_index/resource_index/packages
  share=$PREFIX/share/$PKG
  mkdir -p "$index" "$share"
  cp "$REPO/resource/$PKG" "$index/$PKG"
  ln -sfn "$REPO/package.xml" "$share/package.xml"
  for spec in "launch:*.launch.py" "config:*.yaml" "config:*.rviz"; do
    folder=${spec%%:*} pattern=${spec#*:}
    # a link to the whole folder (older versions of this script) would make us write into REPO
    [[ -L $share/$folder ]] && rm "$share/$folder"
    mkdir -p "$share/$folder"
    for f in "$REPO/$folder"/$pattern; do ln -sfn "$f" "$share/$folder/"; done
  done
  find "$share/launch" "$share/config" -xtype l -delete  # links to files deleted from REPO
fi
echo "link_dev_install: $(wc -w <<< "$scripts") executables linked in $PREFIX/lib/$PKG${REPO:+, share/$PKG linked to $REPO}"
