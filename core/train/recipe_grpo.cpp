// GRPO recipe (Shao et al. 2024, DeepSeekMath; as TRL's GRPOTrainer with one update per batch of
// rollouts): for each prompt of a micro-batch, a group of completions is sampled from the policy
// (train/rollout.h), scored by rule rewards and/or a trained reward model, and the advantages are
// the rewards normalised within the group (no value model). The loss is the clipped surrogate plus
// beta times a per-token KL estimate against the reference (the adapters switched off, or the
// starting adapter when the run starts from one), averaged over each completion's tokens, then
// over completions (train/policy_loss.h). Prompts, scoring and evaluation: train/rl_recipe.h.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/error.h"
#include "train/policy_loss.h"
#include "train/rl_recipe.h"

namespace hone {
namespace {

class GrpoRecipe : public RlRecipe {
 public:

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t G = cfg_.num_generations;
    std::vector<size_t> prompt_of;
    std::vector<Rollout> rows = sample(env, idx, &prompt_of);
    const std::vector<double> rewards = score(rows, prompt_of);
    note_flat_rewards(env, rewards);
    at::Tensor r = at::tensor(rewards, at::kDouble).to(at::kFloat);  // [N]
    at::Tensor adv = group_advantages(r, G).to(env.dev);              // [N]
    // The reference pass comes first: swapping a starting adapter in and out writes the
    // parameters, which must not happen once the policy's forward has saved them for backward.
    at::Tensor ref;
    if (cfg_.beta != 0) ref = reference_logps(env, rows);
    TokenLogps pol = completion_logps(env.model, rows, env.pad_id, env.dev, env.autocast, false, cfg_.temperature);  // [N, C]
    // One update per batch of rollouts: the sampling policy is the current one, so the ratio is 1
    // in value and its gradient is the policy gradient.
    PolicyLossTerms t = grpo_loss(pol.logps, pol.logps.detach(), ref, adv, pol.mask, cfg_.beta, cfg_.clip_epsilon);
    const double n = std::max(1.0, step_counts.at(0));
    MicroLoss out;
    out.loss = t.per_sequence.sum() / n;
    at::NoGradGuard ng;
    auto ntok = pol.mask.sum(1).clamp_min(1);  // [N]
    auto per_row = [&](const at::Tensor& x) { return ((x * pol.mask).sum(1) / ntok).sum().item<double>() / n; };
    const at::Tensor grouped = r.view({-1, G});
    out.scalars = {{"reward", r.sum().item<double>() / n},
                   {"reward_std", (grouped.std(1, true) * static_cast<double>(G)).sum().item<double>() / n},
                   {"kl", per_row(t.kl)},
                   {"entropy", per_row(pol.entropy)},
                   {"clip_ratio", per_row(t.clipped)},
                   {"policy_loss", (t.per_sequence - cfg_.beta * (t.kl * pol.mask).sum(1) / ntok).sum().item<double>() / n},
                   {"completion_length", pol.mask.sum().item<double>() / n}};
    return out;
  }
};

}  // namespace

std::unique_ptr<Recipe> make_grpo_recipe() { return std::make_unique<GrpoRecipe>(); }

std::vector<ConfigKey> grpo_keys() { return rl_keys(); }

void check_grpo(const RunConfig& c, const std::string& where) {
  if (c.num_generations < 2) throw Error(where + ": \"num_generations\" must be at least 2 (advantages compare a group)");
  check_rl(c, where);
}

}  // namespace hone
