// Generation. Processing order follows transformers: repetition penalty, temperature, top-k,
// top-p, then sample (or argmax when temperature is 0).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>

#include "common/error.h"

namespace hone {

int64_t sample_next(at::Tensor logits, const std::vector<int64_t>& history, const SamplingParams& p, at::Generator& gen) {
  logits = logits.to(at::kCPU, at::kFloat).clone();  // [V]
  if (p.repetition_penalty != 1.0 && !history.empty()) {
    auto idx = at::tensor(history, at::kLong);  // duplicates write the same value back
    auto vals = logits.index_select(0, idx);
    vals = at::where(vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty);
    logits.index_copy_(0, idx, vals);
  }
  if (p.temperature <= 0.0) return logits.argmax().item<int64_t>();
  logits = logits / p.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (p.top_k > 0 && p.top_k < logits.size(0)) {
    auto kth = std::get<0>(logits.topk(p.top_k)).min();
    logits = at::where(logits < kth, at::full({}, neg_inf), logits);
  }
  if (p.top_p < 1.0) {
    auto sorted = logits.sort(/*dim=*/0, /*descending=*/true);
    auto probs = at::softmax(std::get<0>(sorted), 0);
    auto cum = probs.cumsum(0);
    // Drop a token when the mass before it already reaches top_p (the first token always stays).
    auto remove = (cum - probs) >= p.top_p;
    auto drop_idx = std::get<1>(sorted).masked_select(remove);
    if (drop_idx.numel()) logits.index_fill_(0, drop_idx, neg_inf);
  }
  auto probs = at::softmax(logits, 0);
  return at::multinomial(probs, 1, false, gen).item<int64_t>();
}

GenerateResult generate(CausalLM& model, const std::vector<int64_t>& prompt, const SamplingParams& p,
                        const TokenCallback& on_token) {
  if (prompt.empty()) throw Error("generation needs a non-empty prompt");
  at::NoGradGuard ng;
  model->eval();
  GenerateResult r;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(p.seed);
  const auto dev = model->output_weight().device();
  KVCache cache;
  std::vector<int64_t> history = prompt;
  auto t0 = std::chrono::steady_clock::now();
  auto ids = at::tensor(prompt, at::kLong).to(dev).unsqueeze(0);  // [1,T]
  auto logits = model->forward(ids, {}, &cache);                   // [1,T,V]
  auto last = logits.select(1, logits.size(1) - 1).squeeze(0);     // [V]
  auto t1 = std::chrono::steady_clock::now();
  r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  for (int i = 0; i < p.max_new_tokens; ++i) {
    int64_t next = sample_next(last, history, p, gen);
    r.tokens.push_back(next);
    history.push_back(next);
    if (std::find(p.stop_ids.begin(), p.stop_ids.end(), next) != p.stop_ids.end()) {
      r.stopped_on_token = true;
      break;
    }
    if (on_token && !on_token(next)) break;
    if (i + 1 == p.max_new_tokens) break;
    auto step = at::full({1, 1}, next, at::TensorOptions(at::kLong).device(dev));
    last = model->forward(step, {}, &cache).select(1, 0).squeeze(0);
  }
  r.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  return r;
}

}  // namespace hone
