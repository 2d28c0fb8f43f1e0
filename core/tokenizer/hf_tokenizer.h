// tokenizer.json (Hugging Face tokenizers) implemented in core: added tokens, normalizer,
// pre-tokenizer, BPE model, post-processor and decoder, as the file declares them.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace hone {

class HfTokenizer : public Tokenizer {
 public:
  HfTokenizer(const std::string& tokenizer_json_path, TokenizerConfig cfg);
  Encoding encode(const std::string& text, bool add_special) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int32_t id) const override;
  size_t vocab_size() const override { return vocab_size_; }
  std::string kind() const override;
  bool is_special(int32_t id) const override;

 private:
  struct TemplateItem {
    bool sequence;               // true: the encoded text; false: special token ids
    std::vector<int32_t> ids;
  };
  Encoding encode_raw(const std::string& text, bool add_special) const;
  Encoding encode_llama_nonlegacy(const std::string& text, bool add_special) const;
  Encoding post_process(const Encoding& enc) const;
  void add_text(const std::string& text, size_t base, bool first, Encoding& out) const;
  // One decoder of the chain, read and checked when the file is loaded (a Sequence is flattened).
  struct DecodeStep {
    // Unsupported: a type Hone does not run; encoding works, decoding throws naming it (content).
    enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Unsupported } kind;
    std::string pattern, content;  // Replace: pattern -> content; Strip: content; Metaspace: the replacement
    size_t start = 0, stop = 0;    // Strip
    bool prefix = false;           // Metaspace: add_prefix_space
  };
  static void parse_decoder(const nlohmann::json& d, std::vector<DecodeStep>* steps, int depth);
  static std::vector<std::string> run_decoder(const DecodeStep& d, std::vector<std::string> toks);

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pretok_;
  PreTokenizeState pstate_;
  AddedTokenSplitter added_;
  std::vector<TemplateItem> post_;
  std::vector<DecodeStep> decoder_;
  bool has_decoder_ = false;
  size_t vocab_size_ = 0;
  bool llama_nonlegacy_ = false;
};

}  // namespace hone
