// Fuzzes tokenizer.json (core/tokenizer/hf_tokenizer.cpp with its BPE model, normalizers and
// pre-tokenizers; the GGUF export's vocabulary reader, export/gguf_vocab.cpp), then encodes and
// decodes fixed texts with whatever tokenizer the file describes.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "export/gguf.h"
#include "export/gguf_vocab.h"
#include "fuzz_support.h"
#include "tokenizer/hf_tokenizer.h"

namespace {

// Words, numbers, punctuation, runs of spaces and newlines, accents, CJK, emoji with a modifier,
// and special-token look-alikes: what pre-tokenizers split on.
const char* const kTexts[] = {
    "Hello, world! It's 2024-11-28 and   3.14159 apples.\n\n\tTabs\tand  spaces ",
    " <|im_start|>user\nÜnïcödé ßø 你好，世界 👍🏽 <s></s><unk> ▁x\r\n",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hone::fuzz::scratch_file("tokenizer.json", data, size);
  hone::fuzz::expect_errors_only([&] {
    hone::GgufWriter w;
    volatile size_t n = hone::add_gguf_vocab(w, hone::fuzz::scratch_dir(), 512).tokens;
    (void)n;
  });
  hone::fuzz::expect_errors_only([&] {
    hone::HfTokenizer tok(path, hone::TokenizerConfig{});
    const size_t vocab = tok.vocab_size();
    for (const char* text : kTexts) {
      for (bool special : {false, true}) {
        const hone::Encoding e = tok.encode(text, special);
        if (e.offsets.size() != e.ids.size()) std::abort();
        for (size_t i = 0; i < e.ids.size(); ++i) {
          if (e.ids[i] < 0 || static_cast<size_t>(e.ids[i]) >= vocab) std::abort();
          if (e.offsets[i].first > e.offsets[i].second || e.offsets[i].second > std::char_traits<char>::length(text)) std::abort();
        }
        volatile size_t n = tok.decode(e.ids, false).size() + tok.decode(e.ids, true).size();
        (void)n;
      }
    }
    for (int32_t id : {0, 1, 2, static_cast<int32_t>(vocab) - 1, static_cast<int32_t>(vocab), -1}) {
      const std::string t = tok.id_to_token(id);
      volatile bool s = tok.is_special(id);
      (void)s;
      if (!t.empty()) (void)tok.token_to_id(t);
    }
  });
  return 0;
}
