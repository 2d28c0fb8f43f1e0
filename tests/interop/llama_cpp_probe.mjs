// Runs exported GGUF files in llama.cpp (through node-llama-cpp) and prints what it predicts, for
// tests/core/test_gguf_interop.cpp to compare with Hone. Input (JSON file): {"model": PATH,
// "lora": PATH|null, "texts": [...], "prompts": [[ids...], ...], "top": K}. Output (one JSON line):
// {"tokens": [[ids...] per text], "positions": [[{"argmax": id, "top": [[id, p], ...], "next_p": p}, ...] per
// prompt]}, next_p being the probability of the prompt's own next token (absent at the last position).
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
// node-llama-cpp is looked up in $HONE_NODE_LLAMA_CPP (a folder with node_modules), else beside this file.
const base = process.env.HONE_NODE_LLAMA_CPP || path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(base, "noop.js"));
const {getLlama, LlamaLogLevel} = await import(require.resolve("node-llama-cpp"));

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: input.model});
// An f32 KV cache and no flash attention: llama.cpp's defaults (f16 cache) round keys and values,
// which would hide what the export itself contributes to a difference.
const contextOptions = {contextSize: 512, batchSize: 512, threads: 1, flashAttention: false,
                        experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"};
if (input.lora) contextOptions.lora = {adapters: [{filePath: input.lora, scale: 1.0}]};
const out = {tokens: [], positions: []};
for (const t of input.texts || []) out.tokens.push(Array.from(model.tokenize(t, true)));
const top = input.top || 10;
for (const ids of input.prompts || []) {
  const context = await model.createContext(contextOptions);
  const seq = context.getSequence();
  const items = ids.map((id) => [id, {generateNext: {probabilities: true}}]);
  const res = await seq.controlledEvaluate(items);
  const rows = [];
  for (let i = 0; i < ids.length; ++i) {
    const probs = res[i]?.next?.probabilities;
    if (!probs) { rows.push(null); continue; }
    let sorted;
    if (top === 1) {  // one pass for the most likely token: a full sort of a 150k vocabulary per position is slow
      let best = null;
      for (const e of probs.entries()) if (best === null || e[1] > best[1]) best = e;
      sorted = [best];
    } else {
      sorted = Array.from(probs.entries()).sort((a, b) => b[1] - a[1]);
    }
    const row = {argmax: sorted[0][0], top: sorted.slice(0, top)};
    if (i + 1 < ids.length) row.next_p = probs.get(ids[i + 1]) ?? 0;
    rows.push(row);
  }
  out.positions.push(rows);
  await context.dispose();
}
process.stdout.write(JSON.stringify(out) + "\n");
await model.dispose();
await llama.dispose();
