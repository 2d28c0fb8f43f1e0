// Fuzzes a PEFT adapter folder's adapter_config.json (core/peft/lora_config.cpp).
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "common/json_file.h"
#include "fuzz_support.h"
#include "peft/lora_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hone::fuzz::scratch_file("adapter_config.json", data, size);
  hone::fuzz::expect_errors_only([&] {
    const hone::LoraConfig c = hone::parse_peft_adapter_config(hone::read_json_file(path), path);
    if (c.r <= 0 || !(c.dropout >= 0 && c.dropout < 1)) std::abort();
  });
  return 0;
}
