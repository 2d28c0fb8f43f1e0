// The preference losses as plain tensor functions of sequence log-probs, so that tests can check
// them against an independent PyTorch script (tests/reference/preference_reference.py).
// Formulas: hf-compat.md §6 (DPO paper, IPO, robust DPO, ORPO, KTO as TRL implements them).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace hone {

struct DpoTerms {
  at::Tensor losses;            // [N]
  at::Tensor chosen_rewards;    // [N] beta * (pi_c - ref_c), detached
  at::Tensor rejected_rewards;  // [N]
};
// pi_*, ref_*: [N] sequence log-probs (for ipo, the caller passes them divided by completion length,
// as TRL does). h = (pi_c - ref_c) - (pi_r - ref_r).
//   sigmoid: -(1-e) log s(beta h) - e log s(-beta h)      hinge: relu(1 - beta h)
//   ipo:     (h - 1/(2 beta))^2                            robust: (-(1-e) log s(beta h) + e log s(-beta h)) / (1 - 2e)
DpoTerms dpo_loss(const at::Tensor& pi_c, const at::Tensor& pi_r, const at::Tensor& ref_c, const at::Tensor& ref_r,
                  double beta, const std::string& loss_type, double label_smoothing);

struct OrpoTerms {
  at::Tensor losses;    // [N] -beta * log s(log_odds): the odds-ratio term added to the NLL
  at::Tensor ratio;     // [N] log s(log_odds), detached
  at::Tensor log_odds;  // [N] detached
};
// avg_c, avg_r: [N] length-averaged log-probs (< 0). log_odds = (avg_c - avg_r) - (log1p(-e^avg_c) - log1p(-e^avg_r)).
OrpoTerms orpo_odds_ratio(const at::Tensor& avg_c, const at::Tensor& avg_r, double beta);

struct KtoTerms {
  at::Tensor losses;   // [N] weighted: w_d (1 - s(beta (r - z))) or w_u (1 - s(beta (z - r)))
  at::Tensor rewards;  // [N] beta * r, detached, r = pi - ref
  double kl = 0;       // z = max(0, mean(pi_kl - ref_kl)), detached
};
// desirable: [N] bool. pi_kl, ref_kl: log-probs of mismatched (prompt, completion) pairs.
KtoTerms kto_loss(const at::Tensor& pi, const at::Tensor& ref, const at::Tensor& desirable, const at::Tensor& pi_kl,
                  const at::Tensor& ref_kl, double beta, double desirable_weight, double undesirable_weight);
// The same with z given (a KL estimate over more rows than these: a data-parallel global batch).
KtoTerms kto_loss(const at::Tensor& pi, const at::Tensor& ref, const at::Tensor& desirable, double z, double beta,
                  double desirable_weight, double undesirable_weight);

}  // namespace hone
