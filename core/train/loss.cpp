// Next-token loss (see loss.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/loss.h"

#include "model/fused_cpu.h"
#include "train/head_logps.h"

namespace hone {

at::Tensor next_token_loss_sum(CausalLM& m, const at::Tensor& ids, const at::Tensor& attention_mask, const at::Tensor& labels) {
  const int64_t T = ids.size(1);
  auto h = m->hidden(ids, attention_mask);                        // [B,T,H]
  if (m->chunked_head) {
    auto hs = h.narrow(1, 0, T - 1).reshape({-1, h.size(2)});      // [B*(T-1), H]
    auto lb = labels.narrow(1, 1, T - 1).reshape({-1});             // [B*(T-1)]
    return -head_token_logps(m->head_input(hs), m->output_weight(), lb, {m->config.final_softcap}).logps.sum();
  }
  auto logits = m->logits_from_hidden(h.narrow(1, 0, T - 1));     // [B,T-1,V] fp32
  const int64_t V = logits.size(2);
  auto lg = logits.reshape({-1, V});
  auto lb = labels.narrow(1, 1, T - 1).reshape({-1});
  if (m->fused_kernels && fused_cpu_applies(lg)) return fused_cross_entropy_sum(lg, lb, -100);
  return at::cross_entropy_loss(lg, lb, {}, at::Reduction::Sum, -100);
}

}  // namespace hone
