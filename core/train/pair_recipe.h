// The loop pieces the preference recipes share: examples of two sequences each (DPO/ORPO: chosen
// and rejected; KTO: the rated completion and a mismatched one for the KL estimate), batches of
// 2B rows (all first sequences, then all second ones), and reference log-probs from one of three
// sources: the policy with its adapters switched off (no second copy of the weights), a frozen copy
// (full fine-tuning), or a table computed once before training and cached in the run folder.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include "data/pairs.h"
#include "train/batches.h"
#include "train/logps.h"
#include "train/recipe.h"

namespace hone {

struct PairExample {
  Sequence a, b;
  bool desirable = true;  // kto only
};

class PairRecipe : public Recipe {
 public:
  int64_t train_size() const override { return static_cast<int64_t>(train_.size()); }
  int64_t eval_size() const override { return static_cast<int64_t>(eval_.size()); }
  std::vector<int64_t> train_lengths() const override;
  std::string data_summary() const override;
  int64_t tokens(const std::vector<size_t>& idx) const override;
  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override;
  void start(RecipeEnv& env, const RunConfig& cfg) override;
  // Held-out: every scalar of loss() averaged over the split, named "eval_<name>".
  Scalars evaluate(RecipeEnv& env, int64_t batch_size) override { return evaluate_by_loss(env, batch_size); }

  // Reference log-probs [2B] of the rows of examples idx (first sequences, then second ones).
  at::Tensor reference_logps(RecipeEnv& env, const std::vector<size_t>& idx, const Batch& b, bool eval_split);
  bool precomputed() const { return ref_train_.defined(); }
  Batch batch_of(const std::vector<size_t>& idx, int32_t pad, bool eval_split) const;
  const std::vector<PairExample>& train_examples() const { return train_; }

 protected:
  // Reads the files into examples, counting what was truncated or dropped; by default the
  // (chosen, rejected) pairs of DPO and ORPO (KTO builds rated examples instead).
  virtual std::vector<PairExample> build(const RunConfig& cfg, const Tokenizer& tok, const ChatTemplate& f,
                                         const std::vector<std::string>& files) {
    return build_pairs(cfg, tok, f, files);
  }
  // Both sequences tokenized; false (and counted as dropped) when either has no completion token.
  bool make_example(const Tokenizer& tok, const ChatTemplate& f, const RunConfig& cfg, const std::vector<ChatMessage>& prompt,
                    const std::vector<ChatMessage>& first, const std::vector<ChatMessage>& second, PairExample* out);
  // DPO/ORPO examples: (chosen, rejected) of every pair in the files.
  std::vector<PairExample> build_pairs(const RunConfig& cfg, const Tokenizer& tok, const ChatTemplate& f,
                                       const std::vector<std::string>& files);
  // TRL's pair metrics (rewards/*, logps/*, logits/*) of a micro-batch of B pairs, each summed
  // over the pairs and divided by the step's pair count n. logps, logits_mean: [2B], chosen first.
  static Scalars pair_metrics(const at::Tensor& chosen_rewards, const at::Tensor& rejected_rewards, const at::Tensor& logps,
                              const at::Tensor& logits_mean, int64_t B, double n);
  // Eval: mean of the recipe's scalars over held-out batches, each named "eval_<name>".
  Scalars evaluate_by_loss(RecipeEnv& env, int64_t batch_size);
  // The split that counts() and loss() index: train, or held-out during evaluation.
  const std::vector<PairExample>& ex() const { return use_eval_ ? eval_ : train_; }
  bool eval_split() const { return use_eval_; }
  std::vector<PairExample> train_, eval_;
  int64_t truncated_ = 0, dropped_ = 0;
  bool use_eval_ = false;  // loss() reads the held-out split (evaluation)
  bool eval_split_said_ = false;  // the log has said the evaluation is split over the processes

 private:
  at::Tensor compute_reference(RecipeEnv& env, const std::vector<PairExample>& ex, int64_t batch_size, bool as_is);
  at::Tensor ref_train_, ref_eval_;  // [N, 2] when precomputed
};

// The preference recipes' beta (KL strength; ORPO's lambda) must be positive.
void check_preference_beta(const RunConfig& c, const std::string& where);
// The keys DPO and KTO share: beta as the pull toward the reference, and precomputing its log-probs.
std::vector<ConfigKey> reference_keys();

}  // namespace hone
