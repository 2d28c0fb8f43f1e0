// Sequence log-probabilities: the sum of log p(token) over the labelled (completion) tokens of each
// row of a batch, the quantity every preference loss is built on (hf-compat.md §6).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include "model/decoder.h"
#include "train/batches.h"

namespace hone {

struct SeqLogps {
  at::Tensor logps;        // [N] fp32, sum of log-probs of the labelled tokens (differentiable)
  at::Tensor tokens;       // [N] fp32, labelled tokens per row
  at::Tensor logits_mean;  // [N] fp32, mean raw logit over labelled positions and the vocabulary (detached; TRL's logits/*)
};

// Rows of `b` through the model; under at::NoGradGuard for reference passes.
SeqLogps sequence_logps(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast);

// The same for a preference batch, rows [0, B) chosen and [B, 2B) rejected, computing the prompt a
// pair shares once: the common unlabelled prefix of each pair runs once into a KV cache, and both
// completions continue from it (at half-prompt pairs a quarter of the body's work is saved). Equal
// to sequence_logps up to rounding, in values and gradients. Falls back to sequence_logps where it
// does not apply: the full-logits head, gradient checkpointing with gradients wanted, or pairs
// whose shared prompts are under an eighth of the batch's tokens.
SeqLogps pair_sequence_logps(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast);

}  // namespace hone
