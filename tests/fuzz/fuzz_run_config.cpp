// Fuzzes run configs (core/train/run_config.cpp and the recipe table's keys and checks): the JSON
// file `hone-cli train` and the GUI read, strict keys and types, method defaults, every recipe.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "common/files.h"
#include "fuzz_support.h"
#include "train/run_config.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Hub names resolve in a cache of our own (empty), never the user's.
  setenv("HF_HUB_CACHE", (hone::fuzz::scratch_dir() + "/hub").c_str(), 1);
  setenv("HF_HUB_OFFLINE", "1", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hone::fuzz::scratch_file("run.json", data, size);
  hone::fuzz::expect_errors_only([&] {
    const hone::RunConfig c = hone::load_run_config(path);
    // A config that loaded writes out and reads back as the same config.
    const nlohmann::json j = c.to_json();
    hone::RunConfig again = hone::default_run_config(c.method);
    hone::apply_config_json(again, j, path);
    if (again.to_json() != j) std::abort();
  });
  return 0;
}
