// Run records and metrics. Metric rows are keyed (run, name, step) so that a resumed run which
// repeats steps after its last checkpoint overwrites them instead of duplicating them.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/runs.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "common/error.h"
#include "common/files.h"

namespace hone {
namespace {

const char* kRunCols =
    "SELECT id, name, method, recipe, base_model, datasets, config, run_dir, status, error, "
    "COALESCE(started_at, ''), COALESCE(ended_at, ''), final, notes, lock_path FROM runs ";

RunInfo run_from(Stmt& s) {
  RunInfo r;
  r.id = s.i64(0);
  r.name = s.text(1);
  r.method = s.text(2);
  r.recipe = s.text(3);
  r.base_model = s.text(4);
  r.datasets = s.text(5);
  r.config = s.text(6);
  r.run_dir = s.text(7);
  r.status = s.text(8);
  r.error = s.text(9);
  r.started_at = s.text(10);
  r.ended_at = s.text(11);
  r.final_metrics = s.text(12);
  r.notes = s.text(13);
  r.lock_path = s.text(14);
  return r;
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

int64_t create_run(Workspace& ws, const NewRun& r, const std::string& status) {
  Stmt s = ws.db().prepare(
      "INSERT INTO runs (name, method, recipe, base_model, datasets, config, run_dir, status, started_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, r.name).bind(2, r.method).bind(3, r.recipe).bind(4, r.base_model).bind(5, r.datasets).bind(6, r.config);
  s.bind(7, r.run_dir).bind(8, status);
  status == "queued" ? s.bind_null(9) : s.bind(9, utc_now());
  s.run();
  return ws.db().last_insert_id();
}

void set_run_status(Workspace& ws, int64_t id, const std::string& status, const std::string& error) {
  Stmt s = ws.db().prepare(
      "UPDATE runs SET status = ?, error = ?, started_at = COALESCE(started_at, ?), "
      "ended_at = CASE WHEN ? IN ('running', 'paused', 'queued') THEN NULL ELSE ? END WHERE id = ?");
  const std::string now = utc_now();
  s.bind(1, status).bind(2, error).bind(3, now).bind(4, status).bind(5, now).bind(6, id).run();
}

void finish_run(Workspace& ws, int64_t id, const std::string& status, const std::string& error, const std::string& final) {
  Stmt s = ws.db().prepare("UPDATE runs SET status = ?, error = ?, ended_at = ?, final = ? WHERE id = ?");
  s.bind(1, status).bind(2, error).bind(3, utc_now()).bind(4, final.empty() ? "{}" : final).bind(5, id).run();
}

void set_run_lock(Workspace& ws, int64_t id, const std::string& lock_path) {
  Stmt s = ws.db().prepare("UPDATE runs SET lock_path = ? WHERE id = ?");
  s.bind(1, lock_path).bind(2, id).run();
}

void note_run_error(Workspace& ws, int64_t id, const std::string& error) {
  Stmt s = ws.db().prepare("UPDATE runs SET error = ? WHERE id = ? AND status = 'interrupted'");
  s.bind(1, error).bind(2, id).run();
}

void rename_run(Workspace& ws, int64_t id, const std::string& name) {
  Stmt s = ws.db().prepare("UPDATE runs SET name = ? WHERE id = ?");
  s.bind(1, name).bind(2, id).run();
}

void set_run_notes(Workspace& ws, int64_t id, const std::string& notes) {
  Stmt s = ws.db().prepare("UPDATE runs SET notes = ? WHERE id = ?");
  s.bind(1, notes).bind(2, id).run();
}

void delete_run(Workspace& ws, int64_t id) {
  Transaction t(ws.db());
  Stmt s = ws.db().prepare("DELETE FROM runs WHERE id = ?");
  s.bind(1, id).run();
  t.commit();
}

std::vector<RunInfo> list_runs(Workspace& ws) {
  std::vector<RunInfo> out;
  Stmt s = ws.db().prepare(std::string(kRunCols) + "ORDER BY id");
  while (s.step()) out.push_back(run_from(s));
  return out;
}

RunInfo get_run(Workspace& ws, int64_t id) {
  Stmt s = ws.db().prepare(std::string(kRunCols) + "WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) throw Error("no run with id " + std::to_string(id) + " in " + ws.dir() + " (hone-cli runs list shows them)");
  return run_from(s);
}

std::vector<std::string> metric_names(Workspace& ws, int64_t run) {
  std::vector<std::string> out;
  Stmt s = ws.db().prepare("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name");
  s.bind(1, run);
  while (s.step()) out.push_back(s.text(0));
  return out;
}

std::vector<MetricPoint> run_metric(Workspace& ws, int64_t run, const std::string& name) {
  std::vector<MetricPoint> out;
  Stmt s = ws.db().prepare("SELECT step, value, wall FROM metrics WHERE run_id = ? AND name = ? ORDER BY step");
  s.bind(1, run).bind(2, name);
  while (s.step()) out.push_back({s.i64(0), s.is_null(1) ? NAN : s.f64(1), s.f64(2)});
  return out;
}

void add_artifact(Workspace& ws, int64_t run, const std::string& kind, int64_t step, const std::string& path, int64_t bytes) {
  Stmt s = ws.db().prepare("INSERT INTO artifacts (run_id, kind, step, path, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)");
  s.bind(1, run).bind(2, kind);
  step >= 0 ? s.bind(3, step) : s.bind_null(3);
  s.bind(4, path).bind(5, bytes).bind(6, utc_now()).run();
}

std::vector<Artifact> run_artifacts(Workspace& ws, int64_t run) {
  std::vector<Artifact> out;
  Stmt s = ws.db().prepare("SELECT id, COALESCE(step, -1), bytes, kind, path, created_at FROM artifacts WHERE run_id = ? ORDER BY id");
  s.bind(1, run);
  while (s.step()) out.push_back({s.i64(0), s.i64(1), s.i64(2), s.text(3), s.text(4), s.text(5)});
  return out;
}

std::string last_checkpoint(Workspace& ws, int64_t run) {
  auto arts = run_artifacts(ws, run);
  for (auto it = arts.rbegin(); it != arts.rend(); ++it)
    if (it->kind == "checkpoint" && is_directory(it->path)) return it->path;
  return {};
}

MetricsWriter::MetricsWriter(Workspace& ws, int64_t run, int rows, double seconds)
    : ws_(ws), run_(run), rows_(rows), seconds_(seconds), last_(std::chrono::steady_clock::now()) {}

MetricsWriter::~MetricsWriter() {
  try {
    flush();
  } catch (...) {  // a destructor must not throw; the points are lost, the run record says why
  }
}

void MetricsWriter::add(int64_t step, const std::string& name, double value) {
  pending_.push_back({step, name, value, wall_now()});
  const auto now = std::chrono::steady_clock::now();
  if (static_cast<int>(pending_.size()) >= rows_ || std::chrono::duration<double>(now - last_).count() >= seconds_) flush();
}

void MetricsWriter::flush() {
  last_ = std::chrono::steady_clock::now();
  if (pending_.empty()) return;
  try {
    write_pending();
  } catch (const DbBusy&) {
    // Another process (an import of millions of rows, a schema upgrade) holds the write lock past
    // the busy timeout: training goes on and the points wait for the next flush, up to a bound.
    if (pending_.size() > 100000) throw;
  }
}

void MetricsWriter::write_pending() {
  Transaction t(ws_.db());
  Stmt s = ws_.db().prepare("INSERT OR REPLACE INTO metrics (run_id, step, name, value, wall) VALUES (?, ?, ?, ?, ?)");
  for (const auto& p : pending_) {
    s.bind(1, run_).bind(2, p.step).bind(3, p.name);
    std::isfinite(p.value) ? s.bind(4, p.value) : s.bind_null(4);
    s.bind(5, p.wall);
    s.run();
    s.reset();
  }
  t.commit();
  pending_.clear();
}

RunLock::RunLock(const std::string& path, Try) : lock_(path, FileLock::Mode::Try) {
  if (lock_.held()) lock_.note("pid " + std::to_string(::getpid()) + "\n");
}

RunLock::RunLock(const std::string& path) : RunLock(path, Try{}) {
  if (!lock_.held()) {
    const long pid = lock_holder_pid(path);
    throw file_error(path, "this run is being trained by another process" + (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()));
  }
}

std::unique_ptr<RunLock> RunLock::try_take(const std::string& path) {
  std::unique_ptr<RunLock> l(new RunLock(path, Try{}));
  if (!l->lock_.held()) l.reset();
  return l;
}

int64_t path_bytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return static_cast<int64_t>(std::filesystem::file_size(path, ec));
  int64_t n = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != std::filesystem::end(it); it.increment(ec))
    if (it->is_regular_file(ec)) n += static_cast<int64_t>(it->file_size(ec));
  return n;
}

}  // namespace hone
