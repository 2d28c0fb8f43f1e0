// Run launcher (see run_launcher.h). The run record is created from the session's on_ready hook:
// by then the model, tokenizer, data and settings have all been read and checked.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "runs/run_launcher.h"

#include <algorithm>

#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "distributed/process_group.h"
#include "store/datasets.h"
#include "runs/run_recorder.h"
#include "train/recipes.h"
#include "store/runs.h"

namespace hone {

void check_dataset_kinds(Workspace& ws, const RunConfig& cfg) {
  const RecipeInfo& recipe = recipe_info(cfg.recipe);
  auto check = [&](const std::vector<std::string>& refs) {
    for (const auto& r : refs) {
      if (r.rfind("dataset:", 0) != 0) continue;
      const std::string name = r.substr(8);
      bool found = false;
      for (const auto& d : list_datasets(ws)) {
        if (d.name != name) continue;
        found = true;
        // Labelled candidates are preference pairs once exported (materialize_datasets).
        if (!recipe.reads_kind(d.kind))
          throw Error("dataset \"" + name + "\" holds " + d.kind + " rows; the " + cfg.recipe + " recipe needs a " +
                      recipe.data_kind + " dataset");
      }
      if (!found) throw Error("no dataset \"" + name + "\" in " + ws.dir() + " (hone-cli dataset list shows them)");
    }
  };
  check(cfg.train_data);
  check(cfg.eval_data);
  for (const auto& r : cfg.eval_suites) {
    if (std::find(cfg.train_data.begin(), cfg.train_data.end(), r) != cfg.train_data.end())
      throw Error("eval_suites: " + r + " is also in train_data; a suite the run trains on measures memory, not skill");
    if (r.rfind("dataset:", 0) != 0) continue;
    const DatasetInfo d = find_dataset(ws, r.substr(8));
    if (d.kind != "choice" && d.kind != "chat" && d.kind != "text")
      throw Error("eval_suites: dataset \"" + d.name + "\" holds " + d.kind + " rows; a suite is a choice, chat or text dataset");
  }
}

RunConfig recorded_run_config(Workspace& ws, int64_t id) {
  const RunInfo info = get_run(ws, id);
  RunConfig cfg = parse_run_config(nlohmann::json::parse(info.config), "run " + std::to_string(id) + " config");
  const auto refs = nlohmann::json::parse(info.datasets.empty() ? "null" : info.datasets, nullptr, false);
  if (refs.is_array() && !refs.empty()) {
    cfg.train_data.clear();
    for (const auto& r : refs)
      if (r.is_string()) cfg.train_data.push_back(r.get<std::string>());
  }
  return cfg;
}

std::string resumable_checkpoint(Workspace& ws, int64_t id) {
  RunInfo info = get_run(ws, id);
  if (info.status == "running" || info.status == "completed")
    throw Error("run " + std::to_string(id) + " is " + info.status + "; only interrupted, cancelled, failed or paused runs resume");
  std::string ck = last_checkpoint(ws, id);
  if (ck.empty()) throw Error("run " + std::to_string(id) + " has no checkpoint on disk to resume from");
  return ck;
}

namespace {

const char* kLaunchKey = "hone/launch";

LaunchResult launch_run_impl(Workspace& ws, const LaunchSpec& spec, const LaunchHooks& hooks, bool& shared);

}  // namespace

LaunchResult launch_run(Workspace& ws, const LaunchSpec& spec, const LaunchHooks& hooks) {
  bool shared = false;
  try {
    return launch_run_impl(ws, spec, hooks, shared);
  } catch (const std::exception& e) {
    // The other ranks wait for the launch: tell them why there is none.
    if (spec.group && !shared) spec.group->share(kLaunchKey, nlohmann::json({{"error", e.what()}}).dump());
    throw;
  }
}

TrainResult follow_run(ProcessGroup& group, const LaunchHooks& hooks) {
  const auto j = nlohmann::json::parse(group.share(kLaunchKey, ""));
  if (j.contains("error"))
    throw Error("rank 0 could not start the run: " + j["error"].get<std::string>());
  TrainOptions opt;
  const RunConfig cfg = parse_run_config(j.at("config"), "the run config rank 0 shared");
  opt.run_dir = j.at("run_dir").get<std::string>();
  opt.resume_from = j.at("resume_from").get<std::string>();
  opt.group = &group;
  opt.on_log = hooks.on_log;
  opt.stop_requested = hooks.stop_requested;
  return train(cfg, opt);
}

namespace {

LaunchResult launch_run_impl(Workspace& ws, const LaunchSpec& spec, const LaunchHooks& hooks, bool& shared) {
  LaunchResult out;
  RunConfig cfg = spec.cfg;
  TrainOptions opt;
  std::vector<std::string> refs;
  bool made_dir = false;
  // The folder's lock is taken before anything is written into it and kept to the end of the run,
  // so two processes never train in, replace or resume one folder (docs/reliability.md).
  std::unique_ptr<RunLock> lock;
  if (spec.resume_run > 0) {
    RunInfo info = get_run(ws, spec.resume_run);
    opt.resume_from = resumable_checkpoint(ws, spec.resume_run);
    lock = RunLock::try_take(join_path(info.run_dir, "run.lock"));
    if (!lock) {
      const long pid = lock_holder_pid(join_path(info.run_dir, "run.lock"));
      throw Error("run " + std::to_string(spec.resume_run) + " is being trained by another process" +
                  (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()));
    }
    cfg = parse_run_config(nlohmann::json::parse(info.config), "run " + std::to_string(spec.resume_run) + " config");
    opt.run_dir = info.run_dir;
    out.run_id = spec.resume_run;
  } else {
    check_dataset_kinds(ws, cfg);
    std::string base = spec.run_dir;
    if (base.empty()) {
      char stamp[32];
      std::time_t now = std::time(nullptr);
      std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
      base = join_path(ws.runs_dir(), cfg.name + "-" + stamp);
    }
    // A named folder is used as given (and refused while another process trains in it), except
    // that a replaceable one (the demo's) taken by a live run gives way to <name>-2, -3...: two
    // demos on one workspace both run. A dated folder two runs want within a second likewise.
    const bool fixed = !spec.run_dir.empty() && !spec.replace;
    for (int k = 1; !lock; ++k) {
      const std::string dir = k == 1 ? base : base + "-" + std::to_string(k);
      if (spec.run_dir.empty() && is_directory(dir)) continue;
      const bool existed = is_directory(dir);
      make_dirs(dir);
      lock = RunLock::try_take(join_path(dir, "run.lock"));
      if (!lock && fixed) {
        const long pid = lock_holder_pid(join_path(dir, "run.lock"));
        throw Error(dir + " is being trained by another process" + (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                    "; choose another --run-dir");
      }
      if (lock) {
        opt.run_dir = dir;
        made_dir = !existed;
      }
    }
    if (spec.replace) {
      // Everything but the lock we hold: removing it would let another process lock a new file.
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(opt.run_dir, ec))
        if (e.path().filename() != "run.lock") std::filesystem::remove_all(e.path(), ec);
      for (const auto& old : list_runs(ws))
        if (old.run_dir == opt.run_dir) delete_run(ws, old.id);  // its process is gone: we hold its lock
      made_dir = true;
    }
    opt.resume_from = spec.resume_checkpoint;
    refs = cfg.train_data;
    try {
      cfg.train_data = materialize_datasets(ws, cfg.train_data, join_path(opt.run_dir, "data"));
      cfg.eval_data = materialize_datasets(ws, cfg.eval_data, join_path(opt.run_dir, "data"));
      cfg.eval_suites = materialize_datasets(ws, cfg.eval_suites, join_path(opt.run_dir, "suites"));
    } catch (...) {
      std::error_code ec;
      if (made_dir) std::filesystem::remove_all(opt.run_dir, ec);  // nothing was recorded: nothing is left behind
      throw;
    }
  }
  out.run_dir = opt.run_dir;

  std::unique_ptr<RunRecorder> rec;
  opt.on_log = hooks.on_log;
  opt.stop_requested = hooks.stop_requested;
  opt.group = spec.group;
  opt.on_ready = [&](const RunPlan& plan) {
    if (spec.group) {
      spec.group->share(kLaunchKey, nlohmann::json({{"config", cfg.to_json()}, {"run_dir", opt.run_dir},
                                                    {"resume_from", opt.resume_from}}).dump());
      shared = true;
    }
    if (spec.resume_run <= 0) out.run_id = record_new_run(ws, cfg, refs, opt.run_dir);
    rec = std::make_unique<RunRecorder>(ws, out.run_id, opt.run_dir, std::move(lock));
    if (hooks.on_started) hooks.on_started(out.run_id, opt.run_dir, plan);
  };
  opt.on_progress = [&](const StepMetrics& m) {
    if (rec) rec->step(m);
    return hooks.on_progress ? hooks.on_progress(m) : Control::Continue;
  };
  opt.on_checkpoint = [&](int64_t s, const std::string& d) {
    if (rec) rec->checkpoint(s, d);
  };
  try {
    out.result = train(cfg, opt);
  } catch (const std::exception& e) {
    if (rec) {
      rec->fail(e.what());
    } else if (made_dir) {  // nothing was recorded: nothing is left behind either
      std::error_code ec;
      std::filesystem::remove_all(opt.run_dir, ec);
    }
    throw;
  }
  std::string status = out.result.status;
  if (status == "cancelled" && hooks.stop_status) status = hooks.stop_status();
  if (rec) rec->finish(out.result, cfg.method, status);
  if (rec && spec.keep_lock) out.lock = rec->release_lock();
  return out;
}

}  // namespace

}  // namespace hone
