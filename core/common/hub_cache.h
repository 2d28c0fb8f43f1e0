// The Hugging Face hub cache as huggingface_hub lays it out, read offline: where it is, the repo
// folders in it (models--ORG--NAME/{blobs,snapshots/COMMIT,refs/REV}), and ORG/NAME[@REV] -> the
// snapshot folder, so that every place that takes a model folder also takes a hub name.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hone {

// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
std::string hf_home();
// $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (older name), else $HF_HOME/hub.
std::string hub_cache_dir();

struct HubRef {
  std::string type = "model";  // model | dataset
  std::string id;              // ORG/NAME
  std::string revision;        // "" = main; a branch, tag or 40-hex commit
  std::string text() const;    // ORG/NAME[@REV], "datasets/" in front for a dataset
};

// "ORG/NAME", "ORG/NAME@REV", "datasets/ORG/NAME[@REV]": true and *out filled. A name part is
// letters, digits, '-', '_' and '.' (not starting with '.' or '-', no "..", at most 96 chars).
bool parse_hub_ref(const std::string& s, HubRef* out);
// "models--ORG--NAME" / "datasets--ORG--NAME".
std::string repo_folder_name(const HubRef& r);
std::string repo_folder(const HubRef& r, const std::string& cache = hub_cache_dir());

// The snapshot folder of a cached revision ("" when it is not cached; *why says what is missing).
// A branch or tag goes through refs/REV; a commit is looked up directly.
std::string cached_snapshot(const HubRef& r, std::string* why = nullptr, const std::string& cache = hub_cache_dir());

// A model folder as the user named it: an existing folder (or file) as it is; otherwise ORG/NAME[@REV] from
// the cache (throws, naming the cache and the download command, when it is not there); anything
// else as it is (the loader's own error then names it).
std::string resolve_model_dir(const std::string& path_or_ref);
// resolve_model_dir, or "" where it would throw (for checks that report their own error).
std::string resolve_model_dir_or_empty(const std::string& path_or_ref);
// The same for datasets: a file or folder as it is, else datasets/ORG/NAME or ORG/NAME from the
// cache's datasets--ORG--NAME.
std::string resolve_dataset_path(const std::string& path_or_ref);

struct CachedRevision {
  std::string commit;
  std::vector<std::string> refs;  // branch and tag names pointing here
  std::string snapshot;           // folder
  int64_t files = 0;
};

struct CachedRepo {
  HubRef ref;                // revision empty
  std::string folder;
  std::vector<CachedRevision> revisions;  // newest snapshot first (by modification time)
  int64_t bytes = 0;         // complete blobs
  int64_t incomplete_bytes = 0;  // *.incomplete: downloads that can resume
};

// "ORG/NAME" of a path inside a cached repo's folder (a snapshot or a file in one), else "".
std::string hub_name_of_path(const std::string& path);

// Every repo folder in the cache (models and datasets), sorted by type then id.
std::vector<CachedRepo> list_cached_repos(const std::string& cache = hub_cache_dir());

}  // namespace hone
