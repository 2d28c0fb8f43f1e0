// Writes the Parquet test fixtures with DuckDB (an independent writer) from the JSONL beside them:
// node tests/data/parquet/make_fixtures.mjs [DUCKDB_DIR] (default build/duckdb, see tests/parquet/setup.sh).
// SPDX-License-Identifier: GPL-3.0-or-later
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const duckdir = process.argv[2] || path.join(here, '../../../build/duckdb');
const require = createRequire(path.join(path.resolve(duckdir), 'package.json'));
const { DuckDBInstance } = require('@duckdb/node-api');

// Deterministic small sources: varied lengths, unicode, repeated values (dictionary pages), nulls.
const words = ['alpha', 'beta', 'gamma', 'delta', 'épsilon', 'ζήτα', '数据', 'theta', 'iota', 'kappa'];
const say = (i, n) => Array.from({ length: n }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' ');
const lines = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

const chat = [];
for (let i = 0; i < 60; i++) {
  const messages = [];
  if (i % 4 === 0) messages.push({ role: 'system', content: 'You are terse.' });
  messages.push({ role: 'user', content: `Question ${i}: ${say(i, 1 + (i % 9))}?` });
  messages.push({ role: 'assistant', content: `Answer ${i}: ${say(i + 1, 2 + (i % 13))}.` });
  if (i % 3 === 0) {
    messages.push({ role: 'user', content: `And then ${i}?` });
    messages.push({ role: 'assistant', content: say(i + 2, 3) });
  }
  chat.push({ id: i, score: i / 4, ok: i % 2 === 0, messages });
}
const alpaca = [];
for (let i = 0; i < 40; i++) {
  const r = { instruction: `Do ${say(i, 3)}`, output: `Done: ${say(i + 5, 1 + (i % 5))}` };
  if (i % 3 === 0) r.input = say(i + 3, 2);   // absent elsewhere: NULL in Parquet
  if (i % 10 === 0) r.system = 'Be kind.';
  alpaca.push(r);
}
const preference = [];
for (let i = 0; i < 40; i++)
  preference.push({ prompt: `Pick ${i}: ${say(i, 2)}`, chosen: `Good ${say(i, 4)}`, rejected: `Bad ${say(i + 1, 4)}` });
const text = [];
for (let i = 0; i < 30; i++) text.push({ text: `Document ${i}.\n${say(i, 20 + i)}` });
const mapped = [];
for (let i = 0; i < 30; i++) mapped.push({ question: `Q${i} ${say(i, 2)}`, answer: `A${i} ${say(i + 4, 3)}`, n: i * 1000003, w: i % 5 === 0 ? null : i * 0.5 });
const lists = [];
for (let i = 0; i < 20; i++) lists.push({ prompt: `Choose for ${say(i, 2)}`, responses: [say(i, 3), say(i + 1, 4), ...(i % 2 ? [say(i + 2, 2)] : [])] });

const sources = { chat, alpaca, preference, text, mapped, lists };
for (const [name, rows] of Object.entries(sources)) writeFileSync(path.join(here, `${name}.jsonl`), lines(rows));

const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const out = (f) => path.join(here, f);
const src = (n) => out(`${n}.jsonl`);
// name -> [source, COPY options]
const fixtures = {
  'chat_snappy.parquet': ['chat', "COMPRESSION snappy"],
  'chat_zstd_v2.parquet': ['chat', "COMPRESSION zstd, PARQUET_VERSION V2"],
  'chat_gzip.parquet': ['chat', "COMPRESSION gzip"],
  'chat_dict_uncompressed.parquet': ['chat', "COMPRESSION uncompressed"],
  'chat_plain_groups.parquet': ['chat', "COMPRESSION uncompressed, ROW_GROUP_SIZE 16, DICTIONARY_SIZE_LIMIT 1"],
  'alpaca_nulls_snappy.parquet': ['alpaca', "COMPRESSION snappy"],
  'alpaca_nulls_v2.parquet': ['alpaca', "COMPRESSION gzip, PARQUET_VERSION V2"],
  'preference_zstd.parquet': ['preference', "COMPRESSION zstd"],
  'preference_v2_uncompressed.parquet': ['preference', "COMPRESSION uncompressed, PARQUET_VERSION V2"],
  'text_gzip.parquet': ['text', "COMPRESSION gzip, ROW_GROUP_SIZE 8"],
  'mapped_snappy_v2.parquet': ['mapped', "COMPRESSION snappy, PARQUET_VERSION V2"],
  'lists_zstd.parquet': ['lists', "COMPRESSION zstd"],
};
for (const [file, [name, opts]] of Object.entries(fixtures)) {
  // read_json keeps the file's row order; the columns in the order the JSON objects name them.
  await c.run(`COPY (SELECT * FROM read_json('${src(name)}', format='newline_delimited')) TO '${out(file)}' (FORMAT parquet, ${opts})`);
  const meta = await c.runAndReadAll(`SELECT DISTINCT row_group_id, compression, encodings FROM parquet_metadata('${out(file)}') ORDER BY ALL`);
  const rg = new Set(meta.getRowObjects().map((r) => Number(r.row_group_id))).size;
  const enc = [...new Set(meta.getRowObjects().map((r) => `${r.compression}:${r.encodings}`))].join(' ');
  console.log(`${file}: ${rg} row group(s); ${enc}`);
}
// Several row groups need more rows than DuckDB's smallest row group (2048), too many for a JSONL
// beside it: rows made by a formula the test repeats ({"text": "row I", "n": I}, I = 0..4999).
await c.run(`COPY (SELECT 'row ' || i AS text, i AS n FROM range(5000) t(i) ORDER BY i) TO '${out('many_groups.parquet')}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)`);
const groups = await c.runAndReadAll(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata('${out('many_groups.parquet')}')`);
console.log(`many_groups.parquet: ${groups.getRowObjects()[0].n} row group(s)`);
