// What the RL recipes (grpo, ppo) share: prompts from chat data (the messages before the last
// assistant turn, whose content is the reference answer for the "exact" rule), the stop tokens,
// sampling a micro-batch's rollouts with the session's generator, scoring completions with rule
// rewards and/or a trained reward model, log-probs under the reference (the adapters switched
// off, or the starting adapter swapped in when the run starts from one), and the held-out
// evaluation (one greedy completion per prompt).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/records.h"
#include "train/reward_scorer.h"
#include "train/recipe.h"
#include "train/rollout.h"
#include "train/rule_reward.h"

namespace hone {

struct PromptExample {
  std::vector<ChatMessage> prompt;
  std::string reference;
  std::vector<int32_t> ids;
};

class RlRecipe : public Recipe {
 public:
  int64_t train_size() const override { return static_cast<int64_t>(train_.size()); }
  int64_t eval_size() const override { return static_cast<int64_t>(eval_.size()); }
  std::vector<int64_t> train_lengths() const override;
  std::string data_summary() const override;
  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override;
  void start(RecipeEnv& env, const RunConfig& cfg) override;
  std::vector<double> counts(const std::vector<size_t>& idx) const override;
  int64_t tokens(const std::vector<size_t>& idx) const override;
  // eval_reward is the mean reward of one greedy completion per held-out prompt; eval_loss (which
  // early stopping watches) is how far it is from the most the rules can give.
  Scalars evaluate(RecipeEnv& env, int64_t batch_size) override;

 protected:
  RolloutSettings settings(int64_t group, double temperature) const;
  // num_generations completions of each prompt in idx, sampled with the session's global CPU
  // generator (its state is in every checkpoint, so a resumed run samples alike); prompt_of maps
  // each row to its prompt.
  std::vector<Rollout> sample(RecipeEnv& env, const std::vector<size_t>& idx, std::vector<size_t>* prompt_of);
  // Per-token log-probs [N, C] of the rollouts under the reference, without gradients.
  at::Tensor reference_logps(RecipeEnv& env, const std::vector<Rollout>& rows);
  // Rule rewards on the decoded completion (without its stop token) plus the reward model's score.
  std::vector<double> score(const std::vector<Rollout>& rows, const std::vector<size_t>& prompt_of);
  // Says once, in the run's log, when batch after batch every completion scored the same: the
  // rewards then carry no signal (a policy that never succeeds), which a flat curve does not say.
  void note_flat_rewards(RecipeEnv& env, const std::vector<double>& rewards);

  RunConfig cfg_;

 private:
  std::vector<PromptExample> build(const std::vector<std::string>& files, ExampleFormat fmt);
  const std::vector<PromptExample>& ex() const { return use_eval_ ? eval_ : train_; }

  const Tokenizer* tok_ = nullptr;
  ChatTemplate format_ = ChatFormat::ChatML;
  RuleReward rules_;
  std::unique_ptr<RewardScorer> scorer_;
  std::vector<std::pair<at::Tensor, at::Tensor>> reference_adapter_;  // (parameter, its starting value)
  std::vector<int64_t> stop_ids_;
  std::vector<PromptExample> train_, eval_;
  int64_t dropped_ = 0;
  bool use_eval_ = false;
  int flat_batches_ = 0;  // consecutive training batches whose completions all scored alike
};

// The keys both RL recipes read (sampling, rewards, the KL's beta) and their checks; grpo and ppo
// add their own (recipe_grpo.cpp, recipe_ppo.cpp).
std::vector<ConfigKey> rl_keys();
void check_rl(const RunConfig& c, const std::string& where);

}  // namespace hone
