// The one vocabulary of training events, as JSON lines: started, step, log and done. `hone-cli
// train --json`, `runs resume --json` and the demo print them; the desktop app reads them back from
// `hone-cli launch` (several processes). Each encoder's decoder sits beside it, and a test holds
// them to each other. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "train/trainer.h"

namespace hone {

// {"event":"started","run_id","run_dir","total_steps","train_examples","eval_examples"[,"resumed"]}
nlohmann::json started_event(int64_t run_id, const std::string& run_dir, const RunPlan& plan);
// {"event":"step","step","total_steps","epoch",<every named scalar>,"eta_s","rss_mb","peak_rss_mb"
//  [,"plot_hints"][,"run_id"]}: run_id when it is known (> 0).
nlohmann::json step_event(const StepMetrics& m, int64_t run_id = 0);
// {"event":"log","message"}
nlohmann::json log_event(const std::string& message);
// {"event":"done","run_id","status","steps","final_loss","best_eval_loss","seconds","run_dir","output",
//  "last_checkpoint","trainable_params","metrics":{<the last step's scalars>}[,"error"]}. `status` is
// what the front end reports (an interrupted run's), which may differ from r.status.
nlohmann::json done_event(int64_t run_id, const std::string& run_dir, const std::string& status, const TrainResult& r);
// The event as one line, newline included.
std::string run_event_line(const nlohmann::json& event);

struct RunEvent {
  enum class Kind { Started, Step, Log, Done, Other };
  Kind kind = Kind::Other;
  int64_t run_id = 0;
  std::string run_dir;
  RunPlan plan;         // started
  StepMetrics step;     // step
  std::string message;  // log
  std::string status;   // done (and result.status as the run ended it)
  TrainResult result;   // done: steps, losses, seconds, output_dir, last_checkpoint, error, final_scalars
};

// The event a JSON object is; Kind::Other for anything else (a line of another vocabulary).
RunEvent parse_run_event(const nlohmann::json& j);
// The same from one line of text; false when the line is not a JSON object.
bool parse_run_event_line(const std::string& line, RunEvent* out);

}  // namespace hone
