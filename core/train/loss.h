// The training loss every recipe shares: token-summed next-token cross entropy over labelled
// positions, computed on the fused CPU kernel where it applies (model/fused_cpu.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include "model/decoder.h"

namespace hone {

// ids, labels [B, T] int64 (label -100: no loss); attention_mask [B, T] or undefined. Logits are
// computed for the first T-1 positions only: the last one predicts nothing in the batch.
at::Tensor next_token_loss_sum(CausalLM& m, const at::Tensor& ids, const at::Tensor& attention_mask, const at::Tensor& labels);

}  // namespace hone
