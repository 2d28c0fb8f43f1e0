// Evaluation results in the workspace: one record per (suite, target, settings) evaluation with its
// metrics ({name: {"value", "ci95": [lo, hi], "n"}}), the suite's content hash and every example's
// output, stored in one transaction so that a cancelled or failed evaluation leaves nothing behind.
// A blind pairwise evaluation by a person waits for its label set ("awaiting_labels").
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "store/workspace.h"

namespace hone {

struct EvalRecord {
  int64_t id = 0;
  std::string kind;   // choice | generate | loss | pairwise
  std::string suite;  // the suite dataset's name when it was evaluated
  int64_t suite_id = 0;
  std::string suite_hash;
  std::string target;        // JSON: {"run": id} or {"model": dir, "adapter": dir}; pairwise {"a", "b", "judge"}
  std::string target_label;  // for tables: "run 3 (demo-lora)", "base skills-base"
  int64_t run_id = 0;        // the run evaluated (0: a model folder, or pairwise)
  std::string settings = "{}", metrics = "{}", status = "completed";
  int64_t labels_id = 0;  // pairwise by a person: the blind label set
  double seconds = 0;
  std::string created_at;
};

// Stores the record and its examples (JSON objects, in order) in one transaction; returns its id.
int64_t save_eval(Workspace& ws, const EvalRecord& r, const std::vector<std::string>& examples);
std::vector<EvalRecord> list_evals(Workspace& ws);
EvalRecord get_eval(Workspace& ws, int64_t id);  // throws naming the id when there is none
std::vector<std::string> eval_examples(Workspace& ws, int64_t id);
void set_eval_metrics(Workspace& ws, int64_t id, const std::string& metrics, const std::string& status);
void delete_eval(Workspace& ws, int64_t id);
// Every completed evaluation of a recorded run, newest first (the Runs page keeps the newest of
// each run, suite and settings for its columns).
std::vector<EvalRecord> completed_run_evals(Workspace& ws);

// FNV-1a 64 over the dataset's first `rows` rows in order (all when < 0), as 16 hex digits: two
// evaluations of a suite compare only when the hashes agree (an edited suite is another suite).
std::string dataset_hash(Workspace& ws, int64_t dataset, int64_t rows = -1);

}  // namespace hone
