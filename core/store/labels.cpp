// Candidate labelling (see labels.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/labels.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "store/datasets.h"
#include "store/sqlite.h"

namespace hone {

using nlohmann::json;

namespace {

void require_candidates(Workspace& ws, int64_t dataset) {
  for (const auto& d : list_datasets(ws))
    if (d.id == dataset) {
      if (d.kind != "candidates")
        throw Error("dataset \"" + d.name + "\" holds " + d.kind + " rows, not candidate pairs (import {\"prompt\", \"responses\"} rows or use hone-cli label generate)");
      return;
    }
  throw Error("no dataset with id " + std::to_string(dataset));
}

DatasetRow row_at_position(Workspace& ws, int64_t dataset, int64_t position) {
  auto rows = read_rows(ws, dataset, position, position + 1);
  if (rows.empty()) throw Error("dataset " + std::to_string(dataset) + " has no row " + std::to_string(position));
  return rows[0];
}

}  // namespace

std::vector<CandidateRow> list_candidates(Workspace& ws, int64_t dataset) {
  require_candidates(ws, dataset);
  Stmt s = ws.db().prepare(
      "SELECT r.id, r.position, r.data, l.label, l.note, l.author FROM rows r LEFT JOIN labels l ON l.row_id = r.id "
      "WHERE r.dataset_id = ? ORDER BY r.position");
  s.bind(1, dataset);
  std::vector<CandidateRow> out;
  while (s.step()) {
    CandidateRow c;
    c.row_id = s.i64(0);
    c.position = s.i64(1);
    c.data = s.text(2);
    if (!s.is_null(3)) c.label = s.text(3), c.note = s.text(4), c.author = s.text(5);
    json j = json::parse(c.data);
    if (j.contains("original_responses"))
      for (size_t i = 0; i < j["responses"].size(); ++i)
        if (j["responses"][i] != j["original_responses"][i]) c.edited.push_back(static_cast<int>(i));
    out.push_back(std::move(c));
  }
  return out;
}

void label_candidate(Workspace& ws, int64_t dataset, int64_t position, const std::string& label, const std::string& note,
                     const std::string& author) {
  require_candidates(ws, dataset);
  set_label(ws, row_at_position(ws, dataset, position).id, label == "none" ? "" : label, author, note);
}

void edit_response(Workspace& ws, int64_t dataset, int64_t position, int which, const std::string& text,
                   const std::string& author) {
  require_candidates(ws, dataset);
  DatasetRow r = row_at_position(ws, dataset, position);
  json j = json::parse(r.data);
  if (which < 0 || which >= static_cast<int>(j["responses"].size()))
    throw Error("row " + std::to_string(position) + " has " + std::to_string(j["responses"].size()) + " responses; no response " +
                std::string(1, static_cast<char>('a' + std::max(0, which))));
  if (!j.contains("original_responses")) j["original_responses"] = j["responses"];
  j["responses"][static_cast<size_t>(which)] = text;
  update_row(ws, r.id, j.dump(), author);  // validated, and a revision keeps the previous text too
}

LabelExportReport export_labels(Workspace& ws, int64_t dataset, const std::string& pairs_out, const std::string& ratings_out) {
  LabelExportReport rep;
  std::string pairs, ratings;
  for (const auto& c : list_candidates(ws, dataset)) {
    json j = json::parse(c.data);
    const json& rs = j["responses"];
    auto rating = [&](const json& completion, bool good) {
      ratings += json({{"prompt", j["prompt"]}, {"completion", completion}, {"label", good}}).dump() + "\n";
      ++rep.ratings;
    };
    if (c.label.empty()) {
      ++rep.unlabelled;
    } else if (c.label == "skip") {
      ++rep.skipped;
    } else if (c.label == "tie") {
      ++rep.ties;
    } else if (c.label == "both_bad") {
      ++rep.both_bad;
      for (const auto& r : rs) rating(r, false);
    } else if (rs.size() < 2) {  // "a" on a single response: a thumbs-up
      rating(rs[0], true);
    } else {
      const size_t win = c.label == "a" ? 0 : 1, lose = 1 - win;
      pairs += json({{"prompt", j["prompt"]}, {"chosen", rs[win]}, {"rejected", rs[lose]}}).dump() + "\n";
      ++rep.pairs;
    }
  }
  write_file_atomic(pairs_out, pairs);
  if (!ratings_out.empty()) write_file_atomic(ratings_out, ratings);
  return rep;
}

}  // namespace hone
