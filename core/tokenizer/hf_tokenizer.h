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
  std::vector<std::string> run_decoder(const nlohmann::json& d, std::vector<std::string> toks) const;

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pretok_;
  PreTokenizeState pstate_;
  AddedTokenSplitter added_;
  std::vector<TemplateItem> post_;
  nlohmann::json decoder_;
  size_t vocab_size_ = 0;
  bool llama_nonlegacy_ = false;
};

}  // namespace hone
