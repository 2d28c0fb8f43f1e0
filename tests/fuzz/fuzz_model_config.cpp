// Fuzzes a model folder's config.json (core/model/config.cpp and the architecture table, arch.cpp).
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "fuzz_support.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hone::fuzz::scratch_file("config.json", data, size);
  hone::fuzz::expect_errors_only([&] {
    const hone::ModelConfig c = hone::load_model_config(hone::fuzz::scratch_dir());
    // What the decoder is built from must be usable as sizes.
    if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
        c.head_dim <= 0 || c.intermediate_size <= 0)
      std::abort();
    volatile int64_t sink = c.parameter_count() + c.q_dim() + c.kv_dim();
    (void)sink;
  });
  return 0;
}
