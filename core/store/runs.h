// Run records: what was trained (config, model, datasets), its status over time, per-step metrics
// written in batches, and its checkpoints and artifacts.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/files.h"
#include "store/workspace.h"

namespace hone {

struct RunInfo {
  int64_t id = 0;
  std::string name, method, recipe, base_model, datasets, config, run_dir, status, error;
  std::string started_at, ended_at, final_metrics, notes, lock_path;
};

struct NewRun {
  std::string name, method, recipe, base_model;
  std::string datasets = "[]";  // JSON list
  std::string config;           // the full run config as JSON
  std::string run_dir;
};

int64_t create_run(Workspace& ws, const NewRun& r, const std::string& status = "queued");
// running/paused/...; started_at is set the first time a run starts, ended_at when it ends.
void set_run_status(Workspace& ws, int64_t id, const std::string& status, const std::string& error = "");
void finish_run(Workspace& ws, int64_t id, const std::string& status, const std::string& error,
                const std::string& final_metrics_json);
void set_run_lock(Workspace& ws, int64_t id, const std::string& lock_path);
// Replaces the reason an interrupted run records (who learnt more about its end than the reaper).
void note_run_error(Workspace& ws, int64_t id, const std::string& error);
void rename_run(Workspace& ws, int64_t id, const std::string& name);
void set_run_notes(Workspace& ws, int64_t id, const std::string& notes);
void delete_run(Workspace& ws, int64_t id);  // the record only; the caller decides about the folder

std::vector<RunInfo> list_runs(Workspace& ws);
RunInfo get_run(Workspace& ws, int64_t id);  // throws when there is none

struct MetricPoint {
  int64_t step = 0;
  double value = 0, wall = 0;
};
std::vector<std::string> metric_names(Workspace& ws, int64_t run);
std::vector<MetricPoint> run_metric(Workspace& ws, int64_t run, const std::string& name);

struct Artifact {
  int64_t id = 0, step = -1, bytes = 0;
  std::string kind, path, created_at;
};
void add_artifact(Workspace& ws, int64_t run, const std::string& kind, int64_t step, const std::string& path, int64_t bytes);
std::vector<Artifact> run_artifacts(Workspace& ws, int64_t run);
// The newest checkpoint of the run that still exists on disk ("" when none).
std::string last_checkpoint(Workspace& ws, int64_t run);

// Buffers metric points and commits them in one transaction every `rows` points or `seconds`,
// so that recording costs training almost nothing; a crash loses at most the open batch.
class MetricsWriter {
 public:
  MetricsWriter(Workspace& ws, int64_t run, int rows = 512, double seconds = 2.0);
  ~MetricsWriter();
  void add(int64_t step, const std::string& name, double value);
  // Writes the buffered points; while another process holds the write lock past the busy timeout
  // they stay buffered for the next flush (a long import elsewhere must not fail a training run).
  void flush();
  size_t pending() const { return pending_.size(); }

 private:
  Workspace& ws_;
  int64_t run_;
  int rows_;
  double seconds_;
  std::chrono::steady_clock::time_point last_;
  struct Pending {
    int64_t step;
    std::string name;
    double value, wall;
  };
  std::vector<Pending> pending_;
  void write_pending();
};

// A run folder's lock (<run_dir>/run.lock), held by the process training in it from the moment
// the launcher picks the folder to the end of the run: the workspace treats a running run whose
// lock is free as interrupted, and a second process cannot train in, replace or resume a folder
// that is taken. The file says "pid N" for messages.
class RunLock {
 public:
  // Takes the lock or throws "... is being trained by another process (pid N)".
  explicit RunLock(const std::string& path);
  // The lock, or nullptr when another process (or another RunLock here) holds it.
  static std::unique_ptr<RunLock> try_take(const std::string& path);
  const std::string& path() const { return lock_.path(); }

 private:
  struct Try {};
  RunLock(const std::string& path, Try);
  FileLock lock_;
};

// Size of a file, or of all files under a folder.
int64_t path_bytes(const std::string& path);

}  // namespace hone
