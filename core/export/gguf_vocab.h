// The tokenizer as GGUF metadata (tokenizer.ggml.*), read from the model folder's own files:
// byte-level BPE (tokenizer.json) as "gpt2" with merges and the pre-tokenizer name llama.cpp knows it
// by; SentencePiece (tokenizer.model, or a SentencePiece-style tokenizer.json with byte fallback) as
// "llama" with scores and token types. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "export/gguf.h"

namespace hone {

struct GgufVocabInfo {
  std::string model;  // "gpt2" | "llama"
  std::string pre;    // BPE only: llama.cpp's pre-tokenizer name
  size_t tokens = 0;  // written (= the model's vocabulary rows)
  int32_t bos = -1, eos = -1, eot = -1;
  bool add_bos = false, add_eos = false;
  std::vector<std::string> notes;  // what a user should know (padding, a pre-tokenizer without equal)
};

// Adds tokenizer.ggml.* and tokenizer.chat_template for the tokenizer in `tok_dir`, padded or cut
// to `n_vocab` entries (llama.cpp requires one token per embedding row).
GgufVocabInfo add_gguf_vocab(GgufWriter& w, const std::string& tok_dir, int64_t n_vocab);

// llama.cpp's name for a tokenizer.json pre-tokenizer ("" when it has none that splits alike).
std::string llama_cpp_pre_name(const std::string& tokenizer_json_text);

// SentencePiece model files (protobuf), read without the library: pieces, scores, types and the
// normalizer's add_dummy_prefix. Validates every length against the file.
struct SpmPiece {
  std::string piece;
  float score = 0;
  int type = 1;  // NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
};
struct SpmModelProto {
  std::vector<SpmPiece> pieces;
  bool add_dummy_prefix = true;
  int model_type = 1;  // UNIGRAM 1, BPE 2
};
SpmModelProto read_spm_model(const std::string& path);

}  // namespace hone
