// make_candidate_dataset (see candidate_dataset.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "serve/candidate_dataset.h"

#include <unistd.h>

#include <filesystem>

#include "common/error.h"
#include "common/files.h"
#include "store/datasets.h"
#include "train/candidates.h"
#include "train/run_output.h"

namespace hone {

CandidateOutcome make_candidate_dataset(Workspace& ws, const CandidateRequest& r,
                                        const std::function<bool(int64_t, int64_t)>& progress) {
  DatasetInfo src = find_dataset(ws, r.dataset);
  std::vector<std::string> rows;
  for (const auto& row : read_rows(ws, src.id, 0, r.limit > 0 ? r.limit : src.rows)) rows.push_back(row.data);
  std::vector<std::string> prompts = prompts_of_rows(rows, src.kind);
  if (prompts.empty()) throw Error("dataset \"" + src.name + "\" has no rows");
  CandidateOptions o;
  o.n = r.n;
  o.sampling.temperature = r.temperature;
  o.sampling.top_p = r.top_p;
  o.sampling.max_new_tokens = r.max_new_tokens;
  o.sampling.seed = r.seed;
  if (r.temperature < 0 || r.top_p <= 0 || r.top_p > 1 || r.max_new_tokens < 1)
    throw Error("candidates: sampling settings out of range");
  const std::string name = r.name.empty() ? src.name + "-candidates" : r.name;
  for (const auto& d : list_datasets(ws))
    if (d.name == name) throw Error("a dataset named \"" + name + "\" already exists; choose another name");
  RunModel rm;
  std::string tok_dir;
  if (!r.run_dir.empty()) {
    rm = load_run_output(r.run_dir);
    tok_dir = rm.method == "full" ? rm.lm.dir : rm.base_model;
  } else {
    if (r.model_dir.empty()) throw Error("candidates: choose a model folder or a run");
    tok_dir = r.model_dir;
    rm = load_with_adapter(r.model_dir, r.adapter_dir, false);
  }
  auto tok = load_tokenizer(tok_dir);
  o.format = resolve_chat_template(tok->config(), r.chat_template.empty() ? "auto" : r.chat_template);
  CandidateOutcome out;
  out.name = name;
  out.prompts = static_cast<int64_t>(prompts.size());
  auto made = generate_candidates(rm.lm.model, *tok, prompts, o, progress, &out.cancelled);
  if (out.cancelled) return out;
  // Imported like any file, in one transaction: all rows or none.
  const std::string tmp = join_path(ws.dir(), ".candidates-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(reinterpret_cast<uintptr_t>(&out)) + ".jsonl");
  std::string text;
  for (const auto& row : made) text += row + "\n";
  write_file_atomic(tmp, text);
  ImportReport rep;
  try {
    rep = import_dataset(ws, tmp, name, {});
  } catch (...) {
    std::filesystem::remove(tmp);
    throw;
  }
  std::filesystem::remove(tmp);
  if (rep.dataset_id <= 0)
    throw Error("the generated candidates did not import: " + (rep.problems.empty() ? std::string() : rep.problems[0].text()));
  out.dataset_id = rep.dataset_id;
  out.rows = rep.imported;
  return out;
}

}  // namespace hone
