#!/usr/bin/env bash
# fix_wheel_cmake.sh VENV: make the ROS PyPI wheels' CMake exports usable for building interfaces.
# The wheels were built in a manylinux container; their exported targets name that container's
# Python and numpy include dirs (/opt/python/cp311-cp311/...), which do not exist here, and
# CMake's generate step fails on a missing INTERFACE_INCLUDE_DIRECTORIES entry. Rewrite them to
# this venv's real dirs. Idempotent: a second run finds nothing to rewrite.
set -euo pipefail
VENV=$(realpath "${1:?usage: fix_wheel_cmake.sh VENV}")
PY=$VENV/bin/python
BAD=/opt/python/cp311-cp311
pyinc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$PY" -c 'import numpy; print(numpy.get_include())')
dirs=()
for d in "$VENV"/share/*/cmake "$VENV"/lib/cmake; do [[ -d $d ]] && dirs+=("$d"); done
files=$(grep -rlF "$BAD" "${dirs[@]}" 2>/dev/null || true)
if [[ -z $files ]]; then echo "fix_wheel_cmake: nothing to rewrite in $VENV"; exit 0; fi
# numpy first: its path starts with the Python prefix rewritten by the second expression
echo "$files" | tr '\n' '\0' | xargs -0 sed -i \
  -e "s#$BAD/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
  -e "s#$BAD/include/python3.11#$pyinc#g"
left=$(grep -rlF "$BAD" "${dirs[@]}" 2>/dev/null || true)
[[ -z $left ]] || { echo "fix_wheel_cmake: unknown $BAD paths left in:"; echo "$left"; exit 1; } >&2
echo "fix_wheel_cmake: rewrote $(echo "$files" | wc -l) file(s) in $VENV"
