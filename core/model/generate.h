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

// Picks the next token from logits [V] (exposed for tests).
int64_t sample_next(at::Tensor logits, const std::vector<int64_t>& history, const SamplingParams& p, at::Generator& gen);

}  // namespace hone
