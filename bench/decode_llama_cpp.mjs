// Greedy decode speed of a GGUF file in llama.cpp (node-llama-cpp), the reference for
// `hone-cli bench --generate` (docs/performance.md). Prints one JSON line:
// {"prefill_tokens", "prefill_s", "new_tokens", "decode_s", "decode_tokens_per_s", "threads", "tokens"}.
// usage: node bench/decode_llama_cpp.mjs MODEL.gguf PROMPT_IDS_JSON NEW_TOKENS [THREADS]
// PROMPT_IDS_JSON: a JSON array of token ids (the same ids Hone decodes from). node-llama-cpp is
// looked up in $HONE_NODE_LLAMA_CPP (a folder with node_modules), else build/interop.
// SPDX-License-Identifier: GPL-3.0-or-later
import os from "node:os";
import path from "node:path";
import {createRequire} from "node:module";

const [modelPath, promptJson, newTokensArg, threadsArg] = process.argv.slice(2);
const base = process.env.HONE_NODE_LLAMA_CPP || path.join(path.dirname(new URL(import.meta.url).pathname), "../build/interop");
const require = createRequire(path.join(base, "noop.js"));
const {getLlama, LlamaLogLevel} = await import(require.resolve("node-llama-cpp"));

const prompt = JSON.parse(promptJson);
const want = Number(newTokensArg || 128);
const threads = Number(threadsArg || os.availableParallelism());
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath});
// An f32 KV cache, as Hone keeps; llama.cpp's default f16 cache would be a different (lossier) setup.
const context = await model.createContext({contextSize: 1024, batchSize: 512, threads, flashAttention: false,
                                           experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
const seq = context.getSequence();
const t0 = performance.now();
let t1 = 0;
const tokens = [];
// evaluate() runs the prompt as one batch, then yields each sampled token; the first arrives after
// the prefill, so decode time is measured from it.
for await (const tok of seq.evaluate(prompt, {temperature: 0})) {
  if (tokens.length === 0) t1 = performance.now();
  tokens.push(tok);
  if (tokens.length >= want) break;
}
const t2 = performance.now();
process.stdout.write(JSON.stringify({prefill_tokens: prompt.length, prefill_s: (t1 - t0) / 1000, new_tokens: tokens.length,
                                     decode_s: (t2 - t1) / 1000, decode_tokens_per_s: (tokens.length - 1) / ((t2 - t1) / 1000),
                                     threads, tokens}) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
