// Preference losses (see preference_loss.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/preference_loss.h"

#include "common/error.h"

namespace hone {

DpoTerms dpo_loss(const at::Tensor& pi_c, const at::Tensor& pi_r, const at::Tensor& ref_c, const at::Tensor& ref_r,
                  double beta, const std::string& loss_type, double e) {
  auto h = (pi_c - ref_c) - (pi_r - ref_r);  // [N]
  DpoTerms t;
  if (loss_type == "sigmoid") {
    t.losses = -(1 - e) * at::log_sigmoid(beta * h) - e * at::log_sigmoid(-beta * h);
  } else if (loss_type == "robust") {
    t.losses = (-(1 - e) * at::log_sigmoid(beta * h) + e * at::log_sigmoid(-beta * h)) / (1 - 2 * e);
  } else if (loss_type == "hinge") {
    t.losses = at::relu(1 - beta * h);
  } else if (loss_type == "ipo") {
    t.losses = (h - 1 / (2 * beta)).pow(2);
  } else {
    throw Error("unknown DPO loss_type \"" + loss_type + "\" (sigmoid, ipo, hinge or robust)");
  }
  t.chosen_rewards = beta * (pi_c - ref_c).detach();
  t.rejected_rewards = beta * (pi_r - ref_r).detach();
  return t;
}

OrpoTerms orpo_odds_ratio(const at::Tensor& avg_c, const at::Tensor& avg_r, double beta) {
  // log(p/(1-p)) with p = e^avg: avg - log1p(-e^avg). avg < 0 always (a probability below 1).
  auto log_odds = (avg_c - avg_r) - (at::log1p(-at::exp(avg_c)) - at::log1p(-at::exp(avg_r)));  // [N]
  auto ratio = at::log_sigmoid(log_odds);
  OrpoTerms t;
  t.losses = -beta * ratio;
  t.ratio = ratio.detach();
  t.log_odds = log_odds.detach();
  return t;
}

KtoTerms kto_loss(const at::Tensor& pi, const at::Tensor& ref, const at::Tensor& desirable, const at::Tensor& pi_kl,
                  const at::Tensor& ref_kl, double beta, double wd, double wu) {
  return kto_loss(pi, ref, desirable, std::max(0.0, (pi_kl - ref_kl).detach().mean().item<double>()), beta, wd, wu);
}

KtoTerms kto_loss(const at::Tensor& pi, const at::Tensor& ref, const at::Tensor& desirable, double z, double beta, double wd,
                  double wu) {
  KtoTerms t;
  t.kl = z;
  auto r = pi - ref;  // [N]
  auto good = wd * (1 - at::sigmoid(beta * (r - t.kl)));
  auto bad = wu * (1 - at::sigmoid(beta * (t.kl - r)));
  t.losses = at::where(desirable, good, bad);
  t.rewards = beta * r.detach();
  return t;
}

}  // namespace hone
