// DPO recipe (Rafailov et al. 2023; IPO, hinge and robust variants as TRL has them): the policy's
// log-probs of chosen and rejected completions against the reference's, 2B rows per micro-batch
// with each pair's prompt computed once (pair_sequence_logps, train/logps.h). Metrics carry TRL's
// names so runs compare with TRL's.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/error.h"
#include "train/pair_recipe.h"
#include "train/preference_loss.h"

namespace hone {
namespace {

class DpoRecipe : public PairRecipe {
 public:

  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override {
    cfg_ = cfg;
    PairRecipe::prepare(cfg, tok, log);
  }

  std::vector<double> counts(const std::vector<size_t>& idx) const override { return {static_cast<double>(idx.size())}; }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t B = static_cast<int64_t>(idx.size());
    Batch b = batch_of(idx, env.pad_id, eval_split());
    at::Tensor ref = reference_logps(env, idx, b, eval_split());  // [2B]
    SeqLogps pol = pair_sequence_logps(env.model, b, env.dev, env.autocast);  // [2B], each pair's prompt once
    at::Tensor lp = pol.logps, rf = ref;
    if (cfg_.loss_type == "ipo") {  // IPO works on length-averaged log-probs (as TRL)
      lp = lp / pol.tokens;
      rf = rf / pol.tokens;
    }
    auto t = dpo_loss(lp.narrow(0, 0, B), lp.narrow(0, B, B), rf.narrow(0, 0, B), rf.narrow(0, B, B), cfg_.beta,
                      cfg_.loss_type, cfg_.label_smoothing);
    const double n = std::max(1.0, step_counts.at(0));
    MicroLoss out;
    out.loss = t.losses.sum() / n;
    out.scalars = pair_metrics(t.chosen_rewards, t.rejected_rewards, pol.logps, pol.logits_mean, B, n);
    return out;
  }

 private:
  RunConfig cfg_;
};

}  // namespace

std::unique_ptr<Recipe> make_dpo_recipe() { return std::make_unique<DpoRecipe>(); }

std::vector<ConfigKey> dpo_keys() {
  std::vector<ConfigKey> k = reference_keys();
  k.push_back(config_field<&RunConfig::loss_type>("loss_type", "sigmoid | ipo | hinge | robust"));
  k.push_back(config_field<&RunConfig::label_smoothing>("label_smoothing", "sigmoid/robust: assumed share of flipped labels, [0, 0.5)"));
  return k;
}

void check_dpo(const RunConfig& c, const std::string& where) {
  check_preference_beta(c, where);
  if (c.loss_type != "sigmoid" && c.loss_type != "ipo" && c.loss_type != "hinge" && c.loss_type != "robust")
    throw Error(where + ": \"loss_type\" must be sigmoid, ipo, hinge or robust");
  if (c.label_smoothing < 0 || c.label_smoothing >= 0.5) throw Error(where + ": \"label_smoothing\" must be in [0, 0.5)");
}

}  // namespace hone
