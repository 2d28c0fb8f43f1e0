// A recipe is what differs between training methods: how it prepares its data, the loss of one
// micro-batch (with named scalars), and its evaluation. The training session (train/session.cpp)
// owns everything they share: model set-up, optimizer, schedule, accumulation, clipping,
// checkpoints, resume and metrics. What each recipe is (name, data, methods, keys, presets, plot
// hints) is a row of the recipe table (train/recipes.h); its code is one file each (pair_recipe
// and rl_recipe hold what the preference and RL recipes share).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace hone {

// What the session hands a recipe once the model is set up.
struct RecipeEnv {
  CausalLM model{nullptr};
  at::Device dev = at::kCPU;
  bool autocast = false;     // CUDA bf16 autocast around forward passes
  bool adapters = false;     // the policy has LoRA adapters (the reference is the adapters switched off)
  CausalLM reference{nullptr};  // full fine-tuning: a frozen copy of the base (null otherwise)
  std::string run_dir;       // the recipe may cache derived data here (DPO reference log-probs)
  LogFn log;
  int32_t pad_id = 0;
  int64_t update = 0;  // which of the step's updates_per_step() optimizer updates is being computed
  int64_t micro = 0;   // which of the step's micro-batches loss() is called for
  // Data-parallel runs: the process group, for a recipe whose step needs figures of the whole
  // global batch (PPO's advantage whitening); null on one process.
  ProcessGroup* group = nullptr;
};

// One micro-batch's share of a step: `loss` is already divided by the step's normalisers (so the
// micro-batches' losses add up to the step loss and their gradients to the step gradient), and so
// is each scalar (summed by name over the micro-batches).
struct MicroLoss {
  at::Tensor loss;
  Scalars scalars;
};

class Recipe {
 public:
  virtual ~Recipe() = default;
  // Reads and tokenizes the data (train and held-out); throws hone::Error naming the file, line or
  // field, or the dataset's kind when it is the wrong one for the recipe.
  virtual void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) = 0;
  virtual int64_t train_size() const = 0;
  virtual int64_t eval_size() const = 0;
  virtual std::vector<int64_t> train_lengths() const = 0;  // per example, for length bucketing
  virtual std::string data_summary() const = 0;             // one line for the log
  // After the method's adapters are attached and before the optimizer collects the trainable
  // parameters: a recipe adds the modules it trains besides them (the reward model's score head).
  virtual void setup_model(CausalLM& model, const RunConfig& cfg) { (void)model, (void)cfg; }
  // After the model is set up and before the first step (DPO: precomputes reference log-probs).
  virtual void start(RecipeEnv& env, const RunConfig& cfg) { (void)env, (void)cfg; }
  // At the start of each step, before any loss(): the step's micro-batches (PPO samples and scores
  // the whole batch of rollouts here, so that advantages are whitened over all of it).
  virtual void begin_step(RecipeEnv& env, const std::vector<std::vector<size_t>>& micro) { (void)env, (void)micro; }
  // Optimizer updates per step over the same micro-batches (PPO's epochs over a batch of rollouts):
  // the session calls loss() for every micro-batch, steps the optimizer, and repeats. The step's
  // loss is the mean over its updates; scalars are summed over every call, so a recipe with several
  // updates divides its per-update scalars by their number. Checkpoints fall between steps.
  virtual int64_t updates_per_step() const { return 1; }
  // State a recipe carries from step to step (PPO's adaptive KL coefficient), saved with each
  // checkpoint and handed back on resume.
  virtual nlohmann::json state() const { return nullptr; }
  virtual void restore_state(const nlohmann::json& s) { (void)s; }
  // Normalisers of a micro-batch (label tokens for SFT; pairs for DPO). The session sums them over
  // the step's micro-batches before computing any loss and passes the sums to loss().
  virtual std::vector<double> counts(const std::vector<size_t>& idx) const = 0;
  virtual int64_t tokens(const std::vector<size_t>& idx) const = 0;  // real tokens (throughput)
  virtual MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) = 0;
  // Held-out evaluation: eval_loss (early stopping watches it) and the recipe's eval_* scalars.
  virtual Scalars evaluate(RecipeEnv& env, int64_t batch_size) = 0;
};

// The recipe table's factory for `name` (throws listing the recipes when there is none).
std::unique_ptr<Recipe> make_recipe(const std::string& name);

// The chat format a run renders conversations with: the run's chat_template, or the model's own.
// The run's chat template: "chat_template" auto (the checkpoint's own), checkpoint, or a family name.
ChatTemplate chat_template_for(const RunConfig& cfg, const Tokenizer& tok);

// Shared by the recipes: holds out a seeded fraction of `train` (a seeded permutation; the first
// fraction goes to *eval) when eval data was not given. The train order is the permuted order.
template <typename T>
void hold_out(std::vector<T>& train, std::vector<T>& eval, double fraction, uint64_t seed);

// Autocast on CUDA for the span of a forward pass: PyTorch's own op lists decide what runs in
// bf16 (matmuls) and what stays fp32 (norms, softmax, the loss; logits are cast to fp32).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool on);
  ~CudaAutocast();
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
};

}  // namespace hone

#include "train/recipe_inl.h"
