// tokenizer.json pre-tokenizers: split normalized text into words (with alignment kept).
// The regexes come from the file itself and run on PCRE2 (Unicode classes, look-ahead).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/normalizer.h"

namespace hone {

class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // All non-overlapping matches as byte ranges [b, e) (empty matches skipped).
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& s) const;

 private:
  void* code_ = nullptr;
};

struct PreTokenizeState {
  bool byte_level = false;  // set when a ByteLevel pre-tokenizer is present: BPE sees mapped bytes
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // `first` is true for the piece list that starts at offset 0 of the input (Metaspace "first").
  virtual std::vector<AlignedString> split(std::vector<AlignedString> pieces, bool first) const = 0;
};

std::unique_ptr<PreTokenizer> make_pretokenizer(const nlohmann::json& j, PreTokenizeState* state);

}  // namespace hone
