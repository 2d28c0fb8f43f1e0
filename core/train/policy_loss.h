// Policy-gradient objectives as plain tensor functions (as preference_loss.h is for DPO): GRPO's
// group-normalised advantages and its clipped surrogate with a per-token KL penalty (Shao et al.
// 2024, DeepSeekMath; TRL's GRPOTrainer). Tested against tests/reference/policy_reference.py.
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

}  // namespace hone
