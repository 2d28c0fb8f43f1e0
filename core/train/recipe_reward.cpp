// Reward model recipe (Ouyang et al. 2022; TRL's RewardTrainer): a scalar score of prompt +
// completion from the score head on the last real token (model/reward_head.h), trained with the
// Bradley-Terry loss -log sigmoid(r_chosen - r_rejected) on preference pairs, over LoRA or QLoRA.
// Metrics: loss, accuracy (share of pairs ranked right), margin (r_chosen - r_rejected).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/reward_head.h"
#include "train/pair_recipe.h"

namespace hone {
namespace {

class RewardRecipe : public PairRecipe {
 public:

  void setup_model(CausalLM& model, const RunConfig& cfg) override { attach_score_head(model, cfg.seed); }

  std::vector<double> counts(const std::vector<size_t>& idx) const override { return {static_cast<double>(idx.size())}; }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t B = static_cast<int64_t>(idx.size());
    Batch b = batch_of(idx, env.pad_id, eval_split());  // [2B, T]: chosen rows, then rejected rows
    at::Tensor r;
    {
      CudaAutocast ac(env.autocast);
      r = reward_scores(env.model, b.ids.to(env.dev), b.attention_mask.to(env.dev));  // [2B]
    }
    const at::Tensor rc = r.narrow(0, 0, B), rr = r.narrow(0, B, B);
    const double n = std::max(1.0, step_counts.at(0));
    MicroLoss out;
    out.loss = bradley_terry_loss(rc, rr).sum() / n;
    at::NoGradGuard ng;
    auto sum = [&](const at::Tensor& x) { return x.sum().item<double>() / n; };
    out.scalars = {{"accuracy", sum((rc > rr).to(at::kFloat))},
                   {"margin", sum(rc - rr)},
                   {"rewards/chosen", sum(rc)},
                   {"rewards/rejected", sum(rr)}};
    return out;
  }
};

}  // namespace

std::unique_ptr<Recipe> make_reward_recipe() { return std::make_unique<RewardRecipe>(); }

}  // namespace hone
