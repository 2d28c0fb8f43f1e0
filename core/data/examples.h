// Training examples for the recipes: conversations for instruction tuning and documents for
// continued pre-training, read through the dataset reader (data/records.h). The first problem in a
// file stops the run before any training, naming the file, line and field.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

#include "data/records.h"
#include "tokenizer/chat_template.h"

namespace hone {

struct Conversation {
  std::vector<ChatMessage> messages;
  std::string source;  // "file:line" for error messages
};

// Instruction data as conversations; format Auto detects it from the first row's keys.
std::vector<Conversation> read_conversations(const std::string& path, ExampleFormat f = ExampleFormat::Auto);
// Raw text: .txt/.md files are one document each; .jsonl rows give their "text" field.
std::vector<std::string> read_documents(const std::string& path);

}  // namespace hone
