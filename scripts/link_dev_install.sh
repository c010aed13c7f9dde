#!/usr/bin/env bash
# link_dev_install.sh PREFIX [REPO]: complete a pip install of mirage_ros in PREFIX (a venv)
# with the layout ros2 run / ros2 launch / ament_index expect, as colcon --symlink-install does:
#   PREFIX/lib/mirage_ros/<console script> -> PREFIX/bin/<console script>
#     (pip puts console scripts in bin/ whatever setup.cfg says; ros2 run looks in lib/<pkg>/)
#   with REPO (editable installs, whose wheels carry no data_files):
#   PREFIX/share/ament_index/resource_index/packages/mirage_ros   (the ament index marker)
#   PREFIX/share/mirage_ros/{package.xml,launch,config} -> REPO/...  (edits show up at once)
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

if [[ -n $REPO ]]; then
  index=$PREFIX/share/ament_index/resource_index/packages
  mkdir -p "$index" "$PREFIX/share/$PKG"
  cp "$REPO/resource/$PKG" "$index/$PKG"
  for f in package.xml launch config; do ln -sfn "$REPO/$f" "$PREFIX/share/$PKG/$f"; done
fi
echo "link_dev_install: $(wc -w <<< "$scripts") executables linked in $PREFIX/lib/$PKG${REPO:+, share/$PKG linked to $REPO}"
