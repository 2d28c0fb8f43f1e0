// hone-cli train: runs one training run from its JSON config, with a progress bar on a terminal
// or JSON lines (--json), writing the adapter/model and checkpoints into the run's folder.
#include <signal.h>
#include <unistd.h>

#include <atomic>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "store/datasets.h"
#include "store/runs.h"
#include "train/trainer.h"

namespace hone::cli {

static const char* kHelp = R"(usage: hone-cli train --config F [--workspace DIR] [--run-dir DIR] [--resume CHECKPOINT] [--json]
       hone-cli runs resume ID [--workspace DIR] [--json]

Trains as the run config F describes (see docs/run-config.md) and records the run, its metrics
and checkpoints in the workspace database (hone-cli runs list/show/compare). The run's folder is
<workspace>/runs/<name>-<date-time> unless --run-dir is given; it receives config.json,
metrics.jsonl, checkpoints/ and the result: adapter/ (PEFT files) or model/ (full fine-tuning).
--resume continues from a checkpoint folder (<run>/checkpoints/step-N) exactly where it stopped;
`runs resume ID` does that for a recorded run from its newest checkpoint.
--json prints one JSON object per step and a final {"event":"done",...} line.
Ctrl-C cancels after the current step and records the run as cancelled.
The workspace defaults to $HONE_WORKSPACE, else ~/.local/share/hone.
)";

static std::atomic<bool> g_interrupt{false};

std::string default_workspace() { return Workspace::default_dir(); }

static std::string fmt_time(double s) {
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof(b), "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else std::snprintf(b, sizeof(b), "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  return b;
}

// Runs training with the run recorded in the workspace: status, metrics in batches, checkpoints,
// final metrics. Shared by `train` and `runs resume`.
int run_recorded(Workspace& ws, int64_t run_id, const RunConfig& cfg, TrainOptions opt, bool json) {
  const bool tty = ::isatty(STDOUT_FILENO) && !json;
  std::error_code ec;
  std::filesystem::create_directories(opt.run_dir, ec);
  RunLock lock(join_path(opt.run_dir, "run.lock"));
  set_run_lock(ws, run_id, join_path(opt.run_dir, "run.lock"));
  set_run_status(ws, run_id, "running");
  MetricsWriter metrics(ws, run_id);
  g_interrupt = false;
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupt = true; };
  ::sigaction(SIGINT, &sa, nullptr);
  opt.on_log = [&](const std::string& s) {
    if (json) std::cout << nlohmann::json({{"event", "log"}, {"message", s}}).dump() << "\n" << std::flush;
    else std::cerr << s << "\n";
  };
  opt.on_checkpoint = [&](int64_t step, const std::string& dir) {
    metrics.flush();
    add_artifact(ws, run_id, "checkpoint", step, dir, path_bytes(dir));
  };
  opt.on_progress = [&](const StepMetrics& m) {
    metrics.add(m.step, "loss", m.loss);
    metrics.add(m.step, "lr", m.lr);
    metrics.add(m.step, "grad_norm", m.grad_norm);
    metrics.add(m.step, "tokens_per_s", m.tokens_per_s);
    metrics.add(m.step, "elapsed_s", m.elapsed_s);
    if (m.has_eval) metrics.add(m.step, "eval_loss", m.eval_loss), metrics.add(m.step, "eval_ppl", m.eval_ppl);
    if (json) {
      nlohmann::json j = {{"event", "step"}, {"run_id", run_id}, {"step", m.step}, {"total_steps", m.total_steps},
                          {"epoch", m.epoch}, {"loss", m.loss}, {"lr", m.lr}, {"grad_norm", m.grad_norm},
                          {"tokens_per_s", m.tokens_per_s}, {"elapsed_s", m.elapsed_s}, {"eta_s", m.eta_s},
                          {"rss_mb", m.rss_bytes / 1048576.0}};
      if (m.has_eval) j["eval_loss"] = m.eval_loss, j["eval_ppl"] = m.eval_ppl;
      std::cout << j.dump() << "\n" << std::flush;
    } else {
      const int width = 30;
      int fill = static_cast<int>(width * m.step / std::max<int64_t>(1, m.total_steps));
      std::string bar(fill, '#');
      bar += std::string(width - fill, '.');
      char line[256];
      std::snprintf(line, sizeof(line), "[%s] %lld/%lld loss %.4f lr %.2e %5.0f tok/s %s ETA %s%s", bar.c_str(),
                    static_cast<long long>(m.step), static_cast<long long>(m.total_steps), m.loss, m.lr, m.tokens_per_s,
                    fmt_time(m.elapsed_s).c_str(), fmt_time(m.eta_s).c_str(),
                    m.has_eval ? (" eval " + std::to_string(m.eval_loss).substr(0, 6)).c_str() : "");
      if (tty) std::cout << "\r" << line << std::flush;
      else std::cout << line << "\n";
    }
    return g_interrupt ? Control::Cancel : Control::Continue;
  };
  TrainResult r;
  try {
    r = train(cfg, opt);
  } catch (const std::exception& e) {
    metrics.flush();
    finish_run(ws, run_id, "failed", e.what(), "{}");
    throw;
  }
  metrics.flush();
  if (tty) std::cout << "\n";
  nlohmann::json fin = {{"steps", r.steps}, {"seconds", r.seconds}, {"trainable_params", r.trainable_params}};
  if (std::isfinite(r.final_loss)) fin["final_loss"] = r.final_loss;
  if (std::isfinite(r.best_eval_loss)) fin["best_eval_loss"] = r.best_eval_loss;
  const std::string status = r.status == "stopped_early" ? "completed" : r.status;
  if (!r.output_dir.empty() && is_directory(r.output_dir))
    add_artifact(ws, run_id, cfg.method == "full" ? "model" : "adapter", r.steps, r.output_dir, path_bytes(r.output_dir));
  finish_run(ws, run_id, status, r.error, fin.dump());
  nlohmann::json done = {{"event", "done"},       {"run_id", run_id},         {"status", r.status},
                         {"steps", r.steps},      {"final_loss", r.final_loss}, {"best_eval_loss", r.best_eval_loss},
                         {"seconds", r.seconds},  {"run_dir", opt.run_dir},   {"output", r.output_dir},
                         {"last_checkpoint", r.last_checkpoint}, {"trainable_params", r.trainable_params}};
  if (!r.error.empty()) done["error"] = r.error;
  if (json) std::cout << done.dump() << "\n";
  else std::cout << r.status << " after " << r.steps << " steps in " << fmt_time(r.seconds) << "; run " << run_id
                 << "; output: " << r.output_dir << "\n";
  if (r.status == "failed") {
    std::cerr << "error: " << r.error << "\n";
    return 1;
  }
  return r.status == "cancelled" ? 130 : 0;
}

int cmd_train(int argc, char** argv) {
  Args a(argc, argv, 2, "train", {"config", "workspace", "run-dir", "resume"}, {"json"});
  if (a.flag("help")) {
    std::cout << kHelp;
    return 0;
  }
  RunConfig cfg = load_run_config(a.require("config"));
  Workspace ws(a.get("workspace", default_workspace()));
  TrainOptions opt;
  if (a.has("run-dir")) {
    opt.run_dir = a.get("run-dir");
  } else {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
    opt.run_dir = join_path(ws.runs_dir(), cfg.name + "-" + stamp);
  }
  opt.resume_from = a.get("resume");
  // Workspace datasets ("dataset:NAME") are exported into the run folder first.
  const std::vector<std::string> refs = cfg.train_data;
  cfg.train_data = materialize_datasets(ws, cfg.train_data, join_path(opt.run_dir, "data"));
  cfg.eval_data = materialize_datasets(ws, cfg.eval_data, join_path(opt.run_dir, "data"));
  NewRun nr;
  nr.name = cfg.name;
  nr.method = cfg.method;
  nr.recipe = cfg.recipe;
  nr.base_model = cfg.base_model;
  nr.datasets = nlohmann::json(refs).dump();
  nr.config = cfg.to_json().dump();
  nr.run_dir = opt.run_dir;
  const int64_t id = create_run(ws, nr, "running");
  return run_recorded(ws, id, cfg, opt, a.flag("json"));
}

int cmd_runs_resume(Workspace& ws, int64_t id, bool json) {
  RunInfo info = get_run(ws, id);
  if (info.status == "running" || info.status == "completed")
    throw Error("run " + std::to_string(id) + " is " + info.status + "; only interrupted, cancelled, failed or paused runs resume");
  TrainOptions opt;
  opt.run_dir = info.run_dir;
  opt.resume_from = last_checkpoint(ws, id);
  if (opt.resume_from.empty()) throw Error("run " + std::to_string(id) + " has no checkpoint on disk to resume from (save_every was 0?)");
  RunConfig cfg = parse_run_config(nlohmann::json::parse(info.config), "run " + std::to_string(id) + " config");
  return run_recorded(ws, id, cfg, opt, json);
}

}  // namespace hone::cli
