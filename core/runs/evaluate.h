// Evaluations of workspace suites against targets (a recorded run, or a model folder with an
// optional adapter), recorded in the workspace (store/evals.h): `hone-cli eval`, the Evaluate page
// and the demo run them through here. A suite's kind decides how it is scored: choice rows by
// log-likelihood, chat rows by greedy answers against their last assistant message (or by held-out
// loss), text rows by held-out loss. Pairwise evaluations answer a suite's prompts with two
// targets and are judged by a model in both orders, or blind by a person on the Label page.
// Torch-free header: the desktop app includes it.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/evals.h"
#include "store/workspace.h"

namespace hone {

struct EvalTarget {
  int64_t run_id = 0;                  // a recorded run (its output) ...
  std::string model_dir, adapter_dir;  // ... or a model folder with an optional PEFT adapter
  bool empty() const { return run_id <= 0 && model_dir.empty(); }
};
// "run:ID", a bare run id, or a model folder; throws naming what it is not.
EvalTarget parse_eval_target(const std::string& s);
nlohmann::json eval_target_json(const EvalTarget& t);
// For tables: "run 3 demo-lora", "model skills-base", "adapter X over skills-base".
std::string eval_target_label(Workspace& ws, const EvalTarget& t);

using EvalProgressFn = std::function<bool(int64_t done, int64_t total)>;  // false cancels

struct EvalRequest {
  std::string suite;  // dataset id or name
  EvalTarget target;
  std::string mode;   // "" = by the suite's kind; "generate" or "loss" for chat suites
  std::vector<std::string> metrics;   // "" = the mode's defaults (text_metrics.h names for generate)
  std::string choice_format = "plain";  // plain | raw | chat (train/eval_suite.h)
  int64_t max_new_tokens = 64;
  int64_t limit = 0;  // first N rows (0 = all)
  int64_t max_len = 1024;  // held-out loss: tokens per row
  std::string chat_template;  // "" = the model's own
};

struct EvalOutcome {
  int64_t eval_id = 0;
  EvalRecord record;
  nlohmann::json metrics = nlohmann::json::object();  // {name: {"value", "ci95", "n"}}
  nlohmann::json examples = nlohmann::json::array();
};

// Loads the target, scores the suite and stores the result in one transaction. A cancel (progress
// returning false) throws hone::Interrupted and stores nothing; bad input throws hone::Error.
EvalOutcome run_eval(Workspace& ws, const EvalRequest& r, const EvalProgressFn& progress = nullptr);

struct PairwiseRequest {
  std::string suite;  // a chat dataset: each row's prompt (the messages before its last reply)
  EvalTarget a, b;
  bool human = false;  // a blind candidates dataset to label, instead of a judge model
  EvalTarget judge;
  int64_t max_new_tokens = 64, limit = 0;
  uint64_t seed = 0;        // the sides' shuffle of a blind set (0: drawn at random)
  std::string labels_name;  // the blind set's name ("" = <suite>-blind-N)
};
// Judged: verdicts in both orders, stored with the answers. Human: stores the blind set (sources
// hidden, sides shuffled) and an evaluation awaiting its labels; its outcome's record names the set.
EvalOutcome run_pairwise(Workspace& ws, const PairwiseRequest& r, const EvalProgressFn& progress = nullptr);
// A blind pairwise evaluation: its win rate from the labels given so far (completed once every row
// is labelled; skipped rows are left out, ties and both-bad count half). Others come back as stored.
EvalRecord refresh_pairwise(Workspace& ws, int64_t eval_id);

// The settings that make an evaluation's numbers differ from the suite's default scoring, in words
// ("chat format, first 50 rows"; "" for the defaults): results with different variants are
// different measurements, shown side by side rather than one replacing the other.
std::string eval_variant(const EvalRecord& r);
// The metric a table shows for an evaluation: acc, exact_match (else the first), loss, win_rate_a.
std::string headline_metric(const EvalRecord& r);

// Each stored evaluation's examples and metrics as JSON (what `eval show --json` prints).
nlohmann::json eval_json(Workspace& ws, const EvalRecord& r, bool with_examples);

}  // namespace hone
