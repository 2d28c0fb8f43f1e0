#!/usr/bin/env bash
# GPU benchmark, unattended: builds hone-cli against the CUDA libtorch of the PyTorch installed on
# this machine, then trains a Llama-3.2-1B-shaped model (random weights, hidden 2048, 16 layers,
# 32 heads, 8 KV heads, ffn 8192, vocab 128256, tied head) with LoRA and QLoRA, bf16 autocast,
# in hone-cli bench and in PyTorch + PEFT (bench/bench_peft.py; the eager bench/bench_train.py
# when transformers/peft are absent), and prints tokens/s and peak GPU memory for both.
#
# Needs: an NVIDIA GPU and driver, python3 with a CUDA build of torch, g++ (C++17), cmake >= 3.22,
# ninja or make, and the -dev packages of nlohmann-json, PCRE2, ICU and SQLite (installed with
# apt-get when missing and this runs as root). No CUDA toolkit: the wheel's libraries are used
# directly (HONE_TORCH_PREFIX). Environment: PYTHON (default python3), BUILD (build-gpu),
# SEQ (512), BATCH (4), STEPS (6). Measured budget: well under 8 minutes with the build.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUILD=${BUILD:-build-gpu}
SEQ=${SEQ:-512}; BATCH=${BATCH:-4}; STEPS=${STEPS:-6}
t0=$(date +%s)
say() { echo "gpu.sh: $*" >&2; }

command -v nvidia-smi >/dev/null || { say "no nvidia-smi: this machine has no NVIDIA driver"; exit 2; }
read -r TORCH_DIR ABI CUDA_OK < <("$PY" -c '
import os, torch
print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), int(torch.cuda.is_available()))') ||
  { say "$PY cannot import torch (pip install torch)"; exit 2; }
[[ $CUDA_OK == 1 ]] || { say "torch in $TORCH_DIR sees no GPU (a CPU-only wheel, or the driver is missing)"; exit 2; }
[[ -e $TORCH_DIR/lib/libtorch_cuda.so ]] || { say "$TORCH_DIR/lib has no libtorch_cuda.so"; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2

# Build tools and headers the core needs (Debian/Ubuntu names).
need=()
command -v g++ >/dev/null || need+=(g++)
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
[[ -e /usr/include/nlohmann/json.hpp ]] || need+=(nlohmann-json3-dev)
[[ -e /usr/include/pcre2.h ]] || need+=(libpcre2-dev)
[[ -e /usr/include/unicode/uchar.h ]] || need+=(libicu-dev)
[[ -e /usr/include/sqlite3.h ]] || need+=(libsqlite3-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
if ((${#need[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
  else
    say "missing: ${need[*]} (install them, or run as root on Debian/Ubuntu)"; exit 2
  fi
fi
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DHONE_BUILD_GUI=OFF -DHONE_BUILD_TESTS=OFF \
  -DHONE_TORCH_PREFIX="$TORCH_DIR" -DHONE_TORCH_CXX11_ABI="$ABI" -DHONE_OPENMP_BLAS= >&2
cmake --build "$BUILD" --target hone-cli -j"$(nproc)" >&2
say "built in $(( $(date +%s) - t0 )) s"

shape=(--hidden 2048 --layers 16 --heads 32 --kv-heads 8 --ffn 8192 --vocab 128256 --tie
       --seq "$SEQ" --batch "$BATCH" --rank 16 --steps "$STEPS" --bf16)
# The peak GPU memory of a process as the driver sees it (context and allocator cache included),
# sampled every 0.2 s, for both sides alike.
watch_gpu() {  # pid outfile
  local peak=0 m
  while kill -0 "$1" 2>/dev/null; do
    m=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
        awk -F', ' -v p="$1" '$1==p {print $2}')
    [[ -n $m && $m -gt $peak ]] && peak=$m
    sleep 0.2
  done
  echo "$peak" > "$2"
}
run() {  # label outfile command...
  local label=$1 out=$2; shift 2
  "$@" > "$out" 2> "$out.err" & local pid=$!
  watch_gpu "$pid" "$out.smi" & local w=$!
  local rc=0; wait "$pid" || rc=$?
  wait "$w" || true
  if ((rc)); then say "$label exited with $rc: $(tail -3 "$out.err")"; return "$rc"; fi
}
tmp=$(mktemp -d)
results=()
for method in lora qlora; do
  run "hone $method" "$tmp/hone-$method" "$BUILD/bin/hone-cli" bench --device cuda --method "$method" "${shape[@]}" --json || true
  py=(bench/bench_peft.py --method "$method" "${shape[@]}")
  rc=0; run "peft $method" "$tmp/py-$method" "$PY" "${py[@]}" || rc=$?
  if ((rc == 3)) && [[ $method == lora ]]; then  # no transformers/peft: the eager script
    run "eager $method" "$tmp/py-$method" "$PY" bench/bench_train.py --device cuda --method lora \
      $(printf '%s ' "${shape[@]}" | sed 's/--tie //') || true
  fi
  results+=("$method")
done
"$PY" - "$tmp" "${results[@]}" <<'PY'
import json, os, sys
tmp, methods = sys.argv[1], sys.argv[2:]
def load(name):
    try:
        j = json.loads(open(os.path.join(tmp, name)).read().strip().splitlines()[-1])
    except Exception:
        return None
    try:
        j["gpu_process_peak_mb"] = int(open(os.path.join(tmp, name + ".smi")).read().strip() or 0)
    except Exception:
        pass
    return j
rows = []
for m in methods:
    h, p = load("hone-" + m), load("py-" + m)
    row = {"method": m}
    if h: row.update(hone_tokens_per_s=round(h["tokens_per_s"], 1), hone_mfu=round(h["mfu"], 3),
                     hone_peak_gpu_mb=round(h["peak_gpu_mb"]), hone_process_gpu_mb=h.get("gpu_process_peak_mb"))
    if p: row.update(python_impl=p["impl"], python_tokens_per_s=round(p["tokens_per_s"], 1),
                     python_peak_gpu_mb=round(p["peak_gpu_mb"]), python_process_gpu_mb=p.get("gpu_process_peak_mb"))
    if h and p: row["speed_ratio"] = round(h["tokens_per_s"] / p["tokens_per_s"], 2)
    rows.append(row)
    print(json.dumps(row))
PY
say "done in $(( $(date +%s) - t0 )) s"
