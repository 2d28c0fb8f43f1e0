// Preference data for the alignment recipes: pairs (prompt, chosen, rejected) for DPO and ORPO, and
// unpaired ratings (prompt, completion, desirable) for KTO, read with every problem named by file
// and line, and tokenized with the loss mask on the completion only (the prompt is masked).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/records.h"
#include "data/sequences.h"
#include "tokenizer/chat_template.h"

namespace hone {

struct PreferencePair {
  std::vector<ChatMessage> prompt, chosen, rejected;
  std::string source;  // file:line
};

struct Rating {
  std::vector<ChatMessage> prompt, completion;
  bool desirable = true;
  std::string source;
};

// Reads preference pairs (TRL's plain or conversational form, implicit prompts allowed). A file of
// another kind is an error naming the kind it has and the kind `recipe` needs.
std::vector<PreferencePair> read_preference_pairs(const std::string& path, const std::string& recipe);
// Reads KTO ratings: rows {"prompt", "completion", "label": true|false} (JSONL or a JSON array),
// or preference pairs, each giving a desirable (chosen) and an undesirable (rejected) rating.
std::vector<Rating> read_ratings(const std::string& path);

// Canonical preference record (records.h) -> pair.
PreferencePair preference_from_record(const std::string& canonical_json, const std::string& source);

// prompt + completion rendered with the chat template; loss_mask is 1 on the completion's tokens
// only (its text and end-of-turn token), never on the prompt. Cut at max_len (*truncated set);
// an empty mask means nothing of the completion fits.
Sequence tokenize_completion(const Tokenizer& tok, const ChatTemplate& f, const std::vector<ChatMessage>& prompt,
                             const std::vector<ChatMessage>& completion, int64_t max_len, bool* truncated = nullptr);

}  // namespace hone
