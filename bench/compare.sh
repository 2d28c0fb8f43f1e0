#!/usr/bin/env bash
# Side-by-side training throughput: hone-cli bench vs the eager PyTorch script, interleaved
# (this machine's speed drifts between runs), 3 rounds each; prints the medians and the ratio.
# usage: bench/compare.sh [BUILD_DIR] [--method lora|full] [extra bench flags...]
set -euo pipefail
build=${1:-build}; shift || true
method=lora
args=()
while (($#)); do
  case $1 in --method) method=$2; shift 2 ;; *) args+=("$1"); shift ;; esac
done
here=$(dirname "$0")
hone=(); torch=()
for round in 1 2 3; do
  hone+=("$("$build/bin/hone-cli" bench --method "$method" --json "${args[@]}")")
  torch+=("$(/usr/bin/python3 "$here/bench_train.py" --method "$method" "${args[@]}")")
done
/usr/bin/python3 - "$method" "${hone[@]}" "${torch[@]}" <<'PY'
import json, statistics, sys
method, rows = sys.argv[1], [json.loads(r) for r in sys.argv[2:]]
h = [r for r in rows if "mfu" in r]; t = [r for r in rows if r.get("impl") == "pytorch-eager"]
hm = statistics.median(r["tokens_per_s"] for r in h); tm = statistics.median(r["tokens_per_s"] for r in t)
print(json.dumps({"method": method, "hone_tokens_per_s": round(hm, 1), "pytorch_tokens_per_s": round(tm, 1),
                  "ratio": round(hm / tm, 2), "hone_mfu": round(statistics.median(r["mfu"] for r in h), 2),
                  "hone_runs": [round(r["tokens_per_s"]) for r in h], "pytorch_runs": [round(r["tokens_per_s"]) for r in t],
                  "pytorch_threads": t[0]["threads"], "hone_threads": h[0]["threads"]}))
PY
