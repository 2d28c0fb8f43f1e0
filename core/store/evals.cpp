// Evaluation records (see evals.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/evals.h"

#include <cstdio>

#include "common/error.h"

namespace hone {
namespace {

const char* kEvalCols =
    "SELECT id, kind, suite, COALESCE(suite_id, 0), suite_hash, target, target_label, COALESCE(run_id, 0), settings, "
    "metrics, status, COALESCE(labels_id, 0), seconds, created_at FROM evals ";

EvalRecord eval_from(Stmt& s) {
  EvalRecord r;
  r.id = s.i64(0);
  r.kind = s.text(1);
  r.suite = s.text(2);
  r.suite_id = s.i64(3);
  r.suite_hash = s.text(4);
  r.target = s.text(5);
  r.target_label = s.text(6);
  r.run_id = s.i64(7);
  r.settings = s.text(8);
  r.metrics = s.text(9);
  r.status = s.text(10);
  r.labels_id = s.i64(11);
  r.seconds = s.f64(12);
  r.created_at = s.text(13);
  return r;
}

void bind_id(Stmt& s, int i, int64_t id) { id > 0 ? s.bind(i, id) : s.bind_null(i); }

}  // namespace

int64_t save_eval(Workspace& ws, const EvalRecord& r, const std::vector<std::string>& examples) {
  Transaction t(ws.db());
  Stmt s = ws.db().prepare(
      "INSERT INTO evals (kind, suite, suite_id, suite_hash, target, target_label, run_id, settings, metrics, status, "
      "labels_id, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, r.kind).bind(2, r.suite);
  bind_id(s, 3, r.suite_id);
  s.bind(4, r.suite_hash).bind(5, r.target).bind(6, r.target_label);
  bind_id(s, 7, r.run_id);
  s.bind(8, r.settings).bind(9, r.metrics).bind(10, r.status);
  bind_id(s, 11, r.labels_id);
  s.bind(12, r.seconds);
  s.run();
  const int64_t id = ws.db().last_insert_id();
  Stmt e = ws.db().prepare("INSERT INTO eval_examples (eval_id, position, data) VALUES (?, ?, ?)");
  for (size_t i = 0; i < examples.size(); ++i) {
    e.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, examples[i]);
    e.run();
    e.reset();
  }
  t.commit();
  return id;
}

std::vector<EvalRecord> list_evals(Workspace& ws) {
  Stmt s = ws.db().prepare(std::string(kEvalCols) + "ORDER BY id");
  std::vector<EvalRecord> out;
  while (s.step()) out.push_back(eval_from(s));
  return out;
}

EvalRecord get_eval(Workspace& ws, int64_t id) {
  Stmt s = ws.db().prepare(std::string(kEvalCols) + "WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) throw Error("no evaluation with id " + std::to_string(id) + " (hone-cli eval list shows them)");
  return eval_from(s);
}

std::vector<std::string> eval_examples(Workspace& ws, int64_t id) {
  Stmt s = ws.db().prepare("SELECT data FROM eval_examples WHERE eval_id = ? ORDER BY position");
  s.bind(1, id);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

void set_eval_metrics(Workspace& ws, int64_t id, const std::string& metrics, const std::string& status) {
  Stmt s = ws.db().prepare("UPDATE evals SET metrics = ?, status = ? WHERE id = ?");
  s.bind(1, metrics).bind(2, status).bind(3, id);
  s.run();
}

void delete_eval(Workspace& ws, int64_t id) {
  Stmt s = ws.db().prepare("DELETE FROM evals WHERE id = ?");
  s.bind(1, id);
  s.run();
}

std::vector<EvalRecord> completed_run_evals(Workspace& ws) {
  Stmt s = ws.db().prepare(std::string(kEvalCols) + "WHERE run_id IS NOT NULL AND status = 'completed' ORDER BY id DESC");
  std::vector<EvalRecord> out;
  while (s.step()) out.push_back(eval_from(s));
  return out;
}

std::string dataset_hash(Workspace& ws, int64_t dataset, int64_t rows) {
  Stmt s = ws.db().prepare("SELECT data FROM rows WHERE dataset_id = ? ORDER BY position LIMIT ?");
  s.bind(1, dataset).bind(2, rows);
  uint64_t h = 1469598103934665603ull;
  while (s.step()) {
    const std::string d = s.text(0);
    for (unsigned char c : d) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0x0a) * 1099511628211ull;  // row separator: ["ab","c"] and ["a","bc"] differ
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace hone
