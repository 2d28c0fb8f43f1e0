// The BPE model of tokenizer.json: vocab, ranked merges, byte fallback, unk handling.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace hone {

struct BpeToken {
  int32_t id;
  uint32_t b, e;  // byte range inside the word
};

class BpeModel {
 public:
  explicit BpeModel(const nlohmann::json& model);

  // word: the pre-token's text; when byte_level, BPE runs over the byte-to-unicode mapping of it.
  std::vector<BpeToken> tokenize(const std::string& word, bool byte_level) const;

  int32_t token_to_id(const std::string& s) const;  // -1 when absent
  const std::string& id_to_token(int32_t id) const;
  size_t vocab_size() const { return id_to_tok_.size(); }  // highest id + 1
  size_t tokens() const { return vocab_.size(); }            // entries of the vocab
  void add_token(const std::string& s, int32_t id);  // added tokens outside the model's vocab

  // Ids index a table: none may pass this, nor lie far beyond the number of tokens a file has.
  static constexpr int32_t kMaxTokenId = 1 << 24;

  bool byte_fallback() const { return byte_fallback_; }

 private:
  std::vector<BpeToken> merge_word(const std::vector<std::string>& units, const std::vector<std::pair<uint32_t, uint32_t>>& ranges) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_tok_;
  struct Merge {
    int32_t rank, new_id;
  };
  std::unordered_map<uint64_t, Merge> merges_;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  int32_t unk_id_ = -1;
  std::string cont_prefix_, end_suffix_;
  int32_t byte_ids_[256];
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<BpeToken>> cache_;
};

// GPT-2's byte <-> printable-unicode map (hf-compat.md §3).
const std::string& byte_to_unicode(uint8_t b);
// Inverse: UTF-8 of one mapped char -> byte; -1 if it is not a mapped char.
int unicode_to_byte(const std::string& ch);

}  // namespace hone
