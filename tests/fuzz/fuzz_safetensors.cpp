// Fuzzes the safetensors reader (core/model/safetensors.cpp): header length, JSON, dtypes, shapes, offsets.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "fuzz_support.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hone::fuzz::scratch_file("model.safetensors", data, size);
  hone::fuzz::expect_errors_only([&] {
    hone::SafetensorsFile f(path);
    // What a loader relies on once the reader accepted the file.
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors()) {
      for (int64_t d : t.shape)
        if (d < 0) std::abort();
      const int64_t n = t.numel();
      if (n < 0 || static_cast<uint64_t>(n) * hone::st_dtype_size(t.dtype) != t.end - t.begin) std::abort();
      if (f.find(t.name) != &t) std::abort();
      if (t.end > t.begin) sink = sink + f.data(t)[0] + f.data(t)[t.end - t.begin - 1];
      f.release(t);
    }
    for (const auto& [k, v] : f.metadata()) sink = sink + static_cast<uint8_t>(k.size() + v.size());
  });
  return 0;
}
