// Training checkpoints for an exact resume: the trained weights (the adapter, with a PPO value
// model beside it, or the full model), the optimizer's moments, every random state and the loop's
// own state (trainer_state.json), written into a temporary folder and renamed into place; and
// each of them read back.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "peft/lora_config.h"
#include "train/adamw.h"
#include "train/run_config.h"

namespace hone {

// Every random state a run uses: the CPU generator (LoRA dropout, sampling) and, on CUDA, the device's.
struct RngState {
  at::Tensor cpu, cuda;
  static RngState capture(bool cuda);
  void restore() const;
};

// What the loop carries from step to step besides weights and moments.
struct LoopState {
  int64_t step = 0;
  double epoch = 0;
  double best_eval_loss = NAN;
  int64_t bad_evals = 0;
  nlohmann::json recipe_state;  // Recipe::state() (PPO's adaptive KL coefficient), null when none
};

class CheckpointWriter {
 public:
  CheckpointWriter(const std::string& run_dir, const RunConfig& cfg, int world_size);
  // Writes <run_dir>/checkpoints/step-NNNNNN (whole or not at all; the previous ones stay intact
  // on failure). Returns the folder.
  std::string save(const LoopState& s, const RngState& rng, CausalLM& model, const LoraConfig& lora, const AdamW& optim);
  // Deletes all but the newest keep_checkpoints.
  void prune();

 private:
  std::string root_;
  RunConfig cfg_;
  int world_;
};

// A checkpoint folder's trainer_state.json, refused when another recipe or another number of
// processes wrote it (the data position of a step depends on the global batch).
nlohmann::json read_trainer_state(const std::string& checkpoint, const RunConfig& cfg, int world_size);
LoopState loop_state_of(const nlohmann::json& trainer_state);
// Copies the checkpoint's trained weights into the run's model: the full model's, or its
// trainable parameters (PEFT names in the adapter file; a PPO value model in its own file).
void load_checkpoint_weights(const std::string& checkpoint, const std::string& method, CausalLM& model,
                             const std::vector<NamedParam>& params);
// The optimizer's moments and every random state, as the checkpointed step left them.
void restore_optimizer_and_rng(const std::string& checkpoint, const nlohmann::json& trainer_state, bool cuda, AdamW& optim);

}  // namespace hone
