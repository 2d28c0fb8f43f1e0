// What the hub cache holds, described for people (hub list, the Models page): each model's
// architecture, parameters, size and whether Hone can load it (and why not); and the hub's model
// search, narrowed to text-generation models of Hone's architectures.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/hub_cache.h"
#include "hub/hub_http.h"

namespace hone::hub {

struct CachedEntry {
  HubRef ref;                 // model or dataset (revision empty)
  std::string commit;         // the snapshot described (main's, else the newest)
  std::vector<std::string> refs;
  std::string snapshot;       // its folder
  int revisions = 0;
  int64_t bytes = 0;          // blobs on disk (all revisions)
  int64_t incomplete_bytes = 0;
  int64_t files = 0;
  // Models only:
  std::string architecture;   // config.json's model_type ("" when unreadable)
  int64_t parameters = 0;     // from the config's shapes
  std::string dtype;          // config's torch_dtype
  bool loadable = false;
  std::string why_not;        // "" when loadable: what is missing or unsupported
};

// The snapshot folder described as a model: architecture, parameters, loadable or why not. Reads
// config.json, the safetensors index/headers' presence and the tokenizer files; loads no weights.
CachedEntry describe_model_folder(const std::string& dir);
// Every cached repo (models first), described.
std::vector<CachedEntry> list_cached(const std::string& cache);

struct SearchHit {
  std::string id;
  std::string model_type;  // from the hub's config summary ("" when the hub gave none)
  std::string pipeline;
  int64_t downloads = 0, likes = 0;
  std::string updated;
  bool gated = false;
  bool supported = false;  // a model_type Hone loads
};

// GET /api/models?search=QUERY&pipeline_tag=text-generation (most downloaded first, with each
// model's config summary); all_archs=false keeps Hone's architectures only.
std::vector<SearchHit> search_models(const HubClient& c, const std::string& query, int limit, bool all_archs);

}  // namespace hone::hub
