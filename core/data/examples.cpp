// Example readers on top of read_dataset: same formats and checks as a workspace import, but a
// training run takes all or nothing, so the first error is thrown.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/examples.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace hone {
namespace {

ReadResult read_checked(const std::string& path, ExampleFormat f) {
  ReadOptions o;
  o.format = f;
  ReadResult r = read_dataset(path, o);
  for (const auto& p : r.problems)
    if (p.error) throw Error(p.text() + (r.errors > 1 ? " (and " + std::to_string(r.errors - 1) + " more problems)" : ""));
  if (r.records.empty()) throw file_error(path, "no examples");
  return r;
}

}  // namespace

std::vector<Conversation> read_conversations(const std::string& path, ExampleFormat f) {
  ReadResult r = read_checked(path, f);
  if (r.kind == DatasetKind::Text)
    throw file_error(path, "raw text rows are not instruction data (use the continued pre-training recipe)");
  if (r.kind == DatasetKind::Preference)
    throw file_error(path, "preference pairs (chosen/rejected) are for DPO, ORPO or reward models, not SFT");
  if (r.kind == DatasetKind::Candidates)
    throw file_error(path, "unlabelled candidate pairs: label them (hone-cli label) and export the labelled pairs first");
  if (r.kind == DatasetKind::Choice)
    throw file_error(path, "multiple-choice questions are an evaluation suite (hone-cli eval run), not training data");
  std::vector<Conversation> out;
  out.reserve(r.records.size());
  for (auto& rec : r.records) out.push_back({record_messages(rec.data), rec.source});
  return out;
}

std::vector<std::string> read_documents(const std::string& path) {
  ReadResult r = read_checked(path, ExampleFormat::Text);
  std::vector<std::string> docs;
  docs.reserve(r.records.size());
  for (auto& rec : r.records) docs.push_back(nlohmann::json::parse(rec.data).at("text").get<std::string>());
  return docs;
}

}  // namespace hone
