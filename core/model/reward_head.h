// A reward model as transformers' *ForSequenceClassification with one label: the decoder's final
// hidden state at each sequence's last real token times a score head `score.weight` [1, H]. The
// head is registered on the CausalLM as module "score", so that it trains, checkpoints and saves
// with the adapters (PEFT's modules_to_save: "base_model.model.score.weight", task_type SEQ_CLS).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include "model/decoder.h"

namespace hone {

// Adds a trainable score head (normal(0, std) like transformers' initializer_range) unless present.
void attach_score_head(CausalLM& m, uint64_t seed, double std = 0.02);
bool has_score_head(CausalLM& m);
at::Tensor& score_weight(CausalLM& m);  // [1, H]

// Rewards [B] in fp32 for right-padded rows ids [B, T] with attention_mask [B, T] (1 real, 0 pad):
// the score of the hidden state at each row's last real token.
at::Tensor reward_scores(CausalLM& m, const at::Tensor& ids, const at::Tensor& attention_mask);

// Bradley-Terry: -log sigmoid(r_chosen - r_rejected) per pair [B].
at::Tensor bradley_terry_loss(const at::Tensor& chosen, const at::Tensor& rejected);

}  // namespace hone
