#!/usr/bin/env bash
# Download throughput of `hone-cli hub download` against curl for the same files, from the
# loopback hub (tests/hub/hub_server.py, which serves with sendfile so the server is not the limit).
#   bash bench/hub_download.sh [BUILD_DIR] [MiB per file] [files] [rounds]
# Hone hashes every byte (sha256) and writes the cache layout; curl only writes the files.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
mib=${2:-400}
nfiles=${3:-3}
rounds=${4:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
# HUB_BENCH_DIR=/dev/shm measures the transfer and hashing without the disk (page-cache writeback is noisy).
work=$(mktemp -d "${HUB_BENCH_DIR:-/tmp}/hone-hub-bench.XXXXXX")
trap 'kill $srv 2>/dev/null || true; rm -rf "$work"' EXIT
repo=$work/root/models/bench-org/big-model
mkdir -p "$repo"
"$build/bin/hone-cli" init-model --preset tiny --tokenizer builtin --out "$repo" --seed 1 >/dev/null
rm -f "$repo/model.safetensors"
for i in $(seq 1 "$nfiles"); do
  head -c $((mib << 20)) /dev/urandom > "$repo/model-0000$i-of-0000$nfiles.safetensors"
done
python3 "$src/tests/hub/hub_server.py" --root "$work/root" --port-file "$work/port" &
srv=$!
for _ in $(seq 100); do [[ -f $work/port ]] && break; sleep 0.1; done
port=$(cat "$work/port")
ep=http://127.0.0.1:$port
commit=$(curl -s "$ep/api/models/bench-org/big-model/revision/main" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha"])')
files=$(cd "$repo" && ls)
total=$(du -cb "$repo"/* | tail -1 | cut -f1)
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$total / ($2 - $1) / 2**20:.0f}')"; }
declare -a r_curl r_curlp r_hone1 r_hone4 w_hone1 w_hone4
for round in $(seq "$rounds"); do
  rm -rf "$work/curl" && mkdir -p "$work/curl" && sync
  t0=$(now); for f in $files; do curl -sfL -o "$work/curl/$f" "$ep/bench-org/big-model/resolve/$commit/$f"; done; t1=$(now)
  r_curl+=("$(rate "$t0" "$t1")")
  rm -rf "$work/curl" && mkdir -p "$work/curl" && sync
  args=(); for f in $files; do args+=(-o "$work/curl/$f" "$ep/bench-org/big-model/resolve/$commit/$f"); done
  t0=$(now); curl -sfL --no-progress-meter --parallel --parallel-max 4 "${args[@]}"; t1=$(now)
  r_curlp+=("$(rate "$t0" "$t1")")
  for jobs in 1 4; do
    rm -rf "$work/cache" && sync
    # Timed from the first HEAD to the last file in place (the done event's seconds): hone-cli's
    # own start (loading libtorch, ~0.45 s here) is not the download; the wall time is shown too.
    t0=$(now)
    out=$(HF_ENDPOINT=$ep HF_HUB_CACHE=$work/cache "$build/bin/hone-cli" hub download bench-org/big-model --jobs $jobs --json 2>/dev/null | tail -1)
    t1=$(now)
    s=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$out")
    r=$(python3 -c "print(f'{$total / $s / 2**20:.0f}')")
    if [[ $jobs == 1 ]]; then r_hone1+=("$r"); w_hone1+=("$(rate "$t0" "$t1")"); else r_hone4+=("$r"); w_hone4+=("$(rate "$t0" "$t1")"); fi
  done
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "files: $nfiles x $mib MiB + config/tokenizer ($((total >> 20)) MiB), $rounds rounds, MiB/s (median; each round's figures)"
echo "curl, one file after another:  $(med "${r_curl[@]}")   (${r_curl[*]})"
echo "curl --parallel (4):           $(med "${r_curlp[@]}")   (${r_curlp[*]})"
echo "hone-cli hub download --jobs 1: $(med "${r_hone1[@]}")   (${r_hone1[*]}); whole command $(med "${w_hone1[@]}")"
echo "hone-cli hub download --jobs 4: $(med "${r_hone4[@]}")   (${r_hone4[*]}); whole command $(med "${w_hone4[@]}")"
