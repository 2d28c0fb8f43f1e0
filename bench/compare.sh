#!/usr/bin/env bash
# Side-by-side training throughput: hone-cli bench vs the eager PyTorch script, interleaved (this
# machine's speed drifts between runs), 3 rounds each; prints the medians and the ratios. A --preset
# runs 6 steps a side (the median of the last 5) unless --steps is given.
# The script runs twice a round:
#   plain: as a user runs it on this system (the system's libblas.so.3, PyTorch's default threads);
#   tuned: with the BLAS build, kernel set and thread count Hone itself runs with, read from
#          hone-cli's own report, so that the ratio compares the training code alone.
#   bf16:  tuned, under torch.autocast("cpu", dtype=torch.bfloat16): the peer a user who knows
#          the CPU has a bf16 unit (AVX512-BF16, AMX) would pick (--no-bf16 leaves it out).
# All report peak RSS; the summary gives the ratios of speed and of memory.
# usage: bench/compare.sh [BUILD_DIR] [--method lora|full] [--rounds N] [--no-bf16] [--hone FLAG]... [shape flags...]
#   shape flags (--preset NAME, --tie, --hidden ..., --seq ...) go to both; each --hone FLAG goes to
#   hone-cli bench alone (e.g. --hone --base-dtype=f32 --hone --checkpointing).
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=${1:-build}; shift || true
method=lora
rounds=3
args=(); hone_only=()
with_bf16=1
while (($#)); do
  case $1 in
    --no-bf16) with_bf16=0; shift ;;
    --method) method=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --hone) hone_only+=("${2/=/ }"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
hone_flags=()
for f in "${hone_only[@]}"; do read -r -a parts <<< "$f"; hone_flags+=("${parts[@]}"); done
# A preset's default is 3 steps, the first untimed: the median of two. The eager bf16 script was
# still warming then (0.5B shape, 8 steps: 3.46, 3.03, 2.90, then 2.76-2.93 s), which put it 5%
# below its settled rate; both sides run 6 steps here unless --steps says otherwise.
if [[ " ${args[*]} " == *" --preset "* && " ${args[*]} " != *" --steps "* ]]; then args+=(--steps 6); fi
here=$(dirname "$0")
hone=(); plain=(); tuned=(); bf16=()
for ((round = 1; round <= rounds; ++round)); do
  h=$("$build/bin/hone-cli" bench --method "$method" --json "${args[@]}" "${hone_flags[@]}")
  hone+=("$h")
  read -r blas_dir core threads < <(/usr/bin/python3 -c 'import json,os,sys; j=json.loads(sys.argv[1]); print(os.path.dirname(j["blas"]) or "-", j["blas_core"] or "-", j["threads"])' "$h")
  plain+=("$(/usr/bin/python3 "$here/bench_train.py" --method "$method" "${args[@]}")")
  env_=()
  [[ $blas_dir != - ]] && env_+=("LD_LIBRARY_PATH=$blas_dir")
  [[ $core != - ]] && env_+=("OPENBLAS_CORETYPE=$core")
  tuned+=("$(env "${env_[@]}" /usr/bin/python3 "$here/bench_train.py" --method "$method" --threads "$threads" "${args[@]}")")
  if ((with_bf16)); then
    bf16+=("$(env "${env_[@]}" /usr/bin/python3 "$here/bench_train.py" --method "$method" --threads "$threads" --bf16 "${args[@]}")")
  fi
done
/usr/bin/python3 - "$method" "$rounds" "${hone[@]}" "${plain[@]}" "${tuned[@]}" "${bf16[@]}" <<'PY'
import json, statistics, sys
method, n, rows = sys.argv[1], int(sys.argv[2]), [json.loads(r) for r in sys.argv[3:]]
h, p, t, b = rows[:n], rows[n:2 * n], rows[2 * n:3 * n], rows[3 * n:]
med = lambda rs, k: statistics.median(r[k] for r in rs)
hm, pm, tm = med(h, "tokens_per_s"), med(p, "tokens_per_s"), med(t, "tokens_per_s")
out = {"method": method, "hone_tokens_per_s": round(hm, 1), "hone_mfu": round(med(h, "mfu"), 2),
       "hone_gemm_gflops": round(med(h, "gemm_gflops")), "hone_blas": h[0]["blas"], "hone_blas_core": h[0]["blas_core"],
       "hone_threads": h[0]["threads"],
       "pytorch_plain_tokens_per_s": round(pm, 1), "ratio_vs_plain": round(hm / pm, 2),
       "pytorch_plain_blas_core": p[0].get("blas_core"), "pytorch_plain_threads": p[0]["threads"],
       "pytorch_tuned_tokens_per_s": round(tm, 1), "ratio_vs_tuned": round(hm / tm, 2),
       "hone_base_dtype": h[0].get("base_dtype"), "hone_peak_rss_mb": round(med(h, "peak_rss_mb")),
       "pytorch_plain_peak_rss_mb": round(med(p, "peak_rss_mb")), "pytorch_tuned_peak_rss_mb": round(med(t, "peak_rss_mb")),
       # PyTorch's figure is ru_maxrss (VmHWM): the ratio compares Hone's VmHWM with it, like with
       # like; hone_peak_rss_mb is what Hone needs without the pages of mapped model files.
       "hone_peak_rss_total_mb": round(med(h, "peak_rss_total_mb")),
       "rss_ratio_vs_plain": round(med(h, "peak_rss_total_mb") / med(p, "peak_rss_mb"), 2),
       "hone_runs": [round(r["tokens_per_s"]) for r in h], "pytorch_plain_runs": [round(r["tokens_per_s"]) for r in p],
       "pytorch_tuned_runs": [round(r["tokens_per_s"]) for r in t]}
if b:
    bm = med(b, "tokens_per_s")
    # The eager peer in bf16 autocast: speed ratio, and Hone's VmHWM over its ru_maxrss.
    out.update({"pytorch_bf16_autocast_tokens_per_s": round(bm, 1), "ratio_vs_bf16_autocast": round(hm / bm, 2),
                "pytorch_bf16_autocast_peak_rss_mb": round(med(b, "peak_rss_mb")),
                "rss_ratio_vs_bf16_autocast": round(med(h, "peak_rss_total_mb") / med(b, "peak_rss_mb"), 2),
                "pytorch_bf16_autocast_runs": [round(r["tokens_per_s"]) for r in b]})
print(json.dumps(out))
PY
