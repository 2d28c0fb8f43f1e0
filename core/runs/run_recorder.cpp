// Run recording: the lock makes a dead process detectable; metrics are flushed at every
// checkpoint so that a resumed run never lacks the points before its checkpoint.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "runs/run_recorder.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/crash.h"
#include "common/files.h"

namespace hone {
namespace {

// A run's records must land: while another process holds the workspace's write lock past the busy
// timeout (10 s each try), training waits and tries again, for up to ~5 minutes, rather than fail.
template <typename F>
void patiently(F&& f) {
  for (int tries = 1;; ++tries) {
    try {
      f();
      return;
    } catch (const DbBusy&) {
      if (tries >= 30) throw;
    }
  }
}

}  // namespace

int64_t record_new_run(Workspace& ws, const RunConfig& cfg, const std::vector<std::string>& data_refs,
                       const std::string& run_dir) {
  NewRun nr;
  nr.name = cfg.name;
  nr.method = cfg.method;
  nr.recipe = cfg.recipe;
  nr.base_model = cfg.base_model;
  nr.datasets = nlohmann::json(data_refs).dump();
  nr.config = cfg.to_json().dump();
  nr.run_dir = run_dir;
  return create_run(ws, nr, "queued");
}

RunRecorder::RunRecorder(Workspace& ws, int64_t run_id, const std::string& run_dir, std::unique_ptr<RunLock> lock)
    : ws_(ws), id_(run_id), lock_(std::move(lock)), metrics_(ws, run_id) {
  if (!lock_) {
    std::error_code ec;
    std::filesystem::create_directories(run_dir, ec);
    lock_ = std::make_unique<RunLock>(join_path(run_dir, "run.lock"));
  }
  set_run_lock(ws_, id_, lock_->path());
  set_run_status(ws_, id_, "running");
  set_crash_workspace(ws_.dir());
  set_crash_run(id_);  // a fatal signal now writes a report and marks this run interrupted
}

RunRecorder::~RunRecorder() { set_crash_run(0); }

void RunRecorder::step(const StepMetrics& m) {
  if (m.paused != is_paused_) paused(m.paused);
  if (m.paused) return;
  for (const auto& x : m.scalars)
    if (std::isfinite(x.value)) metrics_.add(m.step, x.name, x.value);
}

void RunRecorder::checkpoint(int64_t step, const std::string& dir) {
  metrics_.flush();
  const int64_t bytes = path_bytes(dir);
  patiently([&] { add_artifact(ws_, id_, "checkpoint", step, dir, bytes); });
}

void RunRecorder::paused(bool on) {
  is_paused_ = on;
  metrics_.flush();
  patiently([&] { set_run_status(ws_, id_, on ? "paused" : "running"); });
}

void RunRecorder::finish(const TrainResult& r, const std::string& method, const std::string& status) {
  patiently([&] { finish_records(r, method, status); });
}

void RunRecorder::finish_records(const TrainResult& r, const std::string& method, const std::string& status) {
  metrics_.flush();
  if (metrics_.pending()) throw DbBusy(ws_.db_path() + ": the run's last metrics wait for the write lock");
  Transaction t(ws_.db());  // the artifact and the final status land together, so a retry adds neither twice
  nlohmann::json fin = {{"steps", r.steps}, {"seconds", r.seconds}, {"trainable_params", r.trainable_params}};
  if (std::isfinite(r.final_loss)) fin["final_loss"] = r.final_loss;
  if (std::isfinite(r.best_eval_loss)) fin["best_eval_loss"] = r.best_eval_loss;
  for (const auto& x : r.final_scalars)
    if (std::isfinite(x.value) && x.name != "loss" && x.name != "elapsed_s") fin[x.name] = x.value;
  if (!r.output_dir.empty() && is_directory(r.output_dir))
    add_artifact(ws_, id_, method == "full" ? "model" : "adapter", r.steps, r.output_dir, path_bytes(r.output_dir));
  const std::string st = status.empty() ? r.status : status;
  finish_run(ws_, id_, st == "stopped_early" ? "completed" : st, r.error, fin.dump());
  t.commit();
}

void RunRecorder::fail(const std::string& error) {
  patiently([&] {
    metrics_.flush();
    if (metrics_.pending()) throw DbBusy(ws_.db_path() + ": the run's last metrics wait for the write lock");
    finish_run(ws_, id_, "failed", error, "{}");
  });
}

}  // namespace hone
