#!/usr/bin/env bash
# Parquet vs JSONL import: DuckDB writes one 1M-row chat dataset (messages as list<struct>) as
# Parquet (its default snappy and row groups) and as JSONL; hone-cli dataset import reads each into
# a fresh workspace under /usr/bin/time -v; prints file size, seconds, rows/s and peak RSS side by side.
# usage: bench/parquet_import.sh [BUILD_DIR] [ROWS]   (needs tests/parquet/setup.sh's DuckDB)
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
rows=${2:-1000000}
cli="$build/bin/hone-cli"
duck="$build/duckdb"
[ -x "$cli" ] || { echo "no $cli (build hone-cli first)" >&2; exit 1; }
[ -d "$duck/node_modules/@duckdb/node-api" ] || { echo "no DuckDB in $duck (run tests/parquet/setup.sh)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hone-parquet-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Distinct rows of chat-sized text (about 150 + 300 characters), a system turn in every fifth.
cat > "$work/gen.mjs" <<JS
import { createRequire } from 'node:module';
const require = createRequire('$duck/package.json');
const { DuckDBInstance } = require('@duckdb/node-api');
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
await c.run(\`CREATE TABLE t AS SELECT
  CASE WHEN i % 5 = 0 THEN [{'role': 'system', 'content': 'You answer briefly.'}] ELSE [] END ||
  [{'role': 'user', 'content': 'Question ' || i || ': ' || repeat(md5(i::VARCHAR) || ' ', 4)},
   {'role': 'assistant', 'content': 'Answer ' || i || ': ' || repeat(md5((i * 7919)::VARCHAR) || ' ', 9)}] AS messages
  FROM range($rows) r(i)\`);
await c.run("COPY t TO '$work/chat.parquet' (FORMAT parquet)");
await c.run("COPY t TO '$work/chat.jsonl' (FORMAT json)");
JS
node "$work/gen.mjs"

printf '%-8s %12s %10s %12s %14s\n' format "file MB" seconds "rows/s" "peak RSS MB"
for f in chat.parquet chat.jsonl; do
  ws="$work/ws-${f#*.}"
  /usr/bin/time -v -o "$work/time.txt" "$cli" dataset import "$work/$f" --name bench --workspace "$ws" --json > "$work/out.json"
  imported=$(python3 -c "import json; print(json.load(open('$work/out.json'))['imported'])")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time.txt")
  size=$(stat -c %s "$work/$f")
  printf '%-8s %12.1f %10.1f %12.0f %14.0f\n' "${f#*.}" "$(echo "$size / 1048576" | bc -l)" "$secs" \
    "$(echo "$imported / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  [ "$imported" = "$rows" ] || { echo "imported $imported of $rows rows from $f" >&2; exit 1; }
done
