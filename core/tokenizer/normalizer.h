// tokenizer.json normalizers over a string that remembers, for every byte, which bytes of the
// original text it came from, so that token offsets survive normalization.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hone {

struct AlignedString {
  std::string s;
  std::vector<uint32_t> ob, oe;  // per byte of s: original [begin, end)

  static AlignedString from_original(const std::string& text, uint32_t base);
  AlignedString slice(size_t b, size_t e) const;
  void append(const std::string& bytes, uint32_t orig_b, uint32_t orig_e);
  void append_from(const AlignedString& o, size_t b, size_t e);
  bool empty() const { return s.empty(); }
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual AlignedString apply(const AlignedString& in) const = 0;
};

// Builds the normalizer a tokenizer.json declares; null JSON gives nullptr. Throws on unknown types.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);

// Unicode normalization forms through ICU; out-of-range input is returned unchanged.
std::string unicode_normalize(const std::string& s, const char* form);  // "nfc" | "nfkc" | "nfd" | "nfkd"

}  // namespace hone
