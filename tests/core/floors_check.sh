#!/usr/bin/env bash
# Each floor of core/ sees only itself and the floors below it (core/CMakeLists.txt): from a
# floor's include root, a header of a higher floor is not found, and one of every floor it may
# use is. Usage: floors_check.sh CXX CORE_DIR FLOORS_DIR "floor:allowed,allowed|..." [-I dirs...]
# SPDX-License-Identifier: GPL-3.0-or-later
set -u
cxx=$1 core=$2 floors=$3 table=$4
shift 4
incs=("$@")  # libtorch's and the other libraries' headers, for the headers that are found
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 checked=0
all=$(cd "$core" && ls -d */ | tr -d /)
IFS='|' read -ra rows <<<"${table%|}"
for row in "${rows[@]}"; do
  floor=${row%%:*}
  allowed=",${row#*:},"
  for other in $all; do
    header=$(cd "$core/$other" && ls *.h 2>/dev/null | head -1)
    [[ -z $header ]] && continue
    printf '#include "%s/%s"\n' "$other" "$header" >"$tmp/probe.cpp"
    checked=$((checked + 1))
    if [[ $allowed == *",$other,"* ]]; then
      if ! out=$("$cxx" -std=c++17 -E -I "$floors/$floor" "${incs[@]}" "$tmp/probe.cpp" -o /dev/null 2>&1); then
        echo "FAIL: floor $floor should see $other/$header: $out" | head -3
        fail=1
      fi
    else
      out=$("$cxx" -std=c++17 -E -I "$floors/$floor" "${incs[@]}" "$tmp/probe.cpp" -o /dev/null 2>&1)
      if [[ $? -eq 0 || $out != *"$other/$header: No such file"* ]]; then
        echo "FAIL: floor $floor can include $other/$header (a higher or unrelated floor)"
        fail=1
      fi
    fi
  done
done
echo "$checked includes checked across ${#rows[@]} floors"
((checked > 0)) || fail=1
exit $fail
