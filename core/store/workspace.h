// A workspace: one folder holding hone.db (datasets, labels, runs, metrics) and runs/<name>/ with
// each run's files. The GUI and hone-cli share it; a training process writes while others read.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <string>

#include "store/sqlite.h"

namespace hone {

class Workspace {
 public:
  // Creates the folder and database if needed, migrates the schema, and marks runs whose process
  // died (their lock is free) as interrupted.
  explicit Workspace(const std::string& dir);

  Db& db() { return *db_; }
  const std::string& dir() const { return dir_; }
  std::string runs_dir() const;
  std::string db_path() const;

  // $HONE_WORKSPACE, else $XDG_DATA_HOME/hone, else ~/.local/share/hone.
  static std::string default_dir();

 private:
  std::string dir_;
  std::unique_ptr<Db> db_;
};

// UTC now as ISO 8601 with milliseconds, the form every timestamp in the store uses.
std::string utc_now();

}  // namespace hone
