#!/usr/bin/env bash
# Installs llama.cpp's npm runtime (node-llama-cpp, prebuilt linux-x64 binaries; pinned) for the
# `interop` tests: bash tests/interop/setup.sh [DIR] (default build/interop). About 730 MB.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/interop}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || npm init -y >/dev/null
npm i -E --no-audit --no-fund node-llama-cpp@3.21.1
echo "node-llama-cpp installed in $dir"
