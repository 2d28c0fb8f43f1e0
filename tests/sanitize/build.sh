#!/usr/bin/env bash
# Builds the core unit tests (and hone-cli, which several of them run) again with gcc's
# AddressSanitizer + UndefinedBehaviorSanitizer into BUILD, beside the main build and without
# touching it. -O1 -g1: -O0 would leave Hone's own CPU kernels too slow to train the tests' models,
# and line tables are all a report needs (full -g took a quarter longer to compile).
# usage: build.sh SOURCE BUILD TEST_WORK CXX TARGET...
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
src=$1
build=$2
work=$3
cxx=$4
shift 4
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DHONE_BUILD_GUI=OFF -DHONE_TEST_WORK="$work" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
start=$(date +%s)
cmake --build "$build" -j"$(nproc)" --target "$@"
echo "sanitize_build: built $# test executables with ASan + UBSan into $build in $(($(date +%s) - start)) s"
