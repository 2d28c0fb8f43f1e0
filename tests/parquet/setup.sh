#!/usr/bin/env bash
# Installs DuckDB's npm package (@duckdb/node-api, prebuilt linux-x64 binaries; pinned) for the
# Parquet tests (an independent reader of Hone's exports) and for regenerating the fixtures with
# tests/data/parquet/make_fixtures.mjs: bash tests/parquet/setup.sh [DIR] (default build/duckdb).
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/duckdb}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || npm init -y >/dev/null
npm i -E --no-audit --no-fund @duckdb/node-api@1.5.6-r.1
echo "@duckdb/node-api installed in $dir"
