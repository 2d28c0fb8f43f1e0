// KTO recipe (Ethayarajh et al. 2024, as TRL): unpaired ratings. Each example is the rated
// completion plus a mismatched one (this prompt with the next example's completion) whose
// policy-minus-reference log-ratio, averaged over the micro-batch and clamped at 0, estimates the
// KL term z. Desirable: w_d (1 - s(beta (r - z))); undesirable: w_u (1 - s(beta (z - r))).
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cmath>

#include "common/error.h"
#include "distributed/process_group.h"
#include "train/pair_recipe.h"
#include "train/preference_loss.h"

namespace hone {
namespace {

class KtoRecipe : public PairRecipe {
 public:

  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override {
    cfg_ = cfg;
    PairRecipe::prepare(cfg, tok, log);
    int64_t nd = 0, nu = 0;
    for (const auto& e : train_) (e.desirable ? nd : nu)++;
    if (log) log("kto: " + std::to_string(nd) + " desirable and " + std::to_string(nu) + " undesirable examples");
    // TRL's guidance: desirable_weight * n_d / (undesirable_weight * n_u) within [1, 4/3].
    const double ratio = nu ? (cfg.desirable_weight * nd) / (cfg.undesirable_weight * nu) : INFINITY;
    if (log && (nd == 0 || nu == 0 || ratio < 1.0 || ratio > 4.0 / 3.0))
      log("warning: kto classes are imbalanced (weighted desirable/undesirable = " + std::to_string(ratio).substr(0, 5) +
          "); set desirable_weight and undesirable_weight so that it lies in [1, 1.33]");
  }

  std::vector<double> counts(const std::vector<size_t>& idx) const override {
    double d = 0, u = 0;
    for (auto i : idx) (ex()[i].desirable ? d : u) += 1;
    return {static_cast<double>(idx.size()), d, u};
  }

  // On several processes z is estimated over the global micro-batch, as TRL gathers it: each
  // micro-batch's mismatched rows go through the policy here (the weights do not change within a
  // step), and their sums and counts are added over the ranks. One process estimates z in loss().
  void begin_step(RecipeEnv& env, const std::vector<std::vector<size_t>>& micro) override {
    z_.clear();
    ref_.clear();
    if (!env.group || env.group->world_size() == 1) return;
    at::NoGradGuard ng;
    std::vector<double> sums;
    for (const auto& idx : micro) {
      double s = 0;
      at::Tensor ref;
      if (!idx.empty()) {
        ref = reference_logps(env, idx, batch_of(idx, env.pad_id, false), false);  // [2B]
        const int64_t B = static_cast<int64_t>(idx.size());
        std::vector<const Sequence*> mism;
        for (auto i : idx) mism.push_back(&ex()[i].b);
        at::Tensor pol_kl = sequence_logps(env.model, collate(mism, env.pad_id), env.dev, env.autocast).logps;  // [B]
        s = (pol_kl - ref.narrow(0, B, B)).sum().item<double>();
      }
      ref_.push_back(ref);
      sums.push_back(s);
      sums.push_back(static_cast<double>(idx.size()));
    }
    at::Tensor t = at::tensor(sums, at::kDouble);
    env.group->all_reduce_sum(t);
    for (size_t k = 0; k < micro.size(); ++k)
      z_.push_back(std::max(0.0, t[static_cast<int64_t>(2 * k)].item<double>() / std::max(1.0, t[static_cast<int64_t>(2 * k + 1)].item<double>())));
  }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t B = static_cast<int64_t>(idx.size());
    const bool global_z = !eval_split() && static_cast<size_t>(env.micro) < z_.size();
    Batch b = batch_of(idx, env.pad_id, eval_split());
    at::Tensor ref = global_z ? ref_[static_cast<size_t>(env.micro)]
                              : reference_logps(env, idx, b, eval_split());  // [2B]: rated, then mismatched
    // The policy's gradient flows through the rated completions only; the KL rows are detached.
    std::vector<const Sequence*> rated, mism;
    for (auto i : idx) rated.push_back(&ex()[i].a), mism.push_back(&ex()[i].b);
    Batch br = collate(rated, env.pad_id);
    SeqLogps pol = sequence_logps(env.model, br, env.dev, env.autocast);  // [B]
    auto desirable = at::empty({B}, at::kBool);
    for (int64_t k = 0; k < B; ++k) desirable[k] = ex()[idx[static_cast<size_t>(k)]].desirable;
    desirable = desirable.to(env.dev);
    KtoTerms t;
    if (global_z) {
      t = kto_loss(pol.logps, ref.narrow(0, 0, B), desirable, z_[static_cast<size_t>(env.micro)], cfg_.beta,
                   cfg_.desirable_weight, cfg_.undesirable_weight);
    } else {
      at::Tensor pol_kl;
      {
        at::NoGradGuard ng;
        pol_kl = sequence_logps(env.model, collate(mism, env.pad_id), env.dev, env.autocast).logps;  // [B]
      }
      t = kto_loss(pol.logps, ref.narrow(0, 0, B), desirable, pol_kl, ref.narrow(0, B, B), cfg_.beta,
                   cfg_.desirable_weight, cfg_.undesirable_weight);
    }
    const double n = std::max(1.0, step_counts.at(0)), nd = step_counts.at(1), nu = step_counts.at(2);
    MicroLoss out;
    out.loss = t.losses.sum() / n;
    at::NoGradGuard ng;
    auto dmask = desirable.to(at::kFloat), umask = 1 - dmask;
    auto plp = pol.logps.detach();
    // A step's kl: its micro-batches' z weighted by rows (each rank's rows, summed over the ranks).
    out.scalars.push_back({"kl", t.kl * static_cast<double>(B) / n});
    if (nd > 0) {
      out.scalars.push_back({"rewards/chosen", (t.rewards * dmask).sum().item<double>() / nd});
      out.scalars.push_back({"logps/chosen", (plp * dmask).sum().item<double>() / nd});
    }
    if (nu > 0) {
      out.scalars.push_back({"rewards/rejected", (t.rewards * umask).sum().item<double>() / nu});
      out.scalars.push_back({"logps/rejected", (plp * umask).sum().item<double>() / nu});
    }
    return out;
  }

 protected:
  std::vector<PairExample> build(const RunConfig& cfg, const Tokenizer& tok, const ChatTemplate& f,
                                 const std::vector<std::string>& files) override {
    std::vector<Rating> all;
    for (const auto& file : files) {
      auto r = read_ratings(file);
      all.insert(all.end(), r.begin(), r.end());
    }
    std::vector<PairExample> out;
    for (size_t i = 0; i < all.size(); ++i) {
      // The mismatched completion: the next rating's (a fixed pairing, so that precomputed
      // reference log-probs stay valid across batches and resumes).
      const auto& other = all[(i + 1) % all.size()];
      PairExample e;
      e.desirable = all[i].desirable;
      if (make_example(tok, f, cfg, all[i].prompt, all[i].completion, other.completion, &e)) out.push_back(std::move(e));
    }
    return out;
  }

 private:
  RunConfig cfg_;
  std::vector<double> z_;       // global z per micro-batch of this step (several processes only)
  std::vector<at::Tensor> ref_;  // the reference log-probs begin_step computed, per micro-batch
};

}  // namespace

std::unique_ptr<Recipe> make_kto_recipe() { return std::make_unique<KtoRecipe>(); }

std::vector<ConfigKey> kto_keys() {
  std::vector<ConfigKey> k = reference_keys();
  k.push_back(config_field<&RunConfig::desirable_weight>("desirable_weight", "weight of the desirable examples' loss"));
  k.push_back(config_field<&RunConfig::undesirable_weight>("undesirable_weight", "weight of the undesirable examples' loss"));
  return k;
}

void check_kto(const RunConfig& c, const std::string& where) {
  check_preference_beta(c, where);
  if (c.desirable_weight <= 0 || c.undesirable_weight <= 0)
    throw Error(where + ": \"desirable_weight\" and \"undesirable_weight\" must be positive");
}

}  // namespace hone
