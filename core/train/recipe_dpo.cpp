// DPO recipe (Rafailov et al. 2023; IPO, hinge and robust variants as TRL has them): the policy's
// log-probs of chosen and rejected completions against the reference's, one concatenated forward
// of 2B rows per micro-batch. Metrics carry TRL's names so runs compare with TRL's.
#include "train/pair_recipe.h"
#include "train/preference_loss.h"

namespace hone {
namespace {

class DpoRecipe : public PairRecipe {
 public:
  std::string name() const override { return "dpo"; }
  bool needs_reference() const override { return true; }

  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override {
    cfg_ = cfg;
    PairRecipe::prepare(cfg, tok, log);
  }

  std::vector<double> counts(const std::vector<size_t>& idx) const override { return {static_cast<double>(idx.size())}; }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t B = static_cast<int64_t>(idx.size());
    Batch b = batch_of(idx, env.pad_id, eval_split());
    at::Tensor ref = reference_logps(env, idx, b, eval_split());  // [2B]
    SeqLogps pol = sequence_logps(env.model, b, env.dev, env.autocast);  // [2B]
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

}  // namespace hone
