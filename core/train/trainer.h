// The training loop shared by every recipe: accumulation, clipping, schedule, evaluation,
// checkpoints and exact resume, driven through a plain progress callback that can pause or cancel.
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "train/run_config.h"

namespace hone {

struct StepMetrics {
  int64_t step = 0, total_steps = 0;  // step counts finished optimizer steps
  double epoch = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0, elapsed_s = 0, eta_s = 0;
  int64_t rss_bytes = 0;
  bool has_eval = false;
  double eval_loss = 0, eval_ppl = 0;
  bool paused = false;
};

enum class Control { Continue, Pause, Cancel };
using ProgressFn = std::function<Control(const StepMetrics&)>;
using LogFn = std::function<void(const std::string&)>;

struct TrainOptions {
  std::string run_dir;      // adapter/ or model/, checkpoints/, metrics.jsonl, config.json
  std::string resume_from;  // a checkpoint folder ("" = start fresh)
  ProgressFn on_progress;
  LogFn on_log;
  // Called after each checkpoint folder is complete (the run's store records it).
  std::function<void(int64_t step, const std::string& dir)> on_checkpoint;
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
};

// Runs a whole training run. Configuration and data problems throw hone::Error before any
// training work; failures during training come back as status "failed" with the error.
TrainResult train(const RunConfig& cfg, const TrainOptions& opt);

// Peak resident memory of this process in bytes (VmHWM).
int64_t peak_rss_bytes();

}  // namespace hone
