// Example readers. Keys follow what TRL and the common dataset formats use:
// Alpaca {instruction, input, output, system?}; ShareGPT {conversations: [{from, value}]};
// messages {messages: [{role, content}]}; {prompt, completion}; {text}.
#include "data/examples.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/utf8.h"

namespace hone {
namespace {

struct FormatName {
  ExampleFormat f;
  const char* name;
};
constexpr FormatName kFormats[] = {{ExampleFormat::Auto, "auto"},         {ExampleFormat::Alpaca, "alpaca"},
                                   {ExampleFormat::ShareGPT, "sharegpt"}, {ExampleFormat::Messages, "messages"},
                                   {ExampleFormat::PromptCompletion, "prompt-completion"}, {ExampleFormat::Text, "text"}};

std::string str_field(const nlohmann::json& j, const char* k, const std::string& where, bool required) {
  if (!j.contains(k) || j[k].is_null()) {
    if (required) throw Error(where + ": missing field \"" + k + "\"");
    return {};
  }
  if (!j[k].is_string()) throw Error(where + ": field \"" + k + "\" must be a string");
  return j[k];
}

ExampleFormat detect(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": a row must be a JSON object");
  if (j.contains("messages")) return ExampleFormat::Messages;
  if (j.contains("conversations")) return ExampleFormat::ShareGPT;
  if (j.contains("instruction") && j.contains("output")) return ExampleFormat::Alpaca;
  if (j.contains("prompt") && j.contains("completion")) return ExampleFormat::PromptCompletion;
  if (j.contains("text")) return ExampleFormat::Text;
  throw Error(where + ": cannot tell the format from the keys (expected messages, conversations, instruction/output, "
                      "prompt/completion or text)");
}

std::string sharegpt_role(const std::string& from, const std::string& where) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant" || from == "model") return "assistant";
  if (from == "system") return "system";
  throw Error(where + ": unknown role \"" + from + "\" in conversations");
}

Conversation to_conversation(const nlohmann::json& j, ExampleFormat f, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": a row must be a JSON object");
  Conversation c;
  c.source = where;
  switch (f) {
    case ExampleFormat::Alpaca: {
      std::string sys = str_field(j, "system", where, false);
      std::string ins = str_field(j, "instruction", where, true), in = str_field(j, "input", where, false);
      if (!sys.empty()) c.messages.push_back({"system", sys});
      c.messages.push_back({"user", in.empty() ? ins : ins + "\n\n" + in});
      c.messages.push_back({"assistant", str_field(j, "output", where, true)});
      break;
    }
    case ExampleFormat::PromptCompletion:
      c.messages.push_back({"user", str_field(j, "prompt", where, true)});
      c.messages.push_back({"assistant", str_field(j, "completion", where, true)});
      break;
    case ExampleFormat::Messages:
    case ExampleFormat::ShareGPT: {
      const bool sg = f == ExampleFormat::ShareGPT;
      const auto& arr = j[sg ? "conversations" : "messages"];
      if (!arr.is_array()) throw Error(where + ": \"" + (sg ? "conversations" : "messages") + "\" must be a list");
      for (const auto& m : arr) {
        if (!m.is_object()) throw Error(where + ": each message must be an object");
        std::string role = sg ? sharegpt_role(str_field(m, "from", where, true), where) : str_field(m, "role", where, true);
        if (role != "system" && role != "user" && role != "assistant") throw Error(where + ": unknown role \"" + role + "\"");
        c.messages.push_back({role, str_field(m, sg ? "value" : "content", where, true)});
      }
      break;
    }
    default:
      throw Error(where + ": raw text rows are not instruction data (use the continued pre-training recipe)");
  }
  bool has_reply = false;
  for (const auto& m : c.messages) has_reply = has_reply || (m.role == "assistant" && !m.content.empty());
  if (!has_reply) throw Error(where + ": no non-empty assistant reply");
  return c;
}

nlohmann::json parse_row(const JsonRow& row, const std::string& where) {
  try {
    return nlohmann::json::parse(row.text);
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": malformed JSON");
  }
}

}  // namespace

const char* example_format_name(ExampleFormat f) {
  for (const auto& n : kFormats)
    if (n.f == f) return n.name;
  return "?";
}

bool example_format_from_name(const std::string& s, ExampleFormat* out) {
  for (const auto& n : kFormats)
    if (s == n.name) {
      *out = n.f;
      return true;
    }
  return false;
}

std::vector<JsonRow> read_json_rows(const std::string& path) {
  const std::string data = read_file(path);
  size_t bad = 0;
  if (!utf8_valid(data, &bad)) {
    int line = 1;
    for (size_t i = 0; i < bad; ++i) line += data[i] == '\n';
    throw Error(path + ":" + std::to_string(line) + ": invalid UTF-8");
  }
  std::vector<JsonRow> rows;
  size_t first = data.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && data[first] == '[') {  // a JSON array
    nlohmann::json arr;
    try {
      arr = nlohmann::json::parse(data);
    } catch (const nlohmann::json::parse_error& e) {
      int line = 1;
      for (size_t i = 0; i < std::min<size_t>(e.byte, data.size()); ++i) line += data[i] == '\n';
      throw Error(path + ":" + std::to_string(line) + ": malformed JSON");
    }
    int i = 0;
    for (const auto& r : arr) rows.push_back({r.dump(), ++i});  // "line" = element index for arrays
    return rows;
  }
  int line = 0;
  size_t pos = 0;
  while (pos <= data.size()) {
    size_t nl = data.find('\n', pos);
    std::string l = data.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    ++line;
    if (l.find_first_not_of(" \t\r") != std::string::npos) rows.push_back({l, line});
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return rows;
}

std::vector<Conversation> read_conversations(const std::string& path, ExampleFormat f) {
  std::vector<Conversation> out;
  for (const auto& row : read_json_rows(path)) {
    const std::string where = path + ":" + std::to_string(row.line);
    nlohmann::json j = parse_row(row, where);
    ExampleFormat rf = f == ExampleFormat::Auto ? detect(j, where) : f;
    if (f == ExampleFormat::Auto && !out.empty() && rf == ExampleFormat::Text)
      throw Error(where + ": row is raw text in an instruction file");
    out.push_back(to_conversation(j, rf, where));
  }
  if (out.empty()) throw Error(path + ": no examples");
  return out;
}

std::vector<std::string> read_documents(const std::string& path) {
  auto ends = [&](const char* s) {
    std::string e = s;
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".txt") || ends(".md")) {
    std::string t = read_file(path);
    size_t bad = 0;
    if (!utf8_valid(t, &bad)) throw Error(path + ": invalid UTF-8 at byte " + std::to_string(bad));
    return {t};
  }
  std::vector<std::string> docs;
  for (const auto& row : read_json_rows(path)) {
    const std::string where = path + ":" + std::to_string(row.line);
    nlohmann::json j = parse_row(row, where);
    if (!j.is_object()) throw Error(where + ": a row must be a JSON object");
    docs.push_back(str_field(j, "text", where, true));
  }
  if (docs.empty()) throw Error(path + ": no documents");
  return docs;
}

}  // namespace hone
