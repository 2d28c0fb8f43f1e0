// The loop pieces of the next-token recipes (SFT and continued pre-training): sequences with a loss
// mask, the token-summed cross entropy normalised by the step's label tokens, and held-out loss and
// perplexity. The two recipes differ only in how they build their sequences (recipe_sft.cpp,
// recipe_cpt.cpp).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include "data/sequences.h"
#include "train/batches.h"
#include "train/recipe.h"

namespace hone {

class TokenRecipe : public Recipe {
 public:
  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override;
  int64_t train_size() const override { return static_cast<int64_t>(train_.size()); }
  int64_t eval_size() const override { return static_cast<int64_t>(eval_.size()); }
  std::vector<int64_t> train_lengths() const override;
  std::string data_summary() const override;
  std::vector<double> counts(const std::vector<size_t>& idx) const override;
  int64_t tokens(const std::vector<size_t>& idx) const override;
  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override;
  Scalars evaluate(RecipeEnv& env, int64_t batch_size) override;

 protected:
  // Token sequences of the given files.
  virtual std::vector<Sequence> build(const RunConfig& cfg, const Tokenizer& tok, const std::vector<std::string>& files,
                                      TokenizeStats* st, const LogFn& log) = 0;
  std::vector<Sequence> train_, eval_;
  bool eval_split_said_ = false;
  TokenizeStats stats_;
};

// Token-summed next-token cross entropy of a batch (labels -100: no loss).
at::Tensor batch_loss_sum(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast);

}  // namespace hone
