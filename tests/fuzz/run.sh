#!/usr/bin/env bash
# Runs one fuzz target as CTest does: every input under regressions/TARGET once, then libFuzzer on
# a scratch copy of corpus/TARGET (the tree is never written) for SECONDS, with its dictionary.
# A crash, leak, timeout, out-of-memory or UBSan report fails the test; the input is kept in
# BUILD/artifacts/TARGET/. Exits 77 (skipped) when fuzz_build was skipped.
# usage: run.sh BUILD TARGET SECONDS
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=$1
target=$2
seconds=$3
src=$(cd "$(dirname "$0")" && pwd)
bin=$build/fuzz_$target

if [[ -f $build/skipped ]]; then
  echo "fuzz_$target: skipped: $(cat "$build/skipped")"
  exit 77
fi
if [[ ! -x $bin ]]; then
  if [[ -f $build/targets.txt ]] && ! grep -qx "$target" "$build/targets.txt"; then
    echo "fuzz_$target: skipped: not configured in $build (see its CMake output)"
    exit 77
  fi
  echo "fuzz_$target: $bin is missing; run the fuzz_build test first"
  exit 1
fi

artifacts=$build/artifacts/$target
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/hone-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
# UB and leaks are failures; libFuzzer's own exit codes must not read as CTest's skip (77).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# A fixed seed (HONE_FUZZ_SEED, default 1): the same inputs in the same order each run, so a CI
# finding is met again by rerunning the test (how far it gets still depends on the machine's speed).
opts=(-seed="${HONE_FUZZ_SEED:-1}" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -error_exitcode=1 -timeout_exitcode=1
      -artifact_prefix="$artifacts/" -print_final_stats=1)
[[ -f $src/$target.dict ]] && opts+=(-dict="$src/$target.dict")

shopt -s nullglob
regressions=("$src/regressions/$target"/*)
if ((${#regressions[@]})); then
  echo "fuzz_$target: replaying ${#regressions[@]} regression input(s)"
  "$bin" "${opts[@]}" "${regressions[@]}"
fi

mkdir -p "$work/corpus"
cp "$src/corpus/$target"/* "$work/corpus/"
echo "fuzz_$target: fuzzing for ${seconds}s from $(ls "$work/corpus" | wc -l) seed(s)"
"$bin" "${opts[@]}" -max_total_time="$seconds" "$work/corpus"
