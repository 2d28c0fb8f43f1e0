// tokenizer.model (SentencePiece) through the dlopen'ed shim, with tokenizer_config.json's
// added tokens and BOS/EOS policy layered on top as transformers' LlamaTokenizer does.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include "tokenizer/spm_c_api.h"
#include "tokenizer/tokenizer.h"

namespace hone {

class SpmTokenizer : public Tokenizer {
 public:
  SpmTokenizer(const std::string& model_path, TokenizerConfig cfg);
  ~SpmTokenizer() override;
  Encoding encode(const std::string& text, bool add_special) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  int32_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int32_t id) const override;
  size_t vocab_size() const override;
  std::string kind() const override { return "sentencepiece"; }
  bool is_special(int32_t id) const override;

  // Path of the shim that was (or would be) loaded.
  static std::string shim_path();

 private:
  void* handle_ = nullptr;
  struct Api {
    hone_spm_open_fn open;
    hone_spm_close_fn close;
    hone_spm_vocab_size_fn vocab_size;
    hone_spm_encode_fn encode;
    hone_spm_decode_fn decode;
    hone_spm_id_to_piece_fn id_to_piece;
    hone_spm_piece_to_id_fn piece_to_id;
    hone_spm_special_id_fn special_id;
    hone_spm_is_control_fn is_control;
  };
  static const Api& api();
  AddedTokenSplitter added_;
};

}  // namespace hone
