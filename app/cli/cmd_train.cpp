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
#include "store/run_recorder.h"
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
  RunRecorder rec(ws, run_id, opt.run_dir);
  g_interrupt = false;
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupt = true; };
  ::sigaction(SIGINT, &sa, nullptr);
  opt.on_log = [&](const std::string& s) {
    if (json) std::cout << nlohmann::json({{"event", "log"}, {"message", s}}).dump() << "\n" << std::flush;
    else std::cerr << s << "\n";
  };
  opt.on_progress = [&](const StepMetrics& m) {
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
  TrainResult r = rec.train(cfg, opt);
  if (tty) std::cout << "\n";
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
  const int64_t id = record_new_run(ws, cfg, refs, opt.run_dir);
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
