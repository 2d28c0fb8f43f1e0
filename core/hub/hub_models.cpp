// Describing cached hub repos and searching the hub (hub_models.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "hub/hub_models.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "model/arch.h"
#include "model/checkpoint.h"
#include "model/config.h"

namespace fs = std::filesystem;

namespace hone::hub {
namespace {

std::string url_query(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += '%', out += hex[c >> 4], out += hex[c & 15];
  }
  return out;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

CachedEntry describe_model_folder(const std::string& dir) {
  CachedEntry e;
  e.snapshot = dir;
  const std::string cfg = join_path(dir, "config.json");
  if (!file_exists(cfg)) {
    e.why_not = "no config.json";
    return e;
  }
  try {
    nlohmann::json j = read_json_file(cfg);
    if (j.is_object() && j.contains("model_type") && j["model_type"].is_string()) e.architecture = j["model_type"];
    if (j.is_object() && j.contains("torch_dtype") && j["torch_dtype"].is_string()) e.dtype = j["torch_dtype"];
  } catch (const std::exception& ex) {
    e.why_not = first_line(ex.what());
    return e;
  }
  try {
    ModelConfig c = load_model_config(dir);
    e.parameters = c.parameter_count();
    checkpoint_files(dir);
    if (!file_exists(join_path(dir, "tokenizer.json")) && !file_exists(join_path(dir, "tokenizer.model")))
      e.why_not = "no tokenizer (tokenizer.json or tokenizer.model)";
    else
      e.loadable = true;
  } catch (const std::exception& ex) {
    std::string w = first_line(ex.what());
    // "DIR/config.json: unsupported ..." -> the part after the folder, which the list already shows.
    if (w.rfind(dir, 0) == 0) w = w.substr(std::min(w.size(), dir.size()));
    while (!w.empty() && (w[0] == '/' || w[0] == ':' || w[0] == ' ')) w.erase(0, 1);
    e.why_not = w;
  }
  return e;
}

std::vector<CachedEntry> list_cached(const std::string& cache) {
  std::vector<CachedEntry> out;
  for (const auto& r : list_cached_repos(cache)) {
    const CachedRevision* pick = nullptr;
    for (const auto& rev : r.revisions)
      for (const auto& n : rev.refs)
        if (n == "main" && !pick) pick = &rev;
    if (!pick && !r.revisions.empty()) pick = &r.revisions.front();
    CachedEntry e;
    if (pick && r.ref.type == "model") e = describe_model_folder(pick->snapshot);
    else if (r.ref.type == "model") e.why_not = "no complete snapshot (an interrupted download?)";
    e.ref = r.ref;
    e.revisions = static_cast<int>(r.revisions.size());
    e.bytes = r.bytes;
    e.incomplete_bytes = r.incomplete_bytes;
    // Hone writes refs/ only once every file is whole: a model without it (or with partial
    // files) is a download to resume, not a broken model.
    const bool named = pick && !pick->refs.empty();
    if (r.ref.type == "model" && !e.loadable && (r.incomplete_bytes > 0 || !named)) {
      char mib[32];
      std::snprintf(mib, sizeof mib, "%.1f MiB", static_cast<double>(r.incomplete_bytes) / (1 << 20));
      e.why_not = std::string("download not finished") + (r.incomplete_bytes > 0 ? std::string(" (") + mib + " partial)" : "") +
                  ": download it again to resume";
    }
    if (pick) {
      e.commit = pick->commit;
      e.refs = pick->refs;
      e.snapshot = pick->snapshot;
      e.files = pick->files;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<SearchHit> search_models(const HubClient& c, const std::string& query, int limit, bool all_archs) {
  if (limit < 1) limit = 20;
  // Asks for more than shown: models of other architectures are dropped here, not by the hub.
  const int ask = all_archs ? limit : std::min(limit * 4, 200);
  const std::string path = "/api/models?search=" + url_query(query) + "&pipeline_tag=text-generation&sort=downloads&direction=-1&limit=" +
                           std::to_string(ask) + "&config=true";
  nlohmann::json j = c.get_json(path, "search \"" + query + "\"");
  if (!j.is_array()) throw Error("search \"" + query + "\": the hub's answer is not a list of models");
  std::vector<SearchHit> out;
  for (const auto& m : j) {
    if (!m.is_object()) continue;
    SearchHit h;
    h.id = m.value("id", m.value("modelId", ""));
    if (h.id.empty()) continue;
    if (m.contains("config") && m["config"].is_object() && m["config"].contains("model_type") && m["config"]["model_type"].is_string())
      h.model_type = m["config"]["model_type"];
    h.pipeline = m.contains("pipeline_tag") && m["pipeline_tag"].is_string() ? m["pipeline_tag"].get<std::string>() : "";
    if (m.contains("downloads") && m["downloads"].is_number_integer()) h.downloads = m["downloads"];
    if (m.contains("likes") && m["likes"].is_number_integer()) h.likes = m["likes"];
    if (m.contains("lastModified") && m["lastModified"].is_string()) h.updated = m["lastModified"].get<std::string>().substr(0, 10);
    h.gated = m.contains("gated") && ((m["gated"].is_boolean() && m["gated"].get<bool>()) || m["gated"].is_string());
    h.supported = !h.model_type.empty() && find_arch(h.model_type) != nullptr;
    if (!all_archs && !h.supported) continue;
    out.push_back(h);
  }
  // Most downloaded first even from a mirror that ignores sort=downloads.
  std::stable_sort(out.begin(), out.end(), [](const SearchHit& a, const SearchHit& b) { return a.downloads > b.downloads; });
  if (static_cast<int>(out.size()) > limit) out.resize(static_cast<size_t>(limit));
  return out;
}

}  // namespace hone::hub
