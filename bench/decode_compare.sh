#!/usr/bin/env bash
# Decoding speed of Hone beside llama.cpp on the same weights (docs/performance.md): for each dtype,
# `hone-cli bench --generate --model DIR --dtype D` and bench/decode_llama_cpp.mjs on the GGUF file
# of the same model in that dtype (`hone-cli export --format gguf --dtype f32|bf16`), interleaved,
# --rounds times; prints one JSON line per dtype with the medians and the ratio.
# Needs node-llama-cpp 3.21.1 (tests/interop/setup.sh puts it in build/interop).
# usage: bench/decode_compare.sh [BUILD_DIR] --model DIR [--gguf-f32 FILE] [--gguf-bf16 FILE]
#                                [--rounds 3] [--prompt-tokens 64] [--new-tokens 128]
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=build
[[ $# -gt 0 && $1 != --* ]] && { build=$1; shift; }
model=""; f32=""; bf16=""; rounds=3; prompt=64; new=128
while (($#)); do
  case $1 in
    --model) model=$2; shift 2 ;;
    --gguf-f32) f32=$2; shift 2 ;;
    --gguf-bf16) bf16=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --prompt-tokens) prompt=$2; shift 2 ;;
    --new-tokens) new=$2; shift 2 ;;
    *) echo "decode_compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $model ]] || { echo "decode_compare.sh: --model DIR is required" >&2; exit 2; }
here=$(dirname "$0")
threads=$(nproc)
# The same prompt length for both; which ids they are does not change a step's cost.
ids=$(/usr/bin/python3 -c "import random; random.seed(7); print([random.randrange(1000, 20000) for _ in range($prompt)])")
for dtype in f32 bf16; do
  gguf=$f32; [[ $dtype == bf16 ]] && gguf=$bf16
  [[ -n $gguf ]] || continue
  hone=(); llama=()
  for ((r = 1; r <= rounds; ++r)); do
    hone+=("$("$build/bin/hone-cli" bench --generate --model "$model" --dtype "$dtype" --prompt-tokens "$prompt" \
               --new-tokens "$new" --batch 8 --steps 1 --json)")
    llama+=("$(node "$here/decode_llama_cpp.mjs" "$gguf" "$ids" "$new" "$threads")")
  done
  /usr/bin/python3 - "$dtype" "$rounds" "${hone[@]}" "${llama[@]}" <<'PY'
import json, statistics, sys
dtype, n, rows = sys.argv[1], int(sys.argv[2]), [json.loads(r) for r in sys.argv[3:]]
h, l = rows[:n], rows[n:]
hs = statistics.median(r["single_decode_tokens_per_s"] for r in h)
hb = statistics.median(r["batch_decode_tokens_per_s"] for r in h)
ls = statistics.median(r["decode_tokens_per_s"] for r in l)
print(json.dumps({"dtype": dtype, "hone_single_tokens_per_s": round(hs, 1), "llama_cpp_single_tokens_per_s": round(ls, 1),
                  "ratio_single_vs_llama_cpp": round(hs / ls, 2), "hone_batch8_tokens_per_s": round(hb, 1),
                  "hone_batch8_speedup": round(hb / hs, 2), "threads": h[0]["threads"],
                  "hone_runs": [round(r["single_decode_tokens_per_s"], 1) for r in h],
                  "llama_cpp_runs": [round(r["decode_tokens_per_s"], 1) for r in l]}))
PY
done
