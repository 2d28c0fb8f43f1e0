// Training examples read from JSONL / JSON files: conversations (Alpaca, ShareGPT, OpenAI
// messages, prompt/completion) for instruction tuning and raw text for continued pre-training.
// The format is detected per file; every problem names the file and line.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace hone {

enum class ExampleFormat { Auto, Alpaca, ShareGPT, Messages, PromptCompletion, Text };

const char* example_format_name(ExampleFormat f);
bool example_format_from_name(const std::string& s, ExampleFormat* out);

struct Conversation {
  std::vector<ChatMessage> messages;
  std::string source;  // "file:line" for error messages
};

// Rows of a .jsonl (one object a line) or .json (array of objects) file.
struct JsonRow {
  std::string text;  // the raw JSON
  int line;
};
std::vector<JsonRow> read_json_rows(const std::string& path);

// Instruction data as conversations; format Auto detects it from the first row's keys.
std::vector<Conversation> read_conversations(const std::string& path, ExampleFormat f = ExampleFormat::Auto);
// Raw text: .txt/.md files are one document each; .jsonl rows give their "text" field.
std::vector<std::string> read_documents(const std::string& path);

}  // namespace hone
