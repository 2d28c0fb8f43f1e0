// Workspace opening and crash recovery. A running run holds an exclusive flock on its lock file for
// as long as its process lives (common/files.h FileLock); the kernel drops it when the process dies,
// even by kill -9, so a free lock on a run marked running means that process is gone.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/workspace.h"

#include <signal.h>

#include <cerrno>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "store/schema.h"

namespace hone {

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

Workspace::Workspace(const std::string& dir, const std::map<int64_t, std::string>& causes) : dir_(dir) {
  std::error_code ec;
  std::filesystem::create_directories(runs_dir(), ec);
  if (!is_directory(runs_dir())) throw file_error(dir, "cannot create the workspace folder" + (ec ? ": " + ec.message() : ""));
  db_ = std::make_unique<Db>(db_path());
  migrate(*db_);
  reaped_ = reap_dead_runs(causes);
  remove_unfinished_files();
}

void Workspace::remove_unfinished_files() {
  // Only in run folders nobody holds: a live run's half-written checkpoint is its own business.
  // The names are the writers' own: CheckpointWriter's .tmp-step-N (being written) and .del-step-N
  // (being removed), write_file_atomic's NAME.tmp-PID.
  // The folders: those under runs/ and those the records name (--run-dir may be anywhere).
  namespace fs = std::filesystem;
  std::error_code ec;
  std::set<std::string> folders;
  for (const auto& run : fs::directory_iterator(runs_dir(), ec))
    if (run.is_directory(ec)) folders.insert(run.path().string());
  {
    Stmt s = db_->prepare("SELECT DISTINCT run_dir FROM runs WHERE status NOT IN ('running', 'paused')");
    while (s.step())
      if (!s.text(0).empty()) folders.insert(s.text(0));
  }
  for (const fs::path run : folders) {
    if (!is_directory(run.string()) || FileLock::taken((run / "run.lock").string())) continue;
    for (const fs::path& dir : {run, run / "checkpoints"}) {
      std::error_code ec2;
      for (const auto& e : fs::directory_iterator(dir, ec2)) {
        const std::string n = e.path().filename().string();
        const bool half_checkpoint = dir.filename() == "checkpoints" && n.rfind(".tmp-step-", 0) == 0;
        const bool half_removed = dir.filename() == "checkpoints" && n.rfind(".del-step-", 0) == 0;
        const size_t t = n.rfind(".tmp-");
        // A temporary file is its writer's until that process is gone (an evaluation may be writing
        // into a run folder nobody trains in).
        const bool half_file = !half_checkpoint && !half_removed && t != std::string::npos && t > 0 && t + 5 < n.size() && e.is_regular_file(ec2) &&
                               n.find_first_not_of("0123456789", t + 5) == std::string::npos &&
                               ::kill(static_cast<pid_t>(std::strtol(n.c_str() + t + 5, nullptr, 10)), 0) != 0 && errno == ESRCH;
        if (!half_checkpoint && !half_removed && !half_file) continue;
        std::error_code ec3;
        fs::remove_all(e.path(), ec3);
        if (!ec3)
          cleaned_.push_back("removed " + e.path().string() +
                             (half_removed      ? ", an old checkpoint its process did not finish removing"
                              : half_checkpoint ? ", a checkpoint its process did not finish writing"
                                                : ", a file its process did not finish writing"));
      }
    }
  }
}

std::vector<ReapedRun> Workspace::reap_dead_runs(const std::map<int64_t, std::string>& causes) {
  // Runs whose process died: marked interrupted (their checkpoints stay on disk for resume). A run
  // between its record and its lock (the launcher takes the lock first) has an empty lock_path
  // and status queued, so it is never taken for dead.
  struct Live {
    int64_t id;
    std::string name, lock;
  };
  std::vector<Live> live;
  {
    Stmt s = db_->prepare("SELECT id, name, lock_path FROM runs WHERE status IN ('running', 'paused')");
    while (s.step()) live.push_back({s.i64(0), s.text(1), s.text(2)});
  }
  std::vector<ReapedRun> out;
  for (const auto& r : live) {
    if (FileLock::taken(r.lock)) continue;
    const long pid = lock_holder_pid(r.lock);
    const auto cause = causes.find(r.id);
    const std::string why = cause != causes.end()
                                ? cause->second
                                : "the training process" + (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                                      " ended without finishing the run";
    Stmt u = db_->prepare(
        "UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?), error = ? "
        "WHERE id = ? AND status IN ('running', 'paused')");
    u.bind(1, utc_now()).bind(2, why).bind(3, r.id).run();
    if (db_->changes() > 0) out.push_back({r.id, r.name, pid});  // another process may have marked it first
  }
  return out;
}

long lock_holder_pid(const std::string& lock_path) {
  if (lock_path.empty() || !file_exists(lock_path)) return 0;
  std::string text;
  try {
    text = read_file(lock_path);
  } catch (const std::exception&) {
    return 0;
  }
  if (text.rfind("pid ", 0) != 0) return 0;
  return std::strtol(text.c_str() + 4, nullptr, 10);
}

std::string Workspace::runs_dir() const { return join_path(dir_, "runs"); }
std::string Workspace::db_path() const { return join_path(dir_, "hone.db"); }

}  // namespace hone
