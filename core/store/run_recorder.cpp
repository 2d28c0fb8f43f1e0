// Run recording: the lock makes a dead process detectable; metrics are flushed at every
// checkpoint so that a resumed run never lacks the points before its checkpoint.
#include "store/run_recorder.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/files.h"

namespace hone {

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

RunRecorder::RunRecorder(Workspace& ws, int64_t run_id, const std::string& run_dir)
    : ws_(ws), id_(run_id), metrics_(ws, run_id) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  const std::string lock = join_path(run_dir, "run.lock");
  lock_ = std::make_unique<RunLock>(lock);
  set_run_lock(ws_, id_, lock);
  set_run_status(ws_, id_, "running");
}

RunRecorder::~RunRecorder() = default;

void RunRecorder::step(const StepMetrics& m) {
  if (m.paused != is_paused_) paused(m.paused);
  if (m.paused) return;
  metrics_.add(m.step, "loss", m.loss);
  metrics_.add(m.step, "lr", m.lr);
  metrics_.add(m.step, "grad_norm", m.grad_norm);
  metrics_.add(m.step, "tokens_per_s", m.tokens_per_s);
  metrics_.add(m.step, "elapsed_s", m.elapsed_s);
  if (m.has_eval) {
    metrics_.add(m.step, "eval_loss", m.eval_loss);
    metrics_.add(m.step, "eval_ppl", m.eval_ppl);
  }
}

void RunRecorder::checkpoint(int64_t step, const std::string& dir) {
  metrics_.flush();
  add_artifact(ws_, id_, "checkpoint", step, dir, path_bytes(dir));
}

void RunRecorder::paused(bool on) {
  is_paused_ = on;
  metrics_.flush();
  set_run_status(ws_, id_, on ? "paused" : "running");
}

void RunRecorder::finish(const TrainResult& r, const std::string& method) {
  metrics_.flush();
  nlohmann::json fin = {{"steps", r.steps}, {"seconds", r.seconds}, {"trainable_params", r.trainable_params}};
  if (std::isfinite(r.final_loss)) fin["final_loss"] = r.final_loss;
  if (std::isfinite(r.best_eval_loss)) fin["best_eval_loss"] = r.best_eval_loss;
  if (!r.output_dir.empty() && is_directory(r.output_dir))
    add_artifact(ws_, id_, method == "full" ? "model" : "adapter", r.steps, r.output_dir, path_bytes(r.output_dir));
  finish_run(ws_, id_, r.status == "stopped_early" ? "completed" : r.status, r.error, fin.dump());
}

void RunRecorder::fail(const std::string& error) {
  metrics_.flush();
  finish_run(ws_, id_, "failed", error, "{}");
}

TrainResult RunRecorder::train(const RunConfig& cfg, TrainOptions opt) {
  attach(opt);
  TrainResult r;
  try {
    r = hone::train(cfg, opt);
  } catch (const std::exception& e) {
    fail(e.what());
    throw;
  }
  finish(r, cfg.method);
  return r;
}

void RunRecorder::attach(TrainOptions& opt) {
  auto prev_progress = opt.on_progress;
  opt.on_progress = [this, prev_progress](const StepMetrics& m) {
    step(m);
    return prev_progress ? prev_progress(m) : Control::Continue;
  };
  auto prev_ckpt = opt.on_checkpoint;
  opt.on_checkpoint = [this, prev_ckpt](int64_t s, const std::string& d) {
    checkpoint(s, d);
    if (prev_ckpt) prev_ckpt(s, d);
  };
}

}  // namespace hone
