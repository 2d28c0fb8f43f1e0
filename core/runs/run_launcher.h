// One way to start or resume a recorded run, used by `hone-cli train`, `hone-cli runs resume`, the
// demo and the GUI, so that they cannot drift apart. Everything is validated (model files, data
// kind, settings, the data itself) before a run record exists: a mistake leaves no failed run.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "store/runs.h"
#include "store/workspace.h"
#include "train/trainer.h"

namespace hone {

struct LaunchSpec {
  RunConfig cfg;                  // as written (dataset:NAME allowed); unused when resuming a recorded run
  std::string run_dir;            // "" = <workspace>/runs/<name>-<date-time>, -2, -3... when taken
  int64_t resume_run = 0;         // > 0: continue that recorded run from its newest checkpoint
  std::string resume_checkpoint;  // a new run starting from this checkpoint folder (train --resume)
  bool replace = false;           // the folder and any record of it are replaced (the demo's fixed folder)
  // The caller keeps the folder's lock after the run ends (LaunchResult::lock): until it is let go,
  // a replacing launch in another process goes to <name>-2 instead of deleting this run's record.
  bool keep_lock = false;
  // Data-parallel: rank 0 calls launch_run with the group; it alone touches the workspace, and
  // shares the run's folder, resolved config and checkpoint with the other ranks, which call
  // follow_run. Every rank must reach the same files (one machine, or a shared filesystem).
  ProcessGroup* group = nullptr;
};

struct LaunchHooks {
  ProgressFn on_progress;
  LogFn on_log;
  std::function<bool()> stop_requested;  // polled between micro-batches
  // Status recorded when a stop request ended the run: "cancelled" (a user's Cancel, the default)
  // or "interrupted" (SIGTERM/SIGINT/SIGHUP); both resume from the checkpoint written on the way out.
  std::function<std::string()> stop_status;
  std::function<void(int64_t run_id, const std::string& run_dir, const RunPlan&)> on_started;
};

struct LaunchResult {
  int64_t run_id = 0;
  std::string run_dir;
  std::shared_ptr<RunLock> lock;  // with keep_lock: the run folder's lock, held while this lives
  TrainResult result;
};

// Trains and records. Throws hone::Error, without creating a record, when the inputs are wrong; a
// failure during training is recorded and comes back as result.status "failed".
LaunchResult launch_run(Workspace& ws, const LaunchSpec& spec, const LaunchHooks& hooks);

// A rank other than 0 of a data-parallel run: waits for rank 0 to share what it launched, then
// trains its share of each batch. Never opens the workspace. Throws hone::Error with rank 0's
// reason when rank 0 could not start the run.
TrainResult follow_run(ProcessGroup& group, const LaunchHooks& hooks);

// The config a recorded run was started with, its data as the user named it (dataset:NAME) rather
// than the copies in the run's folder: what a front end shows for the run and starts again from.
RunConfig recorded_run_config(Workspace& ws, int64_t run_id);

// Whether a recorded run can resume: throws with the reason when not, else returns the checkpoint.
std::string resumable_checkpoint(Workspace& ws, int64_t run_id);

// "dataset:NAME" entries must name datasets of a kind the recipe trains on; throws naming the
// dataset, its kind and the kind the recipe needs.
void check_dataset_kinds(Workspace& ws, const RunConfig& cfg);

}  // namespace hone
