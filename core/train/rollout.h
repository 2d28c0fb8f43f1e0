// Rollouts for RL fine-tuning (GRPO, and PPO after it): completions sampled from the policy over
// the KV cache, a group of them per prompt, the groups of a micro-batch's prompts in one batch, stopping at EOS or an end-of-turn token, and the per-token log-probabilities of those
// completions under a model (the policy with gradients, or the reference without).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "model/decoder.h"

namespace hone {

struct RolloutSettings {
  int64_t group = 4;  // completions per prompt
  int64_t max_new_tokens = 64;
  double temperature = 1.0;  // 0: greedy
  double top_p = 1.0;
  std::vector<int64_t> stop_ids;
};

struct Rollout {
  std::vector<int32_t> prompt;
  std::vector<int32_t> completion;  // sampled ids, the stop token included when one ended it
  bool stopped = false;             // ended on a stop token (else cut at max_new_tokens)
};

// `group` completions of one prompt, sampled with `gen` (the caller's generator: the training
// session's global CPU generator, whose state checkpoints save, so a resumed run samples alike).
// Runs without gradients, in eval mode (no dropout), and restores the model's training mode.
std::vector<Rollout> sample_group(CausalLM& model, const std::vector<int32_t>& prompt, const RolloutSettings& s,
                                  at::Generator& gen);
// The groups of several prompts in one batch (prompt-major: prompt 0's `group` completions first),
// the prompts padded on the left. Each step samples every row in order from `gen`.
std::vector<Rollout> sample_prompts(CausalLM& model, const std::vector<std::vector<int32_t>>& prompts,
                                    const RolloutSettings& s, at::Generator& gen);

// Log-probabilities of each completion token under `model`, [N, C] fp32 with C the longest
// completion, and its mask [N, C] (1 on real completion tokens); also each position's entropy.
// `temperature`: of the distribution the completions were sampled from (the logits divided by it,
// as TRL's GRPO and PPO trainers compute them), so that the ratios are those of the sampling policy.
// Differentiable unless the caller holds a NoGradGuard. With `values` (a model with a value head,
// model/value_head.h), also the value of each state a completion token was sampled in [N, C], from
// the same forward pass (the hidden state at the position whose logits predict the token).
struct TokenLogps {
  at::Tensor logps, mask, entropy;  // entropy is detached
  at::Tensor values;                // [N, C], 0 off the mask; only with `values`
};
TokenLogps completion_logps(CausalLM& model, const std::vector<Rollout>& rows, int32_t pad, const at::Device& dev,
                            bool autocast, bool values = false, double temperature = 1.0);

// The critic's values of the same states, [N, C] (0 off the mask): a forward pass of its own with
// the critic adapter in place of the policy's (peft/lora.h), read by the value head. Gradients
// reach the critic adapter and the head, never the policy's adapter.
at::Tensor critic_values(CausalLM& model, const std::vector<Rollout>& rows, int32_t pad, const at::Device& dev, bool autocast);

}  // namespace hone
