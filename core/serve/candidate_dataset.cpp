// make_candidate_dataset (see candidate_dataset.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "serve/candidate_dataset.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "store/sqlite.h"
#include "train/candidates.h"
#include "train/run_output.h"

namespace hone {

using nlohmann::json;

CandidateSource candidate_origin(const std::string& source) {
  CandidateSource s;
  if (source.rfind("label generate ", 0) != 0) return s;
  std::string rest = source.substr(15);
  const size_t versus = rest.find(" --versus-");
  if (versus != std::string::npos) rest = rest.substr(0, versus);
  auto value = [&](const std::string& flag) {
    const size_t at = rest.find(flag);
    if (at == std::string::npos) return std::string();
    const size_t from = at + flag.size();
    const size_t next = rest.find(" --", from);  // paths with " --" in them are not expected
    return rest.substr(from, next == std::string::npos ? std::string::npos : next - from);
  };
  s.run_dir = value("--run ");
  s.model_dir = value("--model ");
  s.adapter_dir = value("--adapter ");
  return s;
}

TrainingStart training_start_for(const std::string& source) {
  const CandidateSource o = candidate_origin(source);
  TrainingStart t;
  if (!o.run_dir.empty()) {
    try {
      const RunModel r = describe_run_output(o.run_dir);
      t.base_model = r.method == "full" ? r.lm.dir : r.base_model;
      t.init_adapter = r.adapter_dir;
      t.label = "run " + std::filesystem::path(o.run_dir).filename().string();
    } catch (const Error&) {
      return {};  // the run folder is gone: the Train page keeps its own model
    }
  } else if (!o.model_dir.empty() && std::filesystem::is_directory(o.model_dir)) {
    t.base_model = o.model_dir;
    t.init_adapter = o.adapter_dir;
    t.label = std::filesystem::path(o.adapter_dir.empty() ? o.model_dir : o.adapter_dir).filename().string();
  }
  return t;
}

namespace {

struct LoadedSource {
  RunModel rm;
  std::unique_ptr<Tokenizer> tok;
  std::string label;
};

LoadedSource load_source(const CandidateSource& s, const char* which) {
  LoadedSource out;
  std::string tok_dir;
  if (!s.run_dir.empty()) {
    out.rm = load_run_output(s.run_dir);
    tok_dir = out.rm.method == "full" ? out.rm.lm.dir : out.rm.base_model;
    out.label = std::filesystem::path(s.run_dir).filename().string();
  } else {
    if (s.model_dir.empty()) throw Error(std::string("candidates: choose a model folder or a run for ") + which);
    tok_dir = s.model_dir;
    out.rm = load_with_adapter(s.model_dir, s.adapter_dir, false);
    out.label = std::filesystem::path(s.adapter_dir.empty() ? s.model_dir : s.adapter_dir).filename().string();
  }
  if (!s.label.empty()) out.label = s.label;
  out.tok = load_tokenizer(tok_dir);
  return out;
}

}  // namespace

CandidateOutcome make_candidate_dataset(Workspace& ws, const CandidateRequest& r,
                                        const std::function<bool(int64_t, int64_t)>& progress) {
  DatasetInfo src = find_dataset(ws, r.dataset);
  std::vector<std::string> rows;
  for (const auto& row : read_rows(ws, src.id, 0, r.limit > 0 ? r.limit : src.rows)) rows.push_back(row.data);
  std::vector<std::string> prompts = prompts_of_rows(rows, src.kind);
  if (prompts.empty()) throw Error("dataset \"" + src.name + "\" has no rows");
  const bool two = !r.second.empty();
  if (r.n < 1 || r.n > 8) throw Error("candidates: n must be 1 to 8 responses per prompt");
  if (two && r.n % 2) throw Error("candidates: with two sources n must be even (half from each)");
  if (r.temperature < 0 || r.top_p <= 0 || r.top_p > 1 || r.max_new_tokens < 1 || r.top_k < 0)
    throw Error("candidates: sampling settings out of range (temperature >= 0, 0 < top-p <= 1, top-k >= 0, max tokens >= 1)");
  // The default name takes the first free one (<dataset>-candidates, -2, -3, ...): generating
  // again from the same prompts is common; a name asked for must be free.
  std::set<std::string> taken;
  for (const auto& d : list_datasets(ws)) taken.insert(d.name);
  std::string name = r.name.empty() ? src.name + "-candidates" : r.name;
  if (r.name.empty())
    for (int k = 2; taken.count(name); ++k) name = src.name + "-candidates-" + std::to_string(k);
  if (taken.count(name)) throw Error("a dataset named \"" + name + "\" already exists; choose another name");
  CandidateOptions o;
  o.n = two ? r.n / 2 : r.n;
  o.sampling.temperature = r.temperature;
  o.sampling.top_p = r.top_p;
  o.sampling.top_k = r.top_k;
  o.sampling.max_new_tokens = r.max_new_tokens;
  o.sampling.seed = r.seed;
  o.resample = r.resample;
  CandidateOutcome out;
  out.name = name;
  out.prompts = static_cast<int64_t>(prompts.size());
  std::vector<CandidateSource> sources{{r.model_dir, r.adapter_dir, r.run_dir, ""}};
  if (two) sources.push_back(r.second);
  std::vector<std::vector<std::string>> made;
  std::vector<std::string> labels;
  const int64_t total = out.prompts * static_cast<int64_t>(sources.size());
  for (size_t k = 0; k < sources.size(); ++k) {
    LoadedSource ls = load_source(sources[k], k == 0 ? "source A" : "source B");
    o.format = resolve_chat_template(ls.tok->config(), r.chat_template.empty() ? "auto" : r.chat_template);
    CandidateStats st;
    const int64_t base = out.prompts * static_cast<int64_t>(k);
    made.push_back(generate_candidates(
        ls.rm.lm.model, *ls.tok, prompts, o,
        [&](int64_t done, int64_t) { return !progress || progress(base + done, total); }, &out.cancelled, &st));
    out.resampled += st.resampled;
    out.identical_rows += st.identical_rows;
    labels.push_back(ls.label);
    if (out.cancelled) return out;
  }
  if (two && labels[0] == labels[1]) labels[0] += " (A)", labels[1] += " (B)";
  std::vector<std::string> merged = made[0];
  if (two) {
    // Each row's responses from both sources, in an order drawn per row, so that a side never
    // tells the labeller which model wrote it; "sources" keeps the truth for the tally.
    std::mt19937_64 rng(r.seed ^ 0x5eedc0de5eedc0deull);
    out.identical_rows = 0;
    for (size_t i = 0; i < merged.size(); ++i) {
      json a = json::parse(made[0][i]), b = json::parse(made[1][i]);
      std::vector<std::pair<json, std::string>> all;
      for (const auto& x : a["responses"]) all.push_back({x, labels[0]});
      for (const auto& x : b["responses"]) all.push_back({x, labels[1]});
      std::shuffle(all.begin(), all.end(), rng);
      json rs = json::array(), ss = json::array();
      for (auto& [x, l] : all) rs.push_back(x), ss.push_back(l);
      bool same = false;
      for (size_t p = 0; p < rs.size(); ++p)
        for (size_t q = p + 1; q < rs.size(); ++q) same = same || same_response(rs[p].dump(), rs[q].dump());
      out.identical_rows += same;
      merged[i] = json({{"prompt", a["prompt"]}, {"responses", rs}, {"sources", ss}}).dump();
    }
  }
  // Imported like any file, in one transaction: all rows or none.
  const std::string tmp = join_path(ws.dir(), ".candidates-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(reinterpret_cast<uintptr_t>(&out)) + ".jsonl");
  std::string text;
  for (const auto& row : merged) text += row + "\n";
  write_file_atomic(tmp, text);
  ImportReport rep;
  try {
    rep = import_dataset(ws, tmp, name, {});
  } catch (...) {
    std::filesystem::remove(tmp);
    throw;
  }
  std::filesystem::remove(tmp);
  if (rep.dataset_id > 0) {  // the dataset names what wrote it (candidate_origin reads it back)
    auto origin = [](const CandidateSource& s, const std::string& flag) {
      if (!s.run_dir.empty()) return " --" + flag + "run " + s.run_dir;
      return " --" + flag + "model " + s.model_dir + (s.adapter_dir.empty() ? "" : " --" + flag + "adapter " + s.adapter_dir);
    };
    std::string src = "label generate" + origin({r.model_dir, r.adapter_dir, r.run_dir, ""}, "");
    if (two) src += origin(r.second, "versus-");
    Stmt s = ws.db().prepare("UPDATE datasets SET source = ? WHERE id = ?");
    s.bind(1, src).bind(2, rep.dataset_id).run();
  }
  if (rep.dataset_id <= 0)
    throw Error("the generated candidates did not import: " + (rep.problems.empty() ? std::string() : rep.problems[0].text()));
  out.dataset_id = rep.dataset_id;
  out.rows = rep.imported;
  return out;
}

}  // namespace hone
