// A workspace: one folder holding hone.db (datasets, labels, runs, metrics) and runs/<name>/ with
// each run's files. The GUI and hone-cli share it; a training process writes while others read.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/sqlite.h"

namespace hone {

// A run found "running" or "paused" whose process is gone, marked interrupted on opening.
struct ReapedRun {
  int64_t id = 0;
  std::string name;
  long pid = 0;  // the process that held its lock, when the lock file says (0: unknown)
};

class Workspace {
 public:
  // Creates the folder and database if needed, migrates the schema, and marks runs whose process
  // died (their lock is free) as interrupted (reaped() lists them). `causes` gives, by run id, the
  // error to record when that run is among them (a crash's signal and report), in the same update
  // that marks it, so no reader ever sees the run interrupted with the generic reason first.
  explicit Workspace(const std::string& dir, const std::map<int64_t, std::string>& causes = {});

  // Marks runs whose process is gone as interrupted, now; returns them. Cheap (a lock probe per
  // live run), so a front end calls it whenever it lists runs.
  std::vector<ReapedRun> reap_dead_runs(const std::map<int64_t, std::string>& causes = {});
  // What opening this workspace marked interrupted, for "what was cleaned" notes.
  const std::vector<ReapedRun>& reaped() const { return reaped_; }
  // Unfinished files that opening it removed: a checkpoint a killed run was writing
  // (runs/*/checkpoints/.tmp-step-*), a temporary file of an atomic write; one line each.
  const std::vector<std::string>& cleaned() const { return cleaned_; }

  Db& db() { return *db_; }
  const std::string& dir() const { return dir_; }
  std::string runs_dir() const;
  std::string db_path() const;

  // $HONE_WORKSPACE, else $XDG_DATA_HOME/hone, else ~/.local/share/hone.
  static std::string default_dir();

 private:
  std::string dir_;
  std::unique_ptr<Db> db_;
  std::vector<ReapedRun> reaped_;
  std::vector<std::string> cleaned_;
  void remove_unfinished_files();
};

// The pid a lock file names ("pid N" on its first line), 0 when it names none.
long lock_holder_pid(const std::string& lock_path);

// UTC now as ISO 8601 with milliseconds, the form every timestamp in the store uses.
std::string utc_now();

}  // namespace hone
