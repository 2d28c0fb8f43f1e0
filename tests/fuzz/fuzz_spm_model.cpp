// Fuzzes the SentencePiece model reader the GGUF export uses (core/export/gguf_vocab.cpp,
// read_spm_model: the protobuf wire format read without the library) and the vocabulary it makes.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/gguf.h"
#include "export/gguf_vocab.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hone::fuzz::scratch_file("tokenizer.model", data, size);
  hone::fuzz::expect_errors_only([&] {
    const hone::SpmModelProto m = hone::read_spm_model(path);
    volatile size_t n = m.pieces.size();
    for (const auto& p : m.pieces) n = n + p.piece.size() + static_cast<size_t>(p.type);
    (void)n;
  });
  hone::fuzz::expect_errors_only([&] {
    hone::GgufWriter w;
    volatile size_t n = hone::add_gguf_vocab(w, hone::fuzz::scratch_dir(), 512).tokens;
    (void)n;
  });
  return 0;
}
