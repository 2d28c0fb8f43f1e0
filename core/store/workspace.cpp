// Workspace opening and crash recovery. A running run holds an exclusive flock on its lock file for
// as long as its process lives; the kernel drops it when the process dies, even by kill -9, so a
// free lock on a run marked running means that process is gone.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/workspace.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "store/schema.h"

namespace hone {
namespace {

bool lock_is_free(const std::string& path) {
  if (path.empty()) return true;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // no lock file: nobody can be holding it
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);  // closing releases our probe lock
  return free;
}

}  // namespace

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  const int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[40];
  std::snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, ms);
  return b;
}

std::string Workspace::default_dir() {
  if (const char* w = std::getenv("HONE_WORKSPACE"); w && *w) return w;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return join_path(x, "hone");
  const char* h = std::getenv("HOME");
  return join_path(h ? h : ".", ".local/share/hone");
}

Workspace::Workspace(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  std::filesystem::create_directories(runs_dir(), ec);
  if (!is_directory(runs_dir())) throw file_error(dir, "cannot create the workspace folder" + (ec ? ": " + ec.message() : ""));
  db_ = std::make_unique<Db>(db_path());
  migrate(*db_);
  // Runs whose process died: mark interrupted (their checkpoints stay on disk for resume).
  std::vector<std::pair<int64_t, std::string>> live;
  {
    Stmt s = db_->prepare("SELECT id, lock_path FROM runs WHERE status IN ('running', 'paused')");
    while (s.step()) live.emplace_back(s.i64(0), s.text(1));
  }
  for (const auto& [id, lock] : live) {
    if (!lock_is_free(lock)) continue;
    Stmt u = db_->prepare(
        "UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?), "
        "error = 'the training process ended without finishing the run' WHERE id = ? AND status IN ('running', 'paused')");
    u.bind(1, utc_now()).bind(2, id).run();
  }
}

std::string Workspace::runs_dir() const { return join_path(dir_, "runs"); }
std::string Workspace::db_path() const { return join_path(dir_, "hone.db"); }

}  // namespace hone
