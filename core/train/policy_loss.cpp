// Policy-gradient objectives (see policy_loss.h).
#include "train/policy_loss.h"

namespace hone {

at::Tensor group_advantages(const at::Tensor& rewards, int64_t G) {
  auto r = rewards.to(at::kFloat).view({-1, G});                    // [N/G, G]
  auto mean = r.mean(1, true), std = r.std(1, /*unbiased=*/true, true);  // [N/G, 1]
  return ((r - mean) / (std + 1e-4)).view({-1});                  // [N]
}

PolicyLossTerms grpo_loss(const at::Tensor& logps, const at::Tensor& old_logps, const at::Tensor& ref_logps,
                          const at::Tensor& advantages, const at::Tensor& mask, double beta, double eps) {
  PolicyLossTerms t;
  auto A = advantages.unsqueeze(1);                              // [N, 1]
  auto ratio = (logps - old_logps).exp();                        // [N, C]
  auto unclipped = ratio * A, clipped = ratio.clamp(1 - eps, 1 + eps) * A;
  auto tok = -at::min(unclipped, clipped);                       // [N, C]
  if (ref_logps.defined() && beta != 0) {
    auto d = ref_logps - logps;
    t.kl = (d.exp() - d - 1) * mask;
    tok = tok + beta * t.kl;
  } else {
    t.kl = at::zeros_like(logps);
  }
  {
    at::NoGradGuard ng;
    t.clipped = (clipped < unclipped).to(at::kFloat) * mask;
  }
  auto n = mask.sum(1).clamp_min(1);                             // [N]
  t.per_sequence = (tok * mask).sum(1) / n;                      // [N]
  return t;
}

}  // namespace hone
