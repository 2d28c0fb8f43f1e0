// Rollouts (see rollout.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/rollout.h"

#include "train/head_logps.h"

#include <algorithm>

#include "common/error.h"
#include "model/generate.h"
#include "model/value_head.h"
#include "peft/lora.h"
#include "train/recipe.h"

namespace hone {

std::vector<Rollout> sample_prompts(CausalLM& model, const std::vector<std::vector<int32_t>>& prompts,
                                    const RolloutSettings& s, at::Generator& gen) {
  const int64_t G = s.group;
  std::vector<Rollout> out;
  std::vector<std::vector<int64_t>> rows;
  for (const auto& p : prompts) {
    if (p.empty()) throw Error("rollout: empty prompt");
    for (int64_t g = 0; g < G; ++g) {
      out.push_back({p, {}, false});
      rows.emplace_back(p.begin(), p.end());
    }
  }
  if (out.empty()) return out;
  SamplingParams sp;
  sp.temperature = s.temperature;
  sp.top_p = s.top_p;
  sp.max_new_tokens = static_cast<int>(s.max_new_tokens);
  sp.stop_ids = s.stop_ids;
  // One batch over one KV cache, every row drawing from the trainer's generator in row order.
  const auto res = generate_batch(model, rows, sp, &gen);
  for (size_t b = 0; b < out.size(); ++b) {
    out[b].completion.assign(res[b].tokens.begin(), res[b].tokens.end());
    out[b].stopped = res[b].stopped_on_token;
  }
  return out;
}

std::vector<Rollout> sample_group(CausalLM& model, const std::vector<int32_t>& prompt, const RolloutSettings& s,
                                  at::Generator& gen) {
  return sample_prompts(model, {prompt}, s, gen);
}

namespace {

// Rollouts as one padded batch: ids and attention mask [N, T]; for each completion token, the
// position whose hidden state predicts it, the token and a mask, [N, C].
struct Packed {
  at::Tensor ids, am, pos, targets, mask;
  int64_t N = 0, C = 1;
};

Packed pack(const std::vector<Rollout>& rows, int32_t pad) {
  const int64_t N = static_cast<int64_t>(rows.size());
  int64_t T = 0, C = 0;
  for (const auto& r : rows) {
    T = std::max<int64_t>(T, static_cast<int64_t>(r.prompt.size() + r.completion.size()));
    C = std::max<int64_t>(C, static_cast<int64_t>(r.completion.size()));
  }
  C = std::max<int64_t>(C, 1);
  // Filled in plain vectors, then turned into tensors once: element-wise tensor writes dispatch
  // an operator each.
  std::vector<int64_t> ids(static_cast<size_t>(N * T), pad), am(static_cast<size_t>(N * T), 0);
  std::vector<int64_t> gather_pos(static_cast<size_t>(N * C), 0), targets(static_cast<size_t>(N * C), 0);
  std::vector<float> mask(static_cast<size_t>(N * C), 0.f);
  for (int64_t i = 0; i < N; ++i) {
    const auto& r = rows[static_cast<size_t>(i)];
    const int64_t P = static_cast<int64_t>(r.prompt.size()), L = static_cast<int64_t>(r.completion.size());
    for (int64_t t = 0; t < P; ++t) ids[i * T + t] = r.prompt[t];
    for (int64_t t = 0; t < L; ++t) {
      ids[i * T + P + t] = r.completion[t];
      gather_pos[i * C + t] = P + t - 1;  // the position whose logits predict completion token t
      targets[i * C + t] = r.completion[t];
      mask[i * C + t] = 1.f;
    }
    for (int64_t t = 0; t < P + L; ++t) am[i * T + t] = 1;
  }
  auto tensor = [](auto& v, int64_t rows, int64_t cols) { return at::tensor(v).view({rows, cols}); };
  Packed p;
  p.N = N;
  p.C = C;
  p.ids = tensor(ids, N, T);
  p.am = tensor(am, N, T);
  p.pos = tensor(gather_pos, N, C);
  p.targets = tensor(targets, N, C);
  p.mask = tensor(mask, N, C);
  return p;
}

}  // namespace

TokenLogps completion_logps(CausalLM& model, const std::vector<Rollout>& rows, int32_t pad, const at::Device& dev,
                            bool autocast, bool values, double temperature) {
  const Packed pk = pack(rows, pad);
  const int64_t N = pk.N, C = pk.C;
  const at::Tensor pos = pk.pos.to(dev).unsqueeze(-1);  // [N, C, 1]
  at::Tensor hs, sel;
  {
    CudaAutocast ac(autocast);
    at::Tensor h = model->hidden(pk.ids.to(dev), pk.am.to(dev));  // [N, T, H]
    // Only the positions that predict a completion token go through the head: [N, C, V] logits,
    // not [N, T, V] (the prompt is most of T).
    hs = h.gather(1, pos.expand({N, C, h.size(2)}));  // [N, C, H]
    if (!model->chunked_head) {
      sel = model->logits_from_hidden(hs);  // [N, C, V] fp32
      if (temperature != 1.0) sel = sel / temperature;
    }
  }
  TokenLogps out;
  out.mask = pk.mask.to(dev);
  if (model->chunked_head) {
    HeadLogpsOptions o;
    o.softcap = model->config.final_softcap;
    o.temperature = temperature;
    o.entropy = true;
    HeadLogps hl = head_token_logps(model->head_input(hs.reshape({N * C, hs.size(2)})), model->output_weight(),
                                    pk.targets.to(dev).reshape({-1}), o);
    out.logps = hl.logps.view({N, C}) * out.mask;      // [N, C]
    out.entropy = hl.entropy.view({N, C}) * out.mask;  // [N, C]
    if (values) out.values = value_of_hidden(model, hs.detach()) * out.mask;  // stop-gradient, as below
    return out;
  }
  auto logp_all = at::log_softmax(sel, -1);  // [N, C, V]
  out.logps = logp_all.gather(2, pk.targets.to(dev).unsqueeze(-1)).squeeze(-1) * pk.mask.to(dev);  // [N, C]
  if (values) {
    // Stop-gradient: the value head reads the policy's features but its regression does not
    // reshape them (with gradients flowing into the adapters, the PPO demo reached 0.74 and
    // 0.54 where this reached 0.81 and 0.86, the rest of the settings alike).
    out.values = value_of_hidden(model, hs.detach()) * out.mask;  // [N, C]
  }
  {
    at::NoGradGuard ng;
    out.entropy = -(logp_all.exp() * logp_all).sum(-1) * out.mask;  // [N, C]
  }
  return out;
}

at::Tensor critic_values(CausalLM& model, const std::vector<Rollout>& rows, int32_t pad, const at::Device& dev, bool autocast) {
  const Packed pk = pack(rows, pad);
  struct Scope {  // the critic adapter in place while this pass runs (and after an exception, not)
    CausalLM& m;
    explicit Scope(CausalLM& model) : m(model) { set_critic_active(m, true); }
    ~Scope() { set_critic_active(m, false); }
  } scope(model);
  at::Tensor h;
  {
    CudaAutocast ac(autocast);
    h = model->hidden(pk.ids.to(dev), pk.am.to(dev));  // [N, T, H]
  }
  auto hs = h.gather(1, pk.pos.to(dev).unsqueeze(-1).expand({pk.N, pk.C, h.size(2)}));  // [N, C, H]
  return value_of_hidden(model, hs) * pk.mask.to(dev);                                 // [N, C]
}

}  // namespace hone
