// hone-cli bench --generate: greedy decoding speed, one stream and a batch of streams over one KV
// cache, on a published model's shape with random weights or on a model folder, fp32 or bf16.
// bench/decode_compare.sh sets it beside llama.cpp on the same weights.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/memory_use.h"
#include "common/runtime.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/generate.h"

namespace hone::cli {

namespace {

struct Shape {
  const char* name;
  int64_t hidden, layers, heads, kv, ffn, vocab;
};
constexpr Shape kShapes[] = {{"qwen2.5-0.5b", 896, 24, 14, 2, 4864, 151936},
                             {"qwen2.5-1.5b", 1536, 28, 12, 2, 8960, 151936},
                             {"llama-3.2-1b", 2048, 16, 32, 8, 8192, 128256}};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int cmd_bench_generate(const Args& a) {
  watch_memory();
  const int64_t P = a.integer("prompt-tokens", 64), N = a.integer("new-tokens", 128), B = a.integer("batch", 8),
                rounds = a.integer("steps", 3);
  if (P < 1 || N < 2 || B < 1 || rounds < 1) throw Error("bench --generate: --prompt-tokens >= 1, --new-tokens >= 2, --batch >= 1, --steps >= 1");
  const std::string dtype = a.get("dtype", "f32");
  if (dtype != "f32" && dtype != "bf16") throw Error("bench --generate: --dtype must be f32 or bf16");
  std::unique_ptr<LoadedModel> loaded;
  CausalLM m{nullptr};
  std::string shape_name;
  if (a.has("model")) {
    loaded = std::make_unique<LoadedModel>(load_model(a.get("model")));
    m = loaded->model;
    shape_name = a.get("model");
  } else {
    const std::string name = a.get("preset", "qwen2.5-0.5b");
    const Shape* s = nullptr;
    for (const auto& x : kShapes)
      if (name == x.name) s = &x;
    if (!s) throw Error("bench --generate: --preset must be qwen2.5-0.5b, qwen2.5-1.5b or llama-3.2-1b");
    nlohmann::json cj = {{"model_type", "llama"}, {"hidden_size", s->hidden}, {"num_hidden_layers", s->layers},
                         {"num_attention_heads", s->heads}, {"num_key_value_heads", s->kv}, {"intermediate_size", s->ffn},
                         {"vocab_size", s->vocab}, {"max_position_embeddings", 4096}, {"tie_word_embeddings", true}};
    m = CausalLM(parse_model_config(cj, "bench"));
    if (dtype == "bf16") {  // stored before init, so that no fp32 copy is ever resident
      for (auto& p : m->parameters()) p.set_requires_grad(false);
      store_base_bf16(m, /*keep_values=*/false);
    }
    init_weights(m, static_cast<uint64_t>(a.integer("seed", 0)));
    shape_name = name;
  }
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  if (dtype == "bf16") store_base_bf16(m);
  int64_t weight_bytes = 0;
  for (const auto& p : m->parameters()) weight_bytes += p.numel() * p.element_size();
  const int64_t V = m->config.vocab_size;

  // Random prompts (seeded): the speed of a step does not depend on which tokens they are.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(a.integer("seed", 0)) + 7);
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t b = 0; b < B; ++b) {
    auto t = at::randint(V, {P}, gen, at::kLong);
    prompts.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + P);
  }
  SamplingParams sp;
  sp.max_new_tokens = static_cast<int>(N);
  // Decode rate: tokens after the first over the time after the prefill (the first token comes
  // from the prefill's logits), as llama.cpp's own figure counts it.
  std::vector<double> single_tps, batch_tps, single_prefill, batch_prefill;
  std::vector<int64_t> single_tokens;
  std::vector<GenerateResult> batch_res;
  for (int64_t r = 0; r < rounds; ++r) {
    GenerateResult s = generate(m, prompts[0], sp);
    single_tps.push_back(static_cast<double>(s.tokens.size() - 1) / s.decode_seconds);
    single_prefill.push_back(s.prefill_seconds);
    single_tokens = s.tokens;
    batch_res = generate_batch(m, prompts, sp);
    int64_t made = 0;
    for (const auto& x : batch_res) made += static_cast<int64_t>(x.tokens.size()) - 1;
    batch_tps.push_back(static_cast<double>(made) / batch_res[0].decode_seconds);
    batch_prefill.push_back(batch_res[0].prefill_seconds);
  }
  // How far row 0 of the batch follows the single stream (greedy, same prompt): tokens equal up
  // to the first difference, which only the batched GEMMs' rounding at a near-tie can cause.
  int64_t agree = 0;
  while (agree < static_cast<int64_t>(std::min(single_tokens.size(), batch_res[0].tokens.size())) &&
         single_tokens[static_cast<size_t>(agree)] == batch_res[0].tokens[static_cast<size_t>(agree)])
    ++agree;
  const double s_tps = median(single_tps), b_tps = median(batch_tps);
  const SystemInfo sys = system_info(false);
  nlohmann::json out = {{"model", shape_name},
                        {"dtype", dtype},
                        {"weight_bytes", weight_bytes},
                        {"prompt_tokens", P},
                        {"new_tokens", N},
                        {"threads", sys.threads},
                        {"single_decode_tokens_per_s", s_tps},
                        {"single_prefill_s", median(single_prefill)},
                        // Every decode step reads all weights once: the rate the memory delivers them at.
                        {"single_weight_gb_per_s", static_cast<double>(weight_bytes) * s_tps / 1e9},
                        {"batch", B},
                        {"batch_decode_tokens_per_s", b_tps},
                        {"batch_prefill_s", median(batch_prefill)},
                        {"batch_speedup", b_tps / s_tps},
                        {"batch_row0_tokens_equal_single", agree},
                        {"single_runs", single_tps},
                        {"batch_runs", batch_tps},
                        {"peak_rss_mb", needed_peak() / 1048576.0}};
  if (a.flag("json")) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "decode, " << shape_name << " " << dtype << " (" << weight_bytes / 1000000 << " MB of weights), " << P
              << "-token prompts, " << N << " new tokens, " << sys.threads << " threads:\n"
              << "  1 stream:   " << s_tps << " tokens/s (" << out["single_weight_gb_per_s"].get<double>() << " GB/s of weights)\n"
              << "  " << B << " streams:  " << b_tps << " tokens/s in all, " << b_tps / s_tps << "x one stream\n";
  }
  return 0;
}

}  // namespace hone::cli
