// Dataset files read into canonical records, with every problem collected (not thrown) so that an
// import can report all of them with file, line and field. Formats: JSONL, JSON arrays, CSV/TSV,
// .txt/.md, or a folder of those; rows as Alpaca, ShareGPT, OpenAI messages, prompt/completion,
// preference pairs (TRL's string and conversational forms), raw text, candidates (a prompt and
// the responses a labeller chooses between: {"prompt", "responses": [...]}), or multiple-choice
// questions for evaluation ({"question", "choices": [...], "answer": index or letter, "context"?}),
// or prompts to sample candidates for ({"prompt"} alone, messages ending with a user turn, or one
// prompt per line of a text file read as the prompts format).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_template.h"

namespace hone {

// Candidates: a prompt with responses to choose between (unlabelled pairs, for labelling).
// Choice: multiple-choice questions, an evaluation suite (core/train/eval_suite.h).
// Prompts: questions without answers, to sample candidate responses for labelling.
enum class DatasetKind { Chat, Preference, Text, Candidates, Choice, Prompts };
const char* dataset_kind_name(DatasetKind k);
bool dataset_kind_from_name(const std::string& s, DatasetKind* out);

enum class ExampleFormat { Auto, Alpaca, ShareGPT, Messages, PromptCompletion, Preference, Text, Candidates, Choice, Prompts };
const char* example_format_name(ExampleFormat f);
bool example_format_from_name(const std::string& s, ExampleFormat* out);
DatasetKind kind_of(ExampleFormat f);

struct Problem {
  std::string where;    // "file:line" (JSON arrays: "file: element N")
  std::string field;    // "" when the whole row is affected
  std::string message;
  bool error = true;    // false: a warning (duplicates)
  std::string text() const;  // "where: field: message"
};

struct Record {
  // canonical JSON: {"messages":[...]}, {"prompt","chosen","rejected"}, {"text"} or
  // {"prompt","responses":[...]} (+ "original_responses" once a labeller edited one) or
  // {"question","choices":[...],"answer":index} (+ "context"; a letter answer is stored as its index)
  // or {"prompt"} (a string or a message list ending with a user turn)
  std::string data;
  std::string source;  // "file:line"
};

struct ReadOptions {
  ExampleFormat format = ExampleFormat::Auto;
  std::vector<std::pair<std::string, std::string>> field_map;  // source column -> expected name
  size_t max_row_bytes = 16u << 20;
};

struct ReadResult {
  DatasetKind kind = DatasetKind::Chat;
  ExampleFormat format = ExampleFormat::Auto;
  std::vector<Record> records;    // the valid rows, in file order
  std::vector<Problem> problems;  // errors and warnings, in file order
  int64_t rows_read = 0;
  int64_t errors = 0, duplicates = 0;
  std::vector<std::string> files;
};

// Reads a file or a folder (recursively, sorted by name; in a folder with data files, .md files such
// as a hub dataset's README.md are left out). Only an unreadable path throws. Parquet rows are
// named "file.parquet: row N" (1-based), as JSON arrays name "file: element N".
ReadResult read_dataset(const std::string& path, const ReadOptions& opt = {});

// read_dataset that hands each valid record to `sink` as soon as it is checked, with the format
// the rows were found to be in, instead of collecting them (ReadResult::records stays empty), so
// memory holds one Parquet row group (or one text file) at a time plus a 16-byte hash per row for
// duplicate detection. `sink` may throw to stop reading.
using RecordSink = std::function<void(Record&& record, ExampleFormat format)>;
ReadResult read_dataset_stream(const std::string& path, const ReadOptions& opt, const RecordSink& sink);

// Parses "a=b,c=d" into a field map; throws on a malformed entry.
std::vector<std::pair<std::string, std::string>> parse_field_map(const std::string& s);

// What is wrong with a piece of JSON text in plain words ("malformed JSON at line 2, column 14:
// unexpected '}'; expected string literal"), or `fallback` when it parses.
std::string json_problem(const std::string& text, const std::string& fallback = "");

// Canonical record -> conversation for training and export (chat kind only).
std::vector<ChatMessage> record_messages(const std::string& canonical_json);
// Validates an edited canonical row of a given kind; returns the problems (empty when valid) and
// writes the re-serialised canonical JSON to *canonical.
std::vector<Problem> validate_record(DatasetKind kind, const std::string& json, std::string* canonical);

}  // namespace hone
