// Policy-gradient objectives as plain tensor functions (as preference_loss.h is for DPO): GRPO's
// group-normalised advantages and its clipped surrogate with a per-token KL penalty (Shao et al.
// 2024, DeepSeekMath; TRL's GRPOTrainer), tested against tests/reference/policy_reference.py; and
// PPO's pieces (Schulman et al. 2017; Ziegler et al. 2019 for language models; TRL's PPOTrainer):
// per-token rewards with a KL penalty, GAE, whitening, the clipped policy and value objectives and
// the adaptive KL coefficient, tested against tests/reference/ppo_reference.py.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

namespace hone {

// rewards [N] in groups of G consecutive rows: (r - mean of its group) / (std of its group + 1e-4),
// std unbiased as torch.std. A group whose rewards are all equal gets advantages 0.
at::Tensor group_advantages(const at::Tensor& rewards, int64_t G);

struct PolicyLossTerms {
  at::Tensor per_sequence;  // [N] mean over each row's completion tokens of the token loss
  at::Tensor kl;            // [N, C] per-token KL estimate k3 = exp(ref - logp) - (ref - logp) - 1 (0 off the mask)
  at::Tensor clipped;       // [N, C] 1 where the clipped term was the smaller one (detached)
};

// Token loss: -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) + beta * k3, ratio = exp(logp - old_logp).
// logps, old_logps, ref_logps, mask: [N, C]; advantages [N]. ref_logps may be undefined (beta 0).
PolicyLossTerms grpo_loss(const at::Tensor& logps, const at::Tensor& old_logps, const at::Tensor& ref_logps,
                          const at::Tensor& advantages, const at::Tensor& mask, double beta, double eps);

// --- PPO -----------------------------------------------------------------------------------------

// Per-token rewards [N, C]: -kl_coef * (old_logps - ref_logps) at each completion token, plus the
// sequence's score [N] at its last real token. ref_logps undefined (or kl_coef 0): the score alone.
at::Tensor ppo_token_rewards(const at::Tensor& scores, const at::Tensor& old_logps, const at::Tensor& ref_logps,
                             const at::Tensor& mask, double kl_coef);

// Generalised advantage estimation (Schulman et al. 2016) over each row's completion tokens, the
// value after the last token being 0: delta_t = r_t + gamma V_{t+1} - V_t,
// A_t = delta_t + gamma lambda A_{t+1}; returns = A + V. All [N, C]; 0 off the mask.
struct Gae {
  at::Tensor advantages, returns;
};
Gae gae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask, double gamma, double lambda);

// (x - mean) / sqrt(var + 1e-8) over the entries where mask is 1 (var unbiased); 0 off the mask.
at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask);

struct PpoTerms {
  at::Tensor policy;         // [N, C] max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps)), 0 off the mask
  at::Tensor value;          // [N, C] 0.5 max((V - R)^2, (V_clipped - R)^2), 0 off the mask
  at::Tensor clipped;        // [N, C] 1 where the clipped policy term was the larger (detached)
  at::Tensor value_clipped;  // [N, C] 1 where the clipped value term was the larger (detached)
  at::Tensor approx_kl;      // [N, C] 0.5 (logp - old_logp)^2 (detached)
};
// logps, old_logps, values, old_values, advantages, returns, mask: [N, C]. V_clipped is
// old_values + clip(values - old_values, -value_clip, value_clip).
PpoTerms ppo_loss(const at::Tensor& logps, const at::Tensor& old_logps, const at::Tensor& values,
                  const at::Tensor& old_values, const at::Tensor& advantages, const at::Tensor& returns,
                  const at::Tensor& mask, double eps, double value_clip);

// The adaptive KL coefficient after a batch of n sequences whose mean KL (summed over each
// sequence's tokens) was `kl`: coef * (1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon).
double adaptive_kl_coef(double coef, double kl, double target, int64_t n, int64_t horizon);

}  // namespace hone
