#!/usr/bin/env bash
# Fuzzes every target (or those named) for SECONDS each, JOBS at a time, through run.sh, and prints
# a Markdown table of executions, executions/s, coverage (cov: edges, ft: features), the final
# corpus and findings: the figures in docs/reliability.md "Fuzzing". Logs: BUILD/long/TARGET.log.
# usage: long.sh BUILD SECONDS [JOBS] [TARGET...]   (BUILD: a fuzz build, e.g. build/fuzz)
# SPDX-License-Identifier: GPL-3.0-or-later
set -uo pipefail
build=$(cd "$1" && pwd)
seconds=$2
jobs=${3:-2}
shift $(($# < 3 ? $# : 3))
src=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in "$src"/fuzz_*.cpp; do
    t=$(basename "$f" .cpp)
    targets+=("${t#fuzz_}")
  done
fi
mkdir -p "$build/long"

one() {
  local t=$1 start rc
  start=$(date +%s)
  # A different seed from CI's: these runs should go where the CI's 30 s do not.
  HONE_FUZZ_SEED=${HONE_FUZZ_SEED:-$RANDOM} bash "$src/run.sh" "$build" "$t" "$seconds" >"$build/long/$t.log" 2>&1
  rc=$?
  echo "$rc $(($(date +%s) - start))" >"$build/long/$t.rc"
}

running=0
for t in "${targets[@]}"; do
  one "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
done
wait

echo "| target | seconds | executions | exec/s | cov | ft | corpus (files) | seeds | finding |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for t in "${targets[@]}"; do
  log=$build/long/$t.log
  read -r rc took <"$build/long/$t.rc"
  execs=$(awk '/^stat::number_of_executed_units:/ {v = $2} END {print v}' "$log")
  rate=$(awk '/^stat::average_exec_per_sec:/ {v = $2} END {print v}' "$log")
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | awk '{print $2}')
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | awk '{print $2}')
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | awk '{print $2}')
  seeds=$(grep -o 'from [0-9]* seed' "$log" | awk '{print $2}')
  finding=none
  if [[ $rc != 0 ]]; then
    finding=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$log" | cut -c1-80)
    finding=${finding:-exit $rc}
  fi
  echo "| $t | $took | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${seeds:-?} | $finding |"
done
