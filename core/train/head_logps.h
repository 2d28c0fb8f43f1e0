// Per-token log-probabilities straight from the final hidden states and the output head, in chunks
// of positions (and, for a frozen head on the CPU, panels of the vocabulary): the [N, vocab] logits
// and their gradient never exist at once (at seq 512 and a
// 152k vocabulary they were 0.3 GB each). Every loss on token log-probs goes through it: SFT/CPT
// cross entropy, the preference methods' sequence log-probs, and PPO/GRPO's policy log-probs.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

namespace hone {

struct HeadLogps {
  at::Tensor logps;      // [N] fp32, log p(target) (0 where the target is ignored); differentiable
  at::Tensor logit_sum;  // [N] fp32, sum of the (soft-capped) logits over the vocabulary (0 where ignored); detached
  at::Tensor entropy;    // [N] fp32, entropy of the (tempered) distribution, when asked (0 where ignored); detached
};

struct HeadLogpsOptions {
  double softcap = 0;        // Gemma 2's final logit soft-capping: z = cap * tanh(a / cap)
  double temperature = 1.0;  // log-probs of softmax(z / temperature)
  int64_t ignore_index = -100;
  bool entropy = false;
  // Positions per chunk; 0: head_chunk_rows(vocabulary), or 256 where the head is frozen, has no
  // soft-cap and runs on the CPU (its logits are then made a panel of the vocabulary at a time).
  int64_t chunk_rows = 0;
  int64_t panel_cols = 0;  // vocabulary entries per panel there; 0: about 2 MB of fp32 logits
};

// Positions per chunk by default where the head is trained, soft-capped or on a GPU: about 120 MB
// of fp32 logits, in a multiple of 32 (192 at a 152k vocabulary, 960 at 32k); at least 16.
int64_t head_chunk_rows(int64_t vocab);

// hidden [N, H], weight [V, H] (the LM head, or the tied embedding), targets [N] int64.
// Gradients reach hidden and, when it requires them (full fine-tuning), weight. Where weight is
// frozen the gradient for hidden is formed during the forward pass, chunk by chunk, so backward
// costs no second head GEMM; a trainable weight recomputes each chunk's logits in backward.
// Rows whose target is ignore_index skip the head altogether.
HeadLogps head_token_logps(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                           const HeadLogpsOptions& opt = {});

}  // namespace hone
