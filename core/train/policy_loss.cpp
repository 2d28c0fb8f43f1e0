// Policy-gradient objectives (see policy_loss.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/policy_loss.h"

#include <algorithm>

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

at::Tensor ppo_token_rewards(const at::Tensor& scores, const at::Tensor& old_logps, const at::Tensor& ref_logps,
                             const at::Tensor& mask, double kl_coef) {
  at::Tensor r = at::zeros_like(old_logps);  // [N, C]
  if (ref_logps.defined() && kl_coef != 0) r = -kl_coef * (old_logps - ref_logps) * mask;
  auto last = (mask.sum(1) - 1).clamp_min(0).to(at::kLong).unsqueeze(1);  // [N, 1]
  return r.scatter_add(1, last, scores.to(r.scalar_type()).unsqueeze(1));
}

Gae gae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask, double gamma, double lambda) {
  const int64_t C = rewards.size(1);
  auto v = values * mask, r = rewards * mask;  // [N, C]
  std::vector<at::Tensor> adv(static_cast<size_t>(C));
  at::Tensor next_adv = at::zeros_like(v.select(1, 0)), next_v = at::zeros_like(next_adv);  // [N]
  for (int64_t t = C; t-- > 0;) {
    auto delta = r.select(1, t) + gamma * next_v - v.select(1, t);
    next_adv = (delta + gamma * lambda * next_adv) * mask.select(1, t);
    adv[static_cast<size_t>(t)] = next_adv;
    next_v = v.select(1, t);
  }
  Gae g;
  g.advantages = at::stack(adv, 1);  // [N, C]
  g.returns = (g.advantages + v) * mask;
  return g;
}

at::Tensor whiten(const at::Tensor& x, const at::Tensor& mask) {
  auto n = mask.sum();
  auto mean = (x * mask).sum() / n;
  auto var = ((x - mean).pow(2) * mask).sum() / (n - 1).clamp_min(1);
  return (x - mean) * at::rsqrt(var + 1e-8) * mask;
}

PpoTerms ppo_loss(const at::Tensor& logps, const at::Tensor& old_logps, const at::Tensor& values,
                  const at::Tensor& old_values, const at::Tensor& advantages, const at::Tensor& returns,
                  const at::Tensor& mask, double eps, double value_clip) {
  PpoTerms t;
  auto log_ratio = logps - old_logps;
  auto ratio = log_ratio.exp();                                        // [N, C]
  auto pg1 = -advantages * ratio, pg2 = -advantages * ratio.clamp(1 - eps, 1 + eps);
  t.policy = at::max(pg1, pg2) * mask;
  auto v_clipped = old_values + (values - old_values).clamp(-value_clip, value_clip);
  auto vf1 = (values - returns).pow(2), vf2 = (v_clipped - returns).pow(2);
  t.value = 0.5 * at::max(vf1, vf2) * mask;
  at::NoGradGuard ng;
  t.clipped = (pg2 > pg1).to(at::kFloat) * mask;
  t.value_clipped = (vf2 > vf1).to(at::kFloat) * mask;
  t.approx_kl = 0.5 * log_ratio.detach().pow(2) * mask;
  return t;
}

double adaptive_kl_coef(double coef, double kl, double target, int64_t n, int64_t horizon) {
  const double err = std::clamp(kl / target - 1.0, -0.2, 0.2);
  return coef * (1.0 + err * static_cast<double>(n) / static_cast<double>(horizon));
}

}  // namespace hone
