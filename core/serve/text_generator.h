// Torch-free handle on a model that answers conversations, for the desktop app's Playground and
// any caller that must not include torch headers (platform-notes §5): a base model, optionally with
// a PEFT adapter or what a run produced, its chat template, and streaming sampled replies.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace hone {

struct GenerationSettings {
  int max_new_tokens = 128;
  double temperature = 0.7;  // 0 -> greedy
  double top_p = 0.95;
  int top_k = 0;
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
};

struct GenerationOutput {
  std::string text;
  int64_t prompt_tokens = 0, tokens = 0;
  double seconds = 0;
  bool stopped = false;  // the callback asked to stop
};

// Receives each newly decoded piece of text; return false to stop.
using TextCallback = std::function<bool(const std::string& piece)>;

class TextGenerator {
 public:
  // A model folder, optionally with a PEFT adapter folder; nf4 quantizes the base first (QLoRA).
  // Generators over the same base share one loaded copy of it while any of them lives (the base
  // alone and one adapter over it: the Playground's "base vs tuned"); their replies take turns.
  static std::unique_ptr<TextGenerator> open(const std::string& model_dir, const std::string& adapter_dir = "",
                                             bool nf4 = false);
  // What a run (or one of its checkpoints) produced: its adapter over its base, or its full model.
  static std::unique_ptr<TextGenerator> open_run(const std::string& run_dir);
  ~TextGenerator();

  // The checkpoint's own chat template unless set_format names another ("auto", "checkpoint" or a family).
  const ChatTemplate& format() const;
  void set_format(const std::string& name);
  std::string description() const;  // "base", "lora adapter of <dir>", ...
  // The loaded model this generator answers with: equal for generators that share one.
  const void* model_identity() const;
  // The conversation as the model sees it, ready for the reply.
  std::string render(const std::vector<ChatMessage>& msgs) const;
  // A reply to the conversation (its last message is the user's), stopping at the end of the turn.
  GenerationOutput reply(const std::vector<ChatMessage>& msgs, const GenerationSettings& s,
                         const TextCallback& on_text = nullptr);

 private:
  TextGenerator();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone
