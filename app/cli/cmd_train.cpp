// hone-cli train: runs one training run from its JSON config, with a progress bar on a terminal
// or JSON lines (--json), writing the adapter/model and checkpoints into the run's folder.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <signal.h>
#include <unistd.h>


#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "common/runtime.h"
#include "distributed/process_group.h"
#include "store/datasets.h"
#include "model/config.h"
#include "runs/run_events.h"
#include "runs/run_launcher.h"
#include "train/memory_plan.h"
#include "train/trainer.h"

namespace hone::cli {

const char* const kTrainUsage = R"(usage: hone-cli train --config F [--workspace DIR] [--run-dir DIR] [--resume CHECKPOINT] [--json] [--dry-run]
                      [--dist-timeout SECONDS]
       hone-cli runs resume ID [--workspace DIR] [--json]

Trains as the run config F describes (see docs/run-config.md) and records the run, its metrics
and checkpoints in the workspace database (hone-cli runs list/show/compare). Everything is checked
before a run is recorded: a wrong model folder, data file or dataset kind leaves no run behind.

The config's "recipe" is one of:
{recipes}
and its "method" one of:
{methods}
The run's folder is <workspace>/runs/<name>-<date-time> unless --run-dir is given; it receives
config.json, metrics.jsonl, checkpoints/ and the result: adapter/ (PEFT files) or model/ (full).
--resume continues from a checkpoint folder (<run>/checkpoints/step-N) exactly where it stopped;
`runs resume ID` does that for a recorded run from its newest checkpoint.
--dry-run prints the run's memory plan (weights, adapters, optimizer, activations, runtime: within
15% of the measured peak RSS on the Qwen2.5 and Llama 3.2 shapes, docs/performance.md) and, when it
will not fit, what would; nothing is trained or recorded.
--json prints one JSON object per step with every metric the recipe reports, and a final
{"event":"done",...} line.
Ctrl-C, SIGTERM or SIGHUP (a closed terminal, logout) stop the run within one micro-batch: a
checkpoint is written and the run is recorded as interrupted, ready for `runs resume`. Runs also
checkpoint every save_every_minutes (default 10) besides every save_every steps.
SIGUSR1 stops the same way but records the run as cancelled (the desktop app's Cancel).
SIGUSR2 pauses the run after the step in progress (everything stays in memory; the run is
recorded as paused) and, sent again, resumes it; with several processes send it to
`hone-cli launch`, which passes it on, and all ranks pause and resume together.
The workspace defaults to $HONE_WORKSPACE, else ~/.local/share/hone.

Several processes (data-parallel, docs/scale-out.md): started by torchrun, srun or
`hone-cli launch --nproc N -- train ...`, the processes join one c10d group (Gloo) from RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT (or SLURM_PROCID, SLURM_NTASKS, ...). Each global batch is
batch_size x processes examples. Rank 0 records the run and writes its folder; the others print
only their errors. A collective that waits longer than --dist-timeout (default 600 s) fails; a lost
rank stops the others at once, the run is recorded as interrupted and `runs resume` continues it
from its last checkpoint with the same number of processes.
)";


static volatile sig_atomic_t g_signal = 0;
static volatile sig_atomic_t g_paused = 0;  // toggled by SIGUSR2

// The process group of a distributed launch, joined once per process from the environment
// (nullptr when this process runs alone).
static std::unique_ptr<ProcessGroup> join_group_from_env(double timeout_s) {
  const DistEnv env = dist_env_from_process();
  if (!env.distributed()) return nullptr;
  // Several processes on one machine with GPUs: each sees its own GPU (the local rank's) as device
  // 0, before CUDA starts, so that the session and NCCL need no device index. A list the user set
  // is honoured: the local rank picks from it.
  if (env.local_world_size > 1) {
    std::string pick = std::to_string(env.local_rank);
    if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES"); v && *v) {
      std::vector<std::string> ids;
      std::string cur;
      for (const char* c = v;; ++c) {
        if (*c == ',' || !*c) {
          ids.push_back(cur);
          cur.clear();
          if (!*c) break;
        } else {
          cur += *c;
        }
      }
      pick = ids.size() > 1 ? ids[static_cast<size_t>(env.local_rank) % ids.size()] : ids[0];
    }
    ::setenv("CUDA_VISIBLE_DEVICES", pick.c_str(), 1);
  }
  const auto ms = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  return std::make_unique<ProcessGroup>(env, ms);
}

std::string default_workspace() { return Workspace::default_dir(); }

Workspace open_workspace(const std::string& dir) {
  Workspace ws(dir);
  for (const auto& r : ws.reaped())
    std::cerr << "note: run " << r.id << " (" << r.name << ") was still marked running, but its process"
              << (r.pid > 0 ? " (pid " + std::to_string(r.pid) + ")" : std::string()) << " is gone: marked interrupted; continue it with: hone-cli runs resume " << r.id << "\n";
  for (const auto& c : ws.cleaned()) std::cerr << "note: " << c << "\n";
  return ws;
}

static std::string fmt_time(double s) {
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof(b), "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else std::snprintf(b, sizeof(b), "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  return b;
}

// Trains through the run launcher with a progress bar or JSON lines. Shared by `train` and
// `runs resume`.
static int run_launched(const std::string& workspace, LaunchSpec spec, bool json, double dist_timeout_s) {
  const bool tty = ::isatty(STDOUT_FILENO) && !json;
  g_signal = 0;
  g_paused = 0;
  struct sigaction sa {};
  sa.sa_handler = [](int sig) { g_signal = sig; };
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) ::sigaction(sig, &sa, nullptr);
  struct sigaction pa {};
  pa.sa_handler = [](int) { g_paused = !g_paused; };
  ::sigaction(SIGUSR2, &pa, nullptr);
  std::unique_ptr<ProcessGroup> group = join_group_from_env(dist_timeout_s);
  LaunchHooks h;
  int64_t run_id = 0;
  h.stop_requested = [] { return g_signal != 0; };
  h.stop_status = [] { return std::string(g_signal == SIGUSR1 || !g_signal ? "cancelled" : "interrupted"); };
  if (group && group->rank() != 0) {
    // A follower: trains its share silently; rank 0 speaks for the run. Its own failure is one
    // line on stderr, prefixed with its rank.
    const std::string tag = "[rank " + std::to_string(group->rank()) + "] ";
    h.on_log = [](const std::string&) {};
    try {
      TrainResult r = follow_run(*group, h);
      if (r.status == "failed" || r.status == "interrupted") {
        std::cerr << tag << "error: " << r.error << "\n";
        return 1;
      }
      return r.status == "cancelled" ? 130 : 0;
    } catch (const std::exception& e) {
      const std::string w = e.what();
      std::cerr << tag << "error: " << w.substr(0, w.find('\n')) << "\n";
      return 1;
    }
  }
  h.on_log = [&](const std::string& s) {
    if (json) std::cout << run_event_line(log_event(s)) << std::flush;
    else std::cerr << s << "\n";
  };
  spec.group = group.get();
  Workspace ws = open_workspace(workspace);
  h.on_started = [&](int64_t id, const std::string& dir, const RunPlan& plan) {
    run_id = id;
    if (json) {
      std::cout << run_event_line(started_event(id, dir, plan)) << std::flush;
    } else {
      std::cerr << "run " << id << " in " << dir << (plan.resumed.empty() ? "" : "; resuming " + plan.resumed) << "\n";
    }
  };
  bool said_paused = false;
  h.on_progress = [&](const StepMetrics& m) {
    if (m.paused) {  // called every 50 ms while paused: say it once
      if (!said_paused) {
        if (json) std::cout << run_event_line(step_event(m, run_id)) << std::flush;
        else std::cerr << (tty ? "\n" : "") << "paused after step " << m.step << " (send SIGUSR2 again to resume)\n";
      }
      said_paused = true;
      return g_paused ? Control::Pause : Control::Continue;
    }
    said_paused = false;
    if (json) {
      std::cout << run_event_line(step_event(m, run_id)) << std::flush;
    } else {
      const int width = 30;
      int fill = static_cast<int>(width * m.step / std::max<int64_t>(1, m.total_steps));
      std::string bar(fill, '#');
      bar += std::string(width - fill, '.');
      char line[320];
      std::string extra;
      for (const auto& name : m.plot_hints)
        if (m.has(name)) extra += " " + name.substr(name.find('/') + 1) + " " + std::to_string(m.get(name)).substr(0, 6);
      if (m.has_eval()) extra += " eval " + std::to_string(m.get("eval_loss")).substr(0, 6);
      std::snprintf(line, sizeof(line), "[%s] %lld/%lld loss %.4f lr %.2e %5.0f tok/s %s ETA %s%s", bar.c_str(),
                    static_cast<long long>(m.step), static_cast<long long>(m.total_steps), m.loss(), m.get("lr"),
                    m.get("tokens_per_s"), fmt_time(m.get("elapsed_s")).c_str(), fmt_time(m.eta_s).c_str(), extra.c_str());
      if (tty) std::cout << "\r" << line << std::flush;
      else std::cout << line << "\n";
    }
    return g_paused ? Control::Pause : Control::Continue;
  };
  LaunchResult lr = launch_run(ws, spec, h);
  const TrainResult& r = lr.result;
  const bool signalled = g_signal != 0 && g_signal != SIGUSR1 && r.status == "cancelled";
  const std::string status = signalled ? "interrupted" : r.status;
  if (tty) std::cout << "\n";
  if (json) std::cout << run_event_line(done_event(lr.run_id, lr.run_dir, status, r));
  else std::cout << status << " after " << r.steps << " steps in " << fmt_time(r.seconds) << "; run " << lr.run_id
                 << "; output: " << r.output_dir << (signalled ? "; resume with: hone-cli runs resume " + std::to_string(lr.run_id) : "")
                 << "\n";
  if (r.status == "interrupted") {  // a lost rank: one line saying which, and how to go on
    std::cerr << "error: " << r.error << "; continue with: hone-cli runs resume " << lr.run_id << "\n";
    return 1;
  }
  if (r.status == "failed") {
    std::cerr << "error: " << r.error << "\n";
    return 1;
  }
  return r.status == "cancelled" ? 130 : 0;
}

// --dry-run: the memory plan (train/memory_plan.h) for this config on this machine, nothing run.
static int dry_run(const RunConfig& cfg, bool json) {
  const ModelConfig model = load_model_config(cfg.base_model);
  const DistEnv env = dist_env_from_process();
  const int procs = env.distributed() ? env.local_world_size : 1;  // what this machine holds
  const double ram = physical_memory_bytes();
  const MemoryPlan p = plan_memory(model, cfg, procs, ram);
  const bool fits = p.total <= 0.85 * ram;
  if (json) {
    nlohmann::json j = {{"weights_bytes", p.weights}, {"adapters_bytes", p.adapters}, {"optimizer_bytes", p.optimizer},
                        {"activations_bytes", p.activations}, {"runtime_bytes", p.runtime}, {"per_process_bytes", p.per_process},
                        {"total_bytes", p.total}, {"processes", p.processes}, {"ram_bytes", ram}, {"fits", fits},
                        {"base_dtype", p.base_bf16 ? "bf16" : "f32"}, {"base_dtype_reason", p.base_why}, {"fixes", p.fixes}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "model: " << model.model_type << ", " << model.parameter_count() << " parameters; " << cfg.method << " " << cfg.recipe
              << ", batch " << cfg.batch_size << " x " << cfg.max_seq_len << " tokens"
              << (cfg.gradient_checkpointing ? ", gradient checkpointing" : "") << "\n"
              << "base weights: " << p.base_why << "\n"
              << "memory: " << p.summary() << " of " << format_bytes(ram) << " RAM\n";
    if (!fits) {
      std::cout << "will not fit (over 85% of RAM). Each of these would change the total to:\n";
      for (const auto& f : p.fixes) std::cout << "  " << f << "\n";
    }
  }
  return 0;
}

int cmd_train(const Args& a) {
  LaunchSpec spec;
  spec.cfg = load_run_config(a.require("config"));
  if (a.flag("dry-run")) return dry_run(spec.cfg, a.flag("json"));
  spec.run_dir = a.get("run-dir");
  spec.resume_checkpoint = a.get("resume");
  const double timeout = std::stod(a.get("dist-timeout", "600"));
  if (!(timeout > 0)) throw Error("--dist-timeout must be a positive number of seconds");
  return run_launched(a.get("workspace", default_workspace()), spec, a.flag("json"), timeout);
}

int cmd_runs_resume(const std::string& workspace, int64_t id, bool json) {
  LaunchSpec spec;
  spec.resume_run = id;
  return run_launched(workspace, spec, json, 600);
}

}  // namespace hone::cli
