// Tokenizer interface shared by tokenizer.json BPE and SentencePiece (.model) tokenizers,
// plus tokenizer_config.json (special tokens, BOS/EOS policy, chat template).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace hone {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<std::pair<uint32_t, uint32_t>> offsets;  // byte range in the input text; (0,0) for added specials
};

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

struct TokenizerConfig {
  std::string bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;
  std::optional<bool> legacy;  // LlamaTokenizer's legacy flag
  std::string chat_template;  // chat_template.jinja wins over tokenizer_config.json
  std::string chat_template_file;  // the file it came from (errors in the template name it)
  std::string tokenizer_class;
  bool clean_up_tokenization_spaces = false;
  int64_t model_max_length = 0;
  std::vector<AddedToken> added_tokens_decoder;
};

TokenizerConfig load_tokenizer_config(const std::string& dir);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Input must be valid UTF-8 (an Error names the byte offset otherwise).
  virtual Encoding encode(const std::string& text, bool add_special) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  virtual int32_t token_to_id(const std::string& token) const = 0;  // -1 when absent
  virtual std::string id_to_token(int32_t id) const = 0;
  virtual size_t vocab_size() const = 0;  // highest id + 1, added tokens included
  virtual std::string kind() const = 0;
  virtual bool is_special(int32_t id) const = 0;

  const TokenizerConfig& config() const { return cfg_; }
  int32_t bos_id() const { return cfg_.bos_token.empty() ? -1 : token_to_id(cfg_.bos_token); }
  int32_t eos_id() const { return cfg_.eos_token.empty() ? -1 : token_to_id(cfg_.eos_token); }
  int32_t pad_id() const { return cfg_.pad_token.empty() ? -1 : token_to_id(cfg_.pad_token); }

 protected:
  TokenizerConfig cfg_;
};

// Loads tokenizer.json when present (preferred), else tokenizer.model through SentencePiece.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

// Copies the tokenizer files a model folder has (tokenizer.json / .model, tokenizer_config.json,
// special_tokens_map.json, chat_template.jinja) into another folder, each file atomically.
void copy_tokenizer_files(const std::string& from, const std::string& to);

// Splits text on added tokens (leftmost-longest), honouring lstrip/rstrip/single_word.
class AddedTokenSplitter {
 public:
  void add(const AddedToken& t);
  struct Segment {
    size_t b, e;
    int token = -1;  // index into tokens(), or -1 for plain text
  };
  std::vector<Segment> split(const std::string& text) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find_id(int32_t id) const;
  const AddedToken* find_content(const std::string& s) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> next;
    int token = -1;
  };
  std::vector<Node> trie_{Node{}};
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;           // Gemma 3 has 6,415 added tokens:
  std::unordered_map<std::string, size_t> by_content_;  // lookups must not scan them
};

}  // namespace hone
