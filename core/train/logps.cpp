// Per-row log-probs (see logps.h). On the CPU in fp32 each row goes through the fused cross
// entropy, which keeps one [T-1, V] gradient buffer per row instead of log-softmax and its grad.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/logps.h"

#include "model/fused_cpu.h"
#include "train/head_logps.h"
#include "train/recipe.h"

namespace hone {

SeqLogps sequence_logps(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast) {
  const int64_t N = b.ids.size(0), T = b.ids.size(1);
  auto ids = b.ids.to(dev), am = b.attention_mask.to(dev), labels = b.labels.to(dev);
  if (m->chunked_head) {
    at::Tensor h;
    {
      CudaAutocast ac(autocast);
      h = m->hidden(ids, am);                                     // [N, T, H]
    }
    auto lb = labels.narrow(1, 1, T - 1).contiguous();            // [N, T-1]
    HeadLogps hl = head_token_logps(m->head_input(h.narrow(1, 0, T - 1).reshape({-1, h.size(2)})), m->output_weight(), lb.reshape({-1}),
                                    {m->config.final_softcap});
    SeqLogps out;
    out.logps = hl.logps.view({N, T - 1}).sum(1);                 // [N]
    auto valid = lb.ne(-100);
    out.tokens = valid.sum(1).to(at::kFloat);
    const double V = static_cast<double>(m->output_weight().size(0));
    out.logits_mean = (hl.logit_sum.view({N, T - 1}) * valid.to(at::kFloat)).sum(1) / (out.tokens.clamp_min(1) * V);
    return out;
  }
  at::Tensor logits;
  {
    CudaAutocast ac(autocast);
    auto h = m->hidden(ids, am);                                 // [N, T, H]
    logits = m->logits_from_hidden(h.narrow(1, 0, T - 1));       // [N, T-1, V] fp32
  }
  const int64_t V = logits.size(2);
  auto lb = labels.narrow(1, 1, T - 1).contiguous();              // [N, T-1]
  SeqLogps out;
  if (m->fused_kernels && fused_cpu_applies(logits)) {
    std::vector<at::Tensor> rows;
    rows.reserve(static_cast<size_t>(N));
    for (int64_t r = 0; r < N; ++r) rows.push_back(-fused_cross_entropy_sum(logits[r], lb[r], -100));
    out.logps = at::stack(rows);                                  // [N]
  } else {
    auto nll = at::cross_entropy_loss(logits.reshape({-1, V}), lb.reshape({-1}), {}, at::Reduction::None, -100);
    out.logps = -nll.view({N, T - 1}).sum(1);                     // [N]
  }
  auto valid = lb.ne(-100);                                       // [N, T-1]
  out.tokens = valid.sum(1).to(at::kFloat);
  {
    at::NoGradGuard ng;
    auto per_pos = logits.detach().sum(-1);                       // [N, T-1]
    out.logits_mean = (per_pos * valid.to(at::kFloat)).sum(1) / (out.tokens.clamp_min(1) * static_cast<double>(V));
  }
  return out;
}

}  // namespace hone
