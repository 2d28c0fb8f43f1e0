// Token sequences for training: conversations rendered with the chat template (loss mask on
// assistant tokens, or on all), and raw documents packed into fixed-length blocks with EOS between.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/examples.h"
#include "tokenizer/tokenizer.h"

namespace hone {

struct Sequence {
  std::vector<int32_t> ids;
  std::vector<uint8_t> loss_mask;  // 1: the model is trained to predict this token
};

struct TokenizeStats {
  int64_t sequences = 0, truncated = 0, dropped = 0, tokens = 0, loss_tokens = 0;
};

std::vector<Sequence> tokenize_conversations(const Tokenizer& tok, const ChatTemplate& f, const std::vector<Conversation>& convs,
                                             int64_t max_len, bool assistant_only, TokenizeStats* stats);
// Concatenates documents with EOS after each and cuts blocks of block_len tokens ("wrapped" packing).
// packing=false: one sequence per document (+ EOS), cut at block_len.
std::vector<Sequence> pack_documents(const Tokenizer& tok, const std::vector<std::string>& docs, int64_t block_len,
                                     TokenizeStats* stats, bool packing = true);

}  // namespace hone
