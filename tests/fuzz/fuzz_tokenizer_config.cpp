// Fuzzes tokenizer_config.json (core/tokenizer/tokenizer_config.cpp): special tokens, flags, added
// tokens, and the chat template it carries as far as picking and parsing it (fuzz_jinja renders).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "fuzz_support.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hone::fuzz::scratch_file("tokenizer_config.json", data, size);
  hone::fuzz::expect_errors_only([&] {
    const hone::TokenizerConfig cfg = hone::load_tokenizer_config(hone::fuzz::scratch_dir());
    hone::AddedTokenSplitter split;
    for (const auto& t : cfg.added_tokens_decoder) split.add(t);
    volatile size_t n = split.split(cfg.bos_token + " hello " + cfg.eos_token + cfg.pad_token).size();
    const hone::ChatTemplate family = hone::family_chat_template(cfg);
    n = n + hone::end_of_turn_tokens(family, cfg.eos_token).size();
    const hone::ChatTemplate t = hone::resolve_chat_template(cfg, "auto");
    n = n + t.describe().size();
    (void)n;
  });
  return 0;
}
