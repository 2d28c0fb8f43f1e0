// Downloads from the hub into the shared cache, laid out as huggingface_hub does (blobs named by
// their ETag, snapshots/COMMIT/FILE links, refs/REV), so transformers and llama.cpp's converters see
// the same files. Resumable (.incomplete + HTTP Range), verified (sha256 of LFS files, git's blob
// sha1 of the others) before a file enters blobs/, several files at once, cancellable.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/hub_cache.h"
#include "hub/hub_http.h"

namespace hone::hub {

struct DownloadRequest {
  HubRef ref;                        // model or dataset, ORG/NAME, revision ("" = main)
  std::vector<std::string> include;  // globs over repo paths ('*' crosses '/'); empty: what Hone needs
  int jobs = 4;                      // files at once
  int retries = 3;                   // a dropped connection resumes from where it stopped, this often
};

struct PlannedFile {
  std::string path;    // in the repo ("model-00001-of-00002.safetensors")
  int64_t size = 0;
  std::string blob;    // ETag: the LFS sha256, else git's blob sha1
  bool lfs = false;
  bool cached = false;  // its blob is already whole in the cache
  int64_t partial = 0;  // bytes of an earlier interrupted download that will be kept
};

struct DownloadPlan {
  std::string commit;
  std::vector<PlannedFile> files;
  std::vector<std::string> skipped;  // "pytorch_model.bin (pickled weights: not downloaded unless --include names them)"
  int64_t bytes_total = 0, bytes_to_fetch = 0;
  std::string gated;  // "", "auto" or "manual": files may need a token and accepted conditions
};

struct DownloadProgress {
  int64_t bytes_done = 0, bytes_total = 0;  // of this run's files, kept partial bytes included
  int files_done = 0, files_total = 0;
  double rate = 0;   // bytes/s over the last seconds
  double eta_s = -1;  // -1: not known yet
};

struct DownloadResult {
  std::string snapshot, commit;
  int64_t bytes_fetched = 0;  // over the network in this run
  int files = 0, reused = 0, resumed = 0;
  double seconds = 0;
  bool cancelled = false;
};

// True for the files Hone uses (config, safetensors and index, tokenizer and generation files,
// README/licence); datasets: data files and the card. Pickled weights are never in the default.
bool default_file(const std::string& path, bool dataset);
bool pickled_file(const std::string& path);
bool glob_match(const std::string& pattern, const std::string& path);

// Asks the hub for the revision's commit and files; picks the files; checks paths and hashes.
DownloadPlan plan_download(const HubClient& c, const DownloadRequest& r);
// The checks of plan_download on the hub's answer (the JSON of /api/models/ID/revision/REV?blobs=true,
// untrusted): commit hash, file names, sizes and hashes; `repo` is the repo's cache folder, where
// blobs already whole or partly downloaded are looked for. Throws hone::Error naming the request.
DownloadPlan plan_from_answer(const nlohmann::json& answer, const DownloadRequest& r, const std::string& repo);
// Fetches the plan's files into the cache; progress is called from this thread about 5 times a
// second. A failed file leaves its .incomplete (resumable) unless its bytes were wrong; the refs/
// entry is written once every file is whole. Throws naming each failed file.
DownloadResult run_download(const HubClient& c, const DownloadRequest& r, const DownloadPlan& plan,
                            const std::function<void(const DownloadProgress&)>& progress, const std::atomic<bool>* cancel);

// Deletes a repo (or one revision's snapshot, and blobs no other snapshot links) from the cache.
// Returns the bytes freed.
int64_t remove_cached(const HubRef& r, const std::string& cache);

}  // namespace hone::hub
