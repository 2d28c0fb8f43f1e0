// Fuzzes the GGUF reader (core/export/gguf.cpp) as `hone-cli gguf` and the export check use it:
// header, metadata of every type, tensor infos, then every tensor decoded.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "export/gguf.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hone::fuzz::scratch_file("model.gguf", data, size);
  hone::fuzz::expect_errors_only([&] {
    const hone::GgufFile f(path);
    volatile size_t n = 0;
    for (const auto& k : f.key_order()) {
      n = n + f.metadata().at(k).describe().size();
      hone::fuzz::expect_errors_only([&] { n = n + f.get_string(k).size(); });
      hone::fuzz::expect_errors_only([&] { n = n + f.get_uint(k); });
      hone::fuzz::expect_errors_only([&] { n = n + static_cast<size_t>(f.get_float(k) != 0); });
    }
    for (const auto& t : f.tensors()) {
      if (t.numel() <= 0 || t.offset + t.nbytes > size) std::abort();
      if (f.find(t.name) != &t) std::abort();
      n = n + f.read_floats(t).size() + std::string(hone::ggml_type_name(t.type)).size();
    }
    (void)n;
  });
  return 0;
}
