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
  cache.reserve = static_cast<int64_t>(prompt.size()) + p.max_new_tokens;
  std::vector<int64_t> history = prompt;
  auto t0 = std::chrono::steady_clock::now();
  auto ids = at::tensor(prompt, at::kLong).to(dev).unsqueeze(0);  // [1,T]
  auto h = model->hidden(ids, {}, &cache);                         // [1,T,H]
  // Only the last position's logits: the whole [T, V] would be 600 KB a token at a 150k vocabulary.
  auto last = model->logits_from_hidden(h.narrow(1, h.size(1) - 1, 1)).view(-1);  // [V]
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

std::vector<GenerateResult> generate_batch(CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const SamplingParams& p, at::Generator* shared, const std::vector<uint64_t>& seeds) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<GenerateResult> out(static_cast<size_t>(B));
  if (B == 0) return out;
  if (!seeds.empty() && static_cast<int64_t>(seeds.size()) != B) throw Error("generate_batch: one seed per prompt");
  at::NoGradGuard ng;
  // Training mode comes back however this ends (rollouts call it mid-training).
  struct ModeGuard {
    CausalLM& m;
    bool was;
    ~ModeGuard() {
      if (was) m->train();
    }
  } mode{model, model->is_training()};
  model->eval();
  const auto dev = model->output_weight().device();
  size_t P = 0;
  for (const auto& pr : prompts) {
    if (pr.empty()) throw Error("generation needs a non-empty prompt");
    P = std::max(P, pr.size());
  }
  std::vector<at::Generator> gens;
  if (!shared)
    for (int64_t b = 0; b < B; ++b) gens.push_back(at::make_generator<at::CPUGeneratorImpl>(seeds.empty() ? p.seed : seeds[b]));
  // Left padding, so that every row's next token comes from the same (last) column; positions count
  // real tokens (RoPE sees only differences of positions, but longrope's switch and windows see them).
  const int64_t Pl = static_cast<int64_t>(P);
  std::vector<int64_t> ids(static_cast<size_t>(B * Pl), 0), am(static_cast<size_t>(B * Pl), 0), pos(static_cast<size_t>(B * Pl), 0);
  std::vector<int64_t> next_pos(static_cast<size_t>(B));
  std::vector<std::vector<int64_t>> history(static_cast<size_t>(B));
  const bool keep_history = p.repetition_penalty != 1.0;
  bool padded = false;
  for (int64_t b = 0; b < B; ++b) {
    const auto& pr = prompts[static_cast<size_t>(b)];
    const int64_t off = Pl - static_cast<int64_t>(pr.size());
    padded = padded || off > 0;
    for (size_t t = 0; t < pr.size(); ++t) {
      ids[b * Pl + off + static_cast<int64_t>(t)] = pr[t];
      am[b * Pl + off + static_cast<int64_t>(t)] = 1;
      pos[b * Pl + off + static_cast<int64_t>(t)] = static_cast<int64_t>(t);
    }
    next_pos[b] = static_cast<int64_t>(pr.size());
    if (keep_history) history[b] = pr;
  }
  const auto t0 = std::chrono::steady_clock::now();
  at::Tensor mask = padded ? at::tensor(am, at::kLong).view({B, Pl}).to(dev) : at::Tensor();  // [B, P], grows per step
  KVCache cache;
  cache.reserve = Pl + p.max_new_tokens;
  at::Tensor h = model->hidden(at::tensor(ids, at::kLong).view({B, Pl}).to(dev), mask, &cache,
                               padded ? at::tensor(pos, at::kLong).view({B, Pl}).to(dev) : at::Tensor());  // [B, P, H]
  at::Tensor last = model->logits_from_hidden(h.select(1, Pl - 1));  // [B, V]: only the last column's logits
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<bool> done(static_cast<size_t>(B), false);
  for (int i = 0; i < p.max_new_tokens; ++i) {
    std::vector<int64_t> next(static_cast<size_t>(B), 0);
    bool all = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      const int64_t tok = sample_next(last[b], history[b], p, shared ? *shared : gens[b]);
      next[b] = tok;
      out[b].tokens.push_back(tok);
      if (keep_history) history[b].push_back(tok);
      if (std::find(p.stop_ids.begin(), p.stop_ids.end(), tok) != p.stop_ids.end()) {
        out[b].stopped_on_token = true;
        done[b] = true;
      }
      all = all && done[b];
    }
    if (all || i + 1 == p.max_new_tokens) break;
    auto step = at::tensor(next, at::kLong).to(dev).unsqueeze(1);  // [B, 1]
    at::Tensor step_pos;
    if (padded) {
      mask = at::cat({mask, at::ones({B, 1}, mask.options())}, 1);     // [B, P + i + 1]
      step_pos = at::tensor(next_pos, at::kLong).to(dev).unsqueeze(1);  // [B, 1]
      for (auto& q : next_pos) ++q;
    }
    last = model->logits_from_hidden(model->hidden(step, mask, &cache, step_pos)).select(1, 0);  // [B, V]
  }
  const auto t2 = std::chrono::steady_clock::now();
  for (auto& r : out) {
    r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    r.decode_seconds = std::chrono::duration<double>(t2 - t1).count();
  }
  return out;
}

}  // namespace hone
