// Fuzzes the hub's answer to /api/models/ID/revision/REV?blobs=true as the download planner reads
// it (core/hub/hub_download.cpp, plan_from_answer): commit, file names, sizes and hashes.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "common/files.h"
#include "fuzz_support.h"
#include "hub/hub_download.h"

namespace {

// A planned path becomes a file under snapshots/COMMIT: relative, no empty, "." or ".." part.
bool stays_inside(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  size_t b = 0;
  while (true) {
    const size_t e = path.find('/', b);
    const std::string part = path.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (part.empty() || part == "." || part == "..") return false;
    if (e == std::string::npos) return true;
    b = e + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json answer;
  try {
    answer = hone::hub::parse_hub_json(hone::fuzz::as_string(data, size), "org/name", "https://hub/api/models/org/name");
  } catch (const hone::Error&) {
    return 0;
  }
  const std::string repo = hone::join_path(hone::fuzz::scratch_dir(), "models--org--name");
  hone::hub::DownloadRequest model;
  model.ref.id = "org/name";
  hone::hub::DownloadRequest dataset;
  dataset.ref.type = "dataset";
  dataset.ref.id = "org/data";
  dataset.ref.revision = "v1";
  dataset.include = {"*.json*", "data/*"};
  for (const auto* r : {&model, &dataset}) {
    hone::fuzz::expect_errors_only([&] {
      const hone::hub::DownloadPlan p = hone::hub::plan_from_answer(answer, *r, repo);
      int64_t total = 0;
      for (const auto& f : p.files) {
        if (f.size < 0 || !stays_inside(f.path)) std::abort();
        if (__builtin_add_overflow(total, f.size, &total)) std::abort();
      }
      if (total != p.bytes_total || p.commit.size() != 40) std::abort();
    });
  }
  return 0;
}
