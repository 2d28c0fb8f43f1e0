// Records one training run in the workspace as it happens: status, metrics in batches, checkpoints
// and the result. hone-cli and the GUI both train through it, so a run looks the same in the store
// whichever started it.
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
  // Takes the run's lock (<run_dir>/run.lock) and marks it running. The Workspace must outlive
  // the recorder and be used from the recorder's thread only.
  RunRecorder(Workspace& ws, int64_t run_id, const std::string& run_dir);
  ~RunRecorder();

  void step(const StepMetrics& m);  // loss, lr, grad_norm, tokens_per_s, elapsed_s (+ eval_loss, eval_ppl)
  void checkpoint(int64_t step, const std::string& dir);
  void paused(bool on);
  // Final status and metrics; the output folder becomes an artifact.
  void finish(const TrainResult& r, const std::string& method);
  void fail(const std::string& error);  // training threw before or while running

  // Wires step/checkpoint into the options (keeping any callbacks already there).
  void attach(TrainOptions& opt);
  // attach + train + finish; an exception from train() is recorded as the failure and rethrown.
  TrainResult train(const RunConfig& cfg, TrainOptions opt);

 private:
  Workspace& ws_;
  int64_t id_;
  std::unique_ptr<RunLock> lock_;
  MetricsWriter metrics_;
  bool is_paused_ = false;
};

}  // namespace hone
