// Preference pairs and ratings (see pairs.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/pairs.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"

namespace hone {
namespace {

using nlohmann::json;

std::vector<ChatMessage> as_messages(const json& v, const char* role_for_string) {
  std::vector<ChatMessage> out;
  if (v.is_string()) {
    out.push_back({role_for_string, v.get<std::string>()});
    return out;
  }
  for (const auto& m : v) out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return out;
}

ReadResult read_all(const std::string& path) {
  if (!file_exists(path) && !is_directory(path)) throw file_error(path, "data file not found");
  ReadResult r = read_dataset(path, {});
  for (const auto& p : r.problems)
    if (p.error) throw Error(p.text() + (r.errors > 1 ? " (and " + std::to_string(r.errors - 1) + " more problems)" : ""));
  if (r.records.empty()) throw file_error(path, "no examples");
  return r;
}

}  // namespace

PreferencePair preference_from_record(const std::string& canonical_json, const std::string& source) {
  json j = json::parse(canonical_json);
  PreferencePair p;
  p.prompt = as_messages(j.at("prompt"), "user");
  p.chosen = as_messages(j.at("chosen"), "assistant");
  p.rejected = as_messages(j.at("rejected"), "assistant");
  p.source = source;
  return p;
}

std::vector<PreferencePair> read_preference_pairs(const std::string& path, const std::string& recipe) {
  ReadResult r = read_all(path);
  if (r.kind != DatasetKind::Preference)
    throw file_error(path, std::string("holds ") + dataset_kind_name(r.kind) + " rows; the " + recipe +
                               " recipe needs preference pairs (prompt, chosen, rejected)" +
                               (r.kind == DatasetKind::Candidates ? "; label the candidates and export them (hone-cli label export)" : ""));
  std::vector<PreferencePair> out;
  out.reserve(r.records.size());
  for (const auto& rec : r.records) out.push_back(preference_from_record(rec.data, rec.source));
  return out;
}

std::vector<Rating> read_ratings(const std::string& path) {
  if (!file_exists(path)) throw file_error(path, "data file not found");
  // Rating rows are recognised by their "label" key; anything else goes through the dataset reader.
  const std::string text = read_file(path);
  std::vector<std::pair<json, std::string>> rows;
  const bool array = text.find_first_not_of(" \t\r\n") != std::string::npos && text[text.find_first_not_of(" \t\r\n")] == '[';
  try {
    if (array) {
      json a = json::parse(text);
      for (size_t i = 0; i < a.size(); ++i) rows.push_back({a[i], path + ": element " + std::to_string(i + 1)});
    } else {
      size_t start = 0, line = 0;
      while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        ++line;
        std::string l = text.substr(start, end - start);
        start = end + 1;
        if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = path + ":" + std::to_string(line);
        try {
          rows.push_back({json::parse(l), where});
        } catch (const json::exception&) {
          if (rows.empty()) break;  // not JSON lines: let the dataset reader name the problem
          throw Error(where + ": not valid JSON");
        }
      }
    }
  } catch (const json::exception&) {
    rows.clear();
  }
  if (rows.empty() || !rows.front().first.is_object() || !rows.front().first.contains("label")) {
    std::vector<Rating> out;
    for (auto& p : read_preference_pairs(path, "kto")) {
      out.push_back({p.prompt, p.chosen, true, p.source});
      out.push_back({p.prompt, p.rejected, false, p.source});
    }
    return out;
  }
  std::vector<Rating> out;
  for (const auto& [j, where] : rows) {
    if (!j.is_object()) throw Error(where + ": a row must be a JSON object");
    for (const char* k : {"prompt", "completion", "label"})
      if (!j.contains(k) || j[k].is_null()) throw Error(where + ": " + k + ": missing");
    if (!j["label"].is_boolean()) throw Error(where + ": label: must be true (desirable) or false (undesirable)");
    Rating r;
    try {
      r.prompt = as_messages(j["prompt"], "user");
      r.completion = as_messages(j["completion"], "assistant");
    } catch (const json::exception&) {
      throw Error(where + ": prompt and completion must be strings or lists of {role, content} messages");
    }
    if (r.completion.empty() || r.completion.back().content.find_first_not_of(" \t\r\n") == std::string::npos)
      throw Error(where + ": completion: empty response");
    r.desirable = j["label"].get<bool>();
    r.source = where;
    out.push_back(std::move(r));
  }
  return out;
}

Sequence tokenize_completion(const Tokenizer& tok, const ChatTemplate& f, const std::vector<ChatMessage>& prompt,
                             const std::vector<ChatMessage>& completion, int64_t max_len, bool* truncated) {
  std::vector<ChatMessage> all = prompt;
  all.insert(all.end(), completion.begin(), completion.end());
  ChatTokens full = tokenize_chat(tok, f, all, false);
  ChatTokens head = tokenize_chat(tok, f, prompt, true);
  // The prompt with the generation prompt is a prefix of the whole conversation in every native
  // template; where it is not (a tokenizer merging across the boundary), the completion starts at
  // the first assistant token after the longest common prefix.
  size_t p = 0;
  while (p < head.ids.size() && p < full.ids.size() && head.ids[p] == full.ids[p]) ++p;
  Sequence s;
  s.ids = std::move(full.ids);
  s.loss_mask.assign(s.ids.size(), 0);
  for (size_t i = p; i < s.ids.size(); ++i) s.loss_mask[i] = full.assistant_mask[i];
  if (!s.loss_mask.empty()) s.loss_mask[0] = 0;
  if (truncated) *truncated = false;
  if (static_cast<int64_t>(s.ids.size()) > max_len) {
    s.ids.resize(static_cast<size_t>(max_len));
    s.loss_mask.resize(static_cast<size_t>(max_len));
    if (truncated) *truncated = true;
  }
  return s;
}

}  // namespace hone
