// Prints each row of a Parquet file as DuckDB reads it, one JSON object per line, for
// tests/core/test_parquet.cpp: node duckdb_read.mjs DUCKDB_DIR FILE.parquet
// SPDX-License-Identifier: GPL-3.0-or-later
import { createRequire } from 'node:module';
import path from 'node:path';

const [dir, file] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(dir), 'package.json'));
const { DuckDBInstance } = require('@duckdb/node-api');
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
// to_json keeps lists and structs as JSON; file_row_number keeps the file's order.
const r = await c.runAndReadAll(
  `SELECT to_json(t)::VARCHAR AS j FROM (SELECT * EXCLUDE (file_row_number) FROM read_parquet('${file.replace(/'/g, "''")}', file_row_number = true) ORDER BY file_row_number) t`);
for (const row of r.getRowObjects()) process.stdout.write(row.j + '\n');
