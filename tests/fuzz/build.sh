#!/usr/bin/env bash
# Configures and builds the fuzz targets (tests/fuzz, clang + libFuzzer + ASan/UBSan) into BUILD.
# Exits 77 (CTest: skipped) with the reason in BUILD/skipped when there is no clang or no libFuzzer
# runtime (Debian: clang-14 libclang-rt-14-dev). MAIN_LIBS: the main build's folder of
# libhone_*.a, for fuzz_run_config.
# usage: build.sh BUILD [MAIN_LIBS]
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=$1
main_libs=${2:-}
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build"
rm -f "$build/skipped"

skip() {
  echo "fuzz_build: skipped: $*"
  echo "$*" >"$build/skipped"
  exit 77
}

cxx=${HONE_FUZZ_CXX:-}
if [[ -z $cxx ]]; then
  for c in clang++-14 clang++; do
    if command -v "$c" >/dev/null; then
      cxx=$(command -v "$c")
      break
    fi
  done
fi
[[ -n $cxx ]] || skip "no clang++ (apt-get install clang-14 libclang-rt-14-dev)"

# libFuzzer and the sanitizer runtimes come in libclang-rt-14-dev, not with clang itself.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' >"$probe/p.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
  cat "$probe/err" >&2
  skip "$cxx cannot link -fsanitize=fuzzer,address,undefined (apt-get install libclang-rt-14-dev)"
fi

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake "${gen[@]}" -S "$src" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DHONE_MAIN_LIBS="$main_libs"
else
  cmake -S "$src" -B "$build" -DHONE_MAIN_LIBS="$main_libs" >/dev/null
fi
cmake --build "$build" -j "$(nproc)"
echo "fuzz_build: built $(grep -c . "$build/targets.txt") targets into $build: $(tr '\n' ' ' <"$build/targets.txt")"
