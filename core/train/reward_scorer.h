// Torch-free handle on a trained reward model (a run of the reward recipe): scores a text, or a
// prompt and its completion rendered as training rendered them, with the score head on the last
// token (model/reward_head.h). Used by `hone-cli reward score` and, later, as PPO's reward.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace hone {

class RewardScorer {
 public:
  // A reward run's folder or one of its checkpoints; throws when the adapter has no score head.
  explicit RewardScorer(const std::string& run_dir);
  ~RewardScorer();
  RewardScorer(const RewardScorer&) = delete;
  RewardScorer& operator=(const RewardScorer&) = delete;

  // Plain text, tokenized as is (with the tokenizer's own special tokens).
  double score_text(const std::string& text);
  // A prompt and a completion, rendered with the run's chat template and cut at its max_seq_len
  // exactly as the reward recipe built its training sequences.
  double score(const std::vector<ChatMessage>& prompt, const std::vector<ChatMessage>& completion);
  // Several at once (batched forward passes of up to `batch` rows).
  std::vector<double> score_many(const std::vector<std::pair<std::vector<ChatMessage>, std::vector<ChatMessage>>>& items,
                                 int batch = 8);
  const ChatTemplate& format() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone
