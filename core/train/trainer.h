// Public entry to training: one run config in, one result out, driven through a plain progress
// callback that can pause or cancel. The work is done by a training session (train/session.cpp)
// over a recipe (train/recipe.h). Torch-free, so ui/ can include it.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "train/metrics.h"
#include "train/run_config.h"

namespace hone {

class ProcessGroup;

enum class Control { Continue, Pause, Cancel };
using ProgressFn = std::function<Control(const StepMetrics&)>;
using LogFn = std::function<void(const std::string&)>;

// What a run is about to do, known once everything was validated and the data prepared, before
// any training work (the launcher creates the run record only then).
struct RunPlan {
  int64_t total_steps = 0, start_step = 0;
  int64_t train_examples = 0, eval_examples = 0;
  int64_t trainable_params = 0;
  std::string resumed;  // "" for a fresh run; else what the resume restores
};

struct TrainOptions {
  std::string run_dir;      // adapter/ or model/, checkpoints/, metrics.jsonl, config.json
  std::string resume_from;  // a checkpoint folder ("" = start fresh)
  ProgressFn on_progress;
  LogFn on_log;
  // Called after each checkpoint folder is complete (the run's store records it).
  std::function<void(int64_t step, const std::string& dir)> on_checkpoint;
  // Polled between micro-batches: true stops the run within one micro-batch, with a checkpoint of
  // the last finished step (a signal handler or a Cancel button sets it).
  std::function<bool()> stop_requested;
  // Called once validation and data preparation passed, before the run folder is written.
  std::function<void(const RunPlan&)> on_ready;
  int rank = 0, world_size = 1;  // process rank (only rank 0 writes checkpoints, metrics and output)
  // Data-parallel training (distributed/process_group.h): every rank runs this with the same config; each
  // global batch (batch_size x world size examples) is split among the ranks, the gradients and
  // the step's metrics are summed over them, so the run equals one process with the global batch.
  // Sets rank and world_size; rank 0 alone writes.
  ProcessGroup* group = nullptr;
};

struct TrainResult {
  std::string status;  // completed | stopped_early | cancelled | failed
  std::string error;
  int64_t steps = 0;
  double final_loss = NAN, best_eval_loss = NAN;
  std::string output_dir, last_checkpoint;
  double seconds = 0;
  int64_t trainable_params = 0, frozen_weight_bytes = 0;
  std::vector<double> losses;  // per optimizer step, from step 1 (resumed runs: from the resume point)
  Scalars final_scalars;       // the last step's scalars (and the last evaluation's eval_*)
};

// Runs a whole training run. Configuration and data problems throw hone::Error before any
// training work; failures during training come back as status "failed" with the error.
TrainResult train(const RunConfig& cfg, const TrainOptions& opt);

// Peak resident memory this process needed, in bytes: anonymous + shared memory, sampled every
// 10 ms once watch_memory() runs (train() starts it); pages of mapped model files are not counted
// (common/memory_use.h; VmHWM, which counts them, is memory_use().rss_peak).
int64_t peak_rss_bytes();

}  // namespace hone
