// Reward model head and loss (see reward_head.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/reward_head.h"

#include <ATen/CPUGeneratorImpl.h>

#include "common/error.h"

namespace hone {

namespace {

struct ScoreHeadImpl : torch::nn::Module {
  explicit ScoreHeadImpl(at::Tensor w) { weight = register_parameter("weight", std::move(w)); }
  at::Tensor weight;  // [1, H]
};
TORCH_MODULE(ScoreHead);

ScoreHeadImpl* head_of(CausalLM& m) {
  for (auto& c : m->named_children())
    if (c.key() == "score") return c.value()->as<ScoreHeadImpl>();
  return nullptr;
}

}  // namespace

void attach_score_head(CausalLM& m, uint64_t seed, double std) {
  if (has_score_head(m)) return;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed ^ 0x5c0e5c0eULL);
  at::Tensor w = at::empty({1, m->config.hidden_size}, at::kFloat).normal_(0, std, gen);
  w = w.to(m->output_weight().device());
  m->register_module("score", ScoreHead(w));
  score_weight(m).set_requires_grad(true);
}

bool has_score_head(CausalLM& m) { return head_of(m) != nullptr; }

at::Tensor& score_weight(CausalLM& m) {
  ScoreHeadImpl* h = head_of(m);
  if (!h) throw Error("the model has no reward score head");
  return h->weight;
}

at::Tensor reward_scores(CausalLM& m, const at::Tensor& ids, const at::Tensor& attention_mask) {
  at::Tensor h = m->hidden(ids, attention_mask);                              // [B, T, H]
  at::Tensor last = (attention_mask.sum(1) - 1).clamp_min(0).to(at::kLong);  // [B]
  at::Tensor idx = last.view({-1, 1, 1}).expand({h.size(0), 1, h.size(2)});  // [B, 1, H]
  at::Tensor hl = h.gather(1, idx).squeeze(1).to(at::kFloat);                // [B, H]
  return at::matmul(hl, score_weight(m).to(at::kFloat).t()).squeeze(-1);     // [B]
}

at::Tensor bradley_terry_loss(const at::Tensor& chosen, const at::Tensor& rejected) {
  return -at::log_sigmoid(chosen - rejected);
}

}  // namespace hone
