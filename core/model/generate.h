// Autoregressive generation over the KV cache: greedy or sampled (temperature, top-k, top-p),
// repetition penalty, seed, stop tokens, and a streaming callback that can stop early.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/decoder.h"

namespace hone {

struct SamplingParams {
  int max_new_tokens = 128;
  double temperature = 0.0;  // 0 -> greedy
  int top_k = 0;             // 0 -> off
  double top_p = 1.0;        // 1 -> off
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;
};

// Called with each new token id; return false to stop.
using TokenCallback = std::function<bool(int64_t)>;

struct GenerateResult {
  std::vector<int64_t> tokens;  // generated ids (stop token included when one ended it)
  bool stopped_on_token = false;
  double prefill_seconds = 0, decode_seconds = 0;
};

GenerateResult generate(CausalLM& model, const std::vector<int64_t>& prompt, const SamplingParams& p,
                        const TokenCallback& on_token = nullptr);

// Many prompts decoded together over one KV cache (evaluation, candidate generation, rollouts):
// each step runs the batch's rows as one pass, so that the weights are read once for all of them.
// Prompts of different lengths are padded on the left and masked, positions counting real tokens;
// a row that has stopped rides along until every row has (its tokens are not recorded). Rows draw
// from `shared` in row order when given (rollouts), else each from its own generator seeded with
// seeds[b] (p.seed when seeds is empty). Greedy rows give single-stream generate's tokens up to
// the rounding of batched GEMMs.
std::vector<GenerateResult> generate_batch(CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const SamplingParams& p, at::Generator* shared = nullptr,
                                           const std::vector<uint64_t>& seeds = {});

// Picks the next token from logits [V] (exposed for tests).
int64_t sample_next(at::Tensor logits, const std::vector<int64_t>& history, const SamplingParams& p, at::Generator& gen);

}  // namespace hone
