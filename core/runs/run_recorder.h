// Records one training run in the workspace as it happens: status, metrics in batches, checkpoints
// and the result. The run launcher (runs/run_launcher.h) drives it for every front end.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "store/runs.h"
#include "train/trainer.h"

namespace hone {

// Creates the run record (status "queued") for a config about to be trained in run_dir.
// data_refs are the train_data entries as the user wrote them (e.g. "dataset:NAME").
int64_t record_new_run(Workspace& ws, const RunConfig& cfg, const std::vector<std::string>& data_refs,
                       const std::string& run_dir);

class RunRecorder {
 public:
  // Keeps the run's lock (the launcher's, or <run_dir>/run.lock taken here when none is given) and
  // marks it running. The Workspace must outlive the recorder and be used from its thread only.
  RunRecorder(Workspace& ws, int64_t run_id, const std::string& run_dir, std::unique_ptr<RunLock> lock = nullptr);
  ~RunRecorder();

  void step(const StepMetrics& m);  // every named scalar of the step
  void checkpoint(int64_t step, const std::string& dir);
  void paused(bool on);
  // Final status (default: the result's) and metrics; the output folder becomes an artifact.
  void finish(const TrainResult& r, const std::string& method, const std::string& status = "");
  void fail(const std::string& error);  // training threw before or while running
  // Hands the run's lock to the caller, who keeps the folder from being replaced while it still
  // uses the run (the demo evaluates it after training).
  std::unique_ptr<RunLock> release_lock() { return std::move(lock_); }

 private:
  void finish_records(const TrainResult& r, const std::string& method, const std::string& status);
  Workspace& ws_;
  int64_t id_;
  std::unique_ptr<RunLock> lock_;
  MetricsWriter metrics_;
  bool is_paused_ = false;
};

}  // namespace hone
