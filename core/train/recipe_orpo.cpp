// ORPO recipe (Hong et al. 2024): no reference model; the NLL of the chosen completions plus beta
// (lambda) times the odds-ratio term on length-averaged log-probs. Metrics as TRL names them.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/error.h"
#include "train/pair_recipe.h"
#include "train/preference_loss.h"

namespace hone {
namespace {

class OrpoRecipe : public PairRecipe {
 public:

  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override {
    beta_ = cfg.beta;
    PairRecipe::prepare(cfg, tok, log);
  }

  // Pairs (the odds-ratio term is a pair mean) and chosen tokens (the NLL is a token mean).
  std::vector<double> counts(const std::vector<size_t>& idx) const override {
    double tok = 0;
    for (auto i : idx)
      for (auto m : ex()[i].a.loss_mask) tok += m;
    return {static_cast<double>(idx.size()), tok};
  }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t B = static_cast<int64_t>(idx.size());
    Batch b = batch_of(idx, env.pad_id, eval_split());
    SeqLogps pol = pair_sequence_logps(env.model, b, env.dev, env.autocast);  // [2B], each pair's prompt once
    auto avg = pol.logps / pol.tokens;                                   // [2B]
    auto t = orpo_odds_ratio(avg.narrow(0, 0, B), avg.narrow(0, B, B), beta_);
    const double pairs = std::max(1.0, step_counts.at(0)), ctok = std::max(1.0, step_counts.at(1));
    auto nll = -pol.logps.narrow(0, 0, B).sum() / ctok;
    MicroLoss out;
    out.loss = nll + t.losses.sum() / pairs;
    at::NoGradGuard ng;
    auto sum = [&](const at::Tensor& x) { return x.sum().item<double>() / pairs; };
    out.scalars = {{"nll_loss", nll.item<double>()}, {"log_odds_ratio", sum(t.ratio)}, {"log_odds_chosen", sum(t.log_odds)}};
    // TRL's ORPO rewards are beta times the length-averaged log-probs, and so are its logps/*.
    auto a = avg.detach();
    for (auto& x : pair_metrics(beta_ * a.narrow(0, 0, B), beta_ * a.narrow(0, B, B), a, pol.logits_mean, B, pairs))
      out.scalars.push_back(std::move(x));
    return out;
  }

 private:
  double beta_ = 0.1;
};

}  // namespace

std::unique_ptr<Recipe> make_orpo_recipe() { return std::make_unique<OrpoRecipe>(); }

std::vector<ConfigKey> orpo_keys() {
  return {config_field<&RunConfig::beta>("beta", "weight of the odds-ratio term (the paper's lambda)", "Lambda (odds ratio)")};
}

void check_orpo(const RunConfig& c, const std::string& where) { check_preference_beta(c, where); }

}  // namespace hone
