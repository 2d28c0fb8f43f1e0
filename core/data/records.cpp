// Dataset reading and validation. Keys follow what TRL and the common dataset formats use:
// Alpaca {instruction, input?, output, system?}; ShareGPT {conversations: [{from, value}]};
// messages {messages: [{role, content}]}; {prompt, completion}; preference {prompt?, chosen,
// rejected} with strings or message lists; raw text {text}; prompts {prompt} (or messages that end
// with a user turn, or a text file's lines).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/records.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/error.h"
#include "common/json_file.h"
#include "common/files.h"
#include "common/utf8.h"
#include "data/parquet.h"

namespace hone {
namespace {

using json = nlohmann::json;

struct FormatName {
  ExampleFormat f;
  const char* name;
};
constexpr FormatName kFormats[] = {{ExampleFormat::Auto, "auto"},
                                   {ExampleFormat::Alpaca, "alpaca"},
                                   {ExampleFormat::ShareGPT, "sharegpt"},
                                   {ExampleFormat::Messages, "messages"},
                                   {ExampleFormat::PromptCompletion, "prompt-completion"},
                                   {ExampleFormat::Preference, "preference"},
                                   {ExampleFormat::Text, "text"},
                                   {ExampleFormat::Candidates, "candidates"},
                                   {ExampleFormat::Choice, "choice"},
                                   {ExampleFormat::Prompts, "prompts"}};

// One source row before validation.
struct RawRow {
  std::string text;   // JSON text (JSONL/JSON) or "" when `obj` is already built (CSV, .txt)
  json obj;
  std::string where;
  bool have_obj = false;
  std::string bad;  // a problem found while reading (reported in row order with the others)
};

// Problems of one row; `bad` once an error is added.
struct RowCheck {
  std::string where;
  std::vector<Problem>* out;
  bool bad = false;
  void error(const std::string& field, const std::string& msg) {
    out->push_back({where, field, msg, true});
    bad = true;
  }
};

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 12: syntax error while
// parsing object - unexpected '}'; expected string literal" in plain words: where, then what.
std::string plain_json_error(const json::parse_error& e, bool with_line) {
  std::string m = e.what();
  std::string where;
  const size_t at = m.find(" at line ");
  const size_t colon = m.find(": ", at == std::string::npos ? 0 : at);
  if (at != std::string::npos && colon != std::string::npos) {
    where = m.substr(at + 4, colon - at - 4);  // "line 1, column 12"
    if (!with_line) {
      const size_t c = where.find("column");
      if (c != std::string::npos) where = where.substr(c);
    }
    m = m.substr(colon + 2);
  } else if (const size_t b = m.find("] "); b != std::string::npos) {
    m = m.substr(b + 2);
  }
  if (m.rfind("syntax error while parsing ", 0) == 0) {
    // "object key - unexpected '}'; expected string literal" -> "unexpected '}' in an object key;
    // expected string literal", with the usual cause named where there is one.
    m = m.substr(27);
    const size_t dash = m.find(" - ");
    if (dash != std::string::npos) {
      const std::string what = m.substr(0, dash), rest = m.substr(dash + 3);
      const size_t semi = rest.find("; ");
      const std::string unexpected = rest.substr(0, semi), expected = semi == std::string::npos ? "" : rest.substr(semi);
      m = unexpected + " in " + (what.rfind("object", 0) == 0 || what.rfind("array", 0) == 0 ? "an " : "a ") + what + expected;
      if (what == "object key" && unexpected.find("'}'") != std::string::npos) m += " (a comma before the closing brace?)";
    }
  }
  if (m.find("unexpected end of input") != std::string::npos) m = "the line ends before the JSON is complete (" + m + ")";
  return "malformed JSON" + (where.empty() ? std::string() : " at " + where) + ": " + m;
}

// The other way parsing fails: a number too large for a double ("1e999"), which nlohmann refuses
// with out_of_range.406 (Python would read it as infinity).
std::string plain_json_error(const json::exception& e, bool with_line) {
  if (const auto* p = dynamic_cast<const json::parse_error*>(&e)) return plain_json_error(*p, with_line);
  std::string m = e.what();
  if (const size_t q = m.find("number overflow parsing '"); q != std::string::npos)
    return "malformed JSON: the number " + m.substr(q + 25, m.size() - q - 26) + " is out of range";
  if (const size_t b = m.find("] "); b != std::string::npos) m = m.substr(b + 2);
  return "malformed JSON: " + m;
}

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

std::string lower_ext(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

bool data_file(const std::string& ext) {
  return ext == ".jsonl" || ext == ".json" || ext == ".csv" || ext == ".tsv" || ext == ".parquet";
}

bool supported(const std::string& ext) { return data_file(ext) || ext == ".txt" || ext == ".md"; }

using RowFn = std::function<void(RawRow&&)>;

// Parquet rows one row group at a time. A damaged file is a problem of that file (the rows before
// the damage have been handed on already; without --skip-invalid the import rolls them back).
void read_parquet_rows(const std::string& path, const RowFn& emit, std::vector<Problem>* problems) {
  try {
    ParquetReader pr(path);
    int64_t n = 0;
    pr.read_all([&](json& row) {
      RawRow r;
      r.where = path + ": row " + std::to_string(++n);
      r.obj = std::move(row);
      r.have_obj = true;
      emit(std::move(r));
      return true;
    });
  } catch (const Error& e) {
    std::string m = e.what();
    if (m.rfind(path + ": ", 0) == 0) m = m.substr(path.size() + 2);
    problems->push_back({path, "", m, true});
  }
}

int line_of(const std::string& data, size_t byte) {
  int line = 1;
  for (size_t i = 0; i < std::min(byte, data.size()); ++i) line += data[i] == '\n';
  return line;
}

// CSV/TSV per RFC 4180: quoted fields may hold the separator, doubled quotes and newlines.
// Each record remembers the line it starts on.
void read_delimited(const std::string& path, const std::string& data, char sep, std::vector<RawRow>* rows) {
  std::vector<std::vector<std::string>> recs;
  std::vector<int> rec_line;
  std::vector<std::string> cur;
  std::string field;
  bool quoted = false, any = false;
  int line = 1, start_line = 1;
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < data.size() && data[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = any = true;
    } else if (c == sep) {
      cur.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        cur.push_back(std::move(field));
        recs.push_back(std::move(cur));
        rec_line.push_back(start_line);
      }
      cur.clear();
      field.clear();
      any = false;
      start_line = ++line;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) {  // the records before it are still good; the open one is reported after them
  } else if (any || !field.empty()) {
    cur.push_back(std::move(field));
    recs.push_back(std::move(cur));
    rec_line.push_back(start_line);
  }
  const std::vector<std::string> header = recs.empty() ? std::vector<std::string>() : recs[0];
  for (size_t r = 1; r < recs.size(); ++r) {
    RawRow row;
    row.where = path + ":" + std::to_string(rec_line[r]);
    if (recs[r].size() != header.size()) {
      rows->push_back(std::move(row));
      rows->back().bad = "has " + std::to_string(recs[r].size()) + " fields, the header has " + std::to_string(header.size());
      continue;
    }
    row.obj = json::object();
    for (size_t k = 0; k < header.size(); ++k) {
      const std::string& v = recs[r][k];
      // Columns that hold message lists arrive as JSON text inside the cell.
      const std::string& h = header[k];
      if ((h == "messages" || h == "conversations" || h == "chosen" || h == "rejected" || h == "prompt") && !v.empty() &&
          (v[0] == '[' || v[0] == '{') && json_nesting(v) <= kMaxJsonNesting) {
        try {
          row.obj[h] = json::parse(v);
          continue;
        } catch (const json::exception&) {
        }
      }
      row.obj[h] = v;
    }
    row.have_obj = true;
    rows->push_back(std::move(row));
  }
  if (quoted) rows->push_back({{}, json(), path + ":" + std::to_string(start_line), false, "unterminated quoted field"});
}

void read_file_rows(const std::string& path, const ReadOptions& opt, const RowFn& emit, std::vector<Problem>* problems) {
  const std::string ext = lower_ext(path);
  if (ext == ".parquet") return read_parquet_rows(path, emit, problems);
  const std::string data = read_file(path);
  if (ext == ".txt" || ext == ".md") {
    size_t bad = 0;
    RawRow r;
    r.where = path + ":1";
    if (!utf8_valid(data, &bad)) {
      problems->push_back({path + ":" + std::to_string(line_of(data, bad)), "", "invalid UTF-8", true});
      return;
    }
    if (opt.format == ExampleFormat::Prompts) {  // one prompt per non-blank line
      int line = 0;
      size_t pos = 0;
      while (pos < data.size()) {
        size_t nl = data.find('\n', pos);
        if (nl == std::string::npos) nl = data.size();
        ++line;
        std::string l = data.substr(pos, nl - pos);
        if (!l.empty() && l.back() == '\r') l.pop_back();
        if (l.find_first_not_of(" \t") != std::string::npos) {
          RawRow p;
          p.where = path + ":" + std::to_string(line);
          p.obj = json{{"prompt", l}};
          p.have_obj = true;
          emit(std::move(p));
        }
        pos = nl + 1;
      }
      return;
    }
    r.obj = json{{"text", data}};
    r.have_obj = true;
    emit(std::move(r));
    return;
  }
  if (ext == ".csv" || ext == ".tsv") {
    size_t bad = 0;
    if (!utf8_valid(data, &bad)) {  // a CSV cannot be re-synchronised after bad bytes reliably
      problems->push_back({path + ":" + std::to_string(line_of(data, bad)), "", "invalid UTF-8", true});
      return;
    }
    std::vector<RawRow> rows;
    read_delimited(path, data, ext == ".tsv" ? '\t' : ',', &rows);
    for (auto& r : rows) emit(std::move(r));
    return;
  }
  size_t first = data.find_first_not_of(" \t\r\n");
  if (ext == ".json" && first != std::string::npos && data[first] == '[') {
    size_t bad = 0;
    if (!utf8_valid(data, &bad)) {
      problems->push_back({path + ":" + std::to_string(line_of(data, bad)), "", "invalid UTF-8", true});
      return;
    }
    if (json_nesting(data) > kMaxJsonNesting) {
      problems->push_back({path, "", "malformed JSON: nested more than " + std::to_string(kMaxJsonNesting) + " levels deep", true});
      return;
    }
    json arr;
    try {
      arr = json::parse(data);
    } catch (const json::exception& e) {
      const auto* pe = dynamic_cast<const json::parse_error*>(&e);  // it knows the byte; out_of_range does not
      problems->push_back({pe ? path + ":" + std::to_string(line_of(data, pe->byte)) : path, "", plain_json_error(e, false), true});
      return;
    }
    int i = 0;
    for (auto& el : arr) {
      RawRow r;
      r.where = path + ": element " + std::to_string(++i);
      r.obj = std::move(el);
      r.have_obj = true;
      emit(std::move(r));
    }
    return;
  }
  // JSONL (and a .json file holding one object per line): each line stands alone, so one bad line
  // is reported without losing the rest.
  int line = 0;
  size_t pos = 0;
  while (pos <= data.size()) {
    size_t nl = data.find('\n', pos);
    const size_t end = nl == std::string::npos ? data.size() : nl;
    ++line;
    std::string l = data.substr(pos, end - pos);
    if (l.find_first_not_of(" \t\r") != std::string::npos) {
      const std::string where = path + ":" + std::to_string(line);
      size_t bad = 0;
      RawRow r{{}, json(), where, false, {}};
      if (l.size() > opt.max_row_bytes)
        r.bad = "oversized row (" + std::to_string(l.size()) + " bytes, limit " + std::to_string(opt.max_row_bytes) + ")";
      else if (!utf8_valid(l, &bad))
        r.bad = "invalid UTF-8 at column " + std::to_string(bad + 1);
      else if (json_nesting(l) > kMaxJsonNesting)
        r.bad = "malformed JSON: nested more than " + std::to_string(kMaxJsonNesting) + " levels deep";
      else
        r.text = std::move(l);
      emit(std::move(r));
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
}

bool blank_value(const json& v) {
  return v.is_null() || (v.is_string() && v.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos);
}

ExampleFormat detect(const json& j) {
  if (!j.is_object()) return ExampleFormat::Auto;
  if (j.contains("messages")) {
    // A conversation that ends with the user's turn is a prompt waiting for an answer.
    const json& m = j["messages"];
    if (m.is_array() && !m.empty() && m.back().is_object() && m.back().value("role", "") == "user") return ExampleFormat::Prompts;
    return ExampleFormat::Messages;
  }
  if (j.contains("conversations")) return ExampleFormat::ShareGPT;
  if (j.contains("chosen") && j.contains("rejected")) return ExampleFormat::Preference;
  if (j.contains("responses")) return ExampleFormat::Candidates;
  if (j.contains("choices")) return ExampleFormat::Choice;
  if (j.contains("instruction") && j.contains("output")) return ExampleFormat::Alpaca;
  if (j.contains("prompt") && j.contains("completion") && !blank_value(j["completion"])) return ExampleFormat::PromptCompletion;
  if (j.contains("prompt")) return ExampleFormat::Prompts;  // no answer (or an empty one) yet
  if (j.contains("text")) return ExampleFormat::Text;
  return ExampleFormat::Auto;
}

// The detector's complaint, short enough for a problem list: the keys it found and what it knows.
std::string unknown_format_message(const json& j) {
  std::string found;
  int n = 0;
  if (j.is_object())
    for (auto it = j.begin(); it != j.end() && n < 4; ++it, ++n) found += (n ? ", " : "") + ("\"" + it.key() + "\"");
  if (j.is_object() && j.size() > 4) found += ", …";
  if (!j.is_object()) return "not a JSON object; each row must be {…} with known fields (messages, prompt, text, …)";
  return "no known fields (found " + (found.empty() ? std::string("none") : found) +
         "); expected messages, conversations, prompt, prompt/completion, instruction/output, chosen/rejected, "
         "prompt/responses, question/choices or text; map other names with --map or the Import dialog's field map";
}

std::string str(const json& j, const char* k, RowCheck& rc, bool required, const std::string& prefix = "") {
  const std::string field = prefix + k;
  if (!j.contains(k) || j[k].is_null()) {
    if (required) rc.error(field, "missing");
    return {};
  }
  if (!j[k].is_string()) {
    rc.error(field, "must be a string");
    return {};
  }
  return j[k].get<std::string>();
}

// A message list in OpenAI (role/content) or ShareGPT (from/value) form -> canonical messages.
json messages_of(const json& arr, bool sharegpt, const std::string& field, RowCheck& rc) {
  json out = json::array();
  if (!arr.is_array()) {
    rc.error(field, "must be a list of messages");
    return out;
  }
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "].";
    const auto& m = arr[i];
    if (!m.is_object()) {
      rc.error(field + "[" + std::to_string(i) + "]", "must be an object");
      continue;
    }
    std::string role = str(m, sharegpt ? "from" : "role", rc, true, f);
    const std::string content = str(m, sharegpt ? "value" : "content", rc, true, f);
    if (sharegpt) {
      if (role == "human" || role == "user") role = "user";
      else if (role == "gpt" || role == "assistant" || role == "model" || role == "chatgpt" || role == "bing") role = "assistant";
      else if (role == "system") role = "system";
      else if (!role.empty()) rc.error(f + "from", "unknown role \"" + role + "\"");
    } else if (role != "system" && role != "user" && role != "assistant" && !role.empty()) {
      rc.error(f + "role", "unknown role \"" + role + "\"");
    }
    json msg = {{"role", role}, {"content", content}};
    // Thinking held apart from the reply (Qwen3 / DeepSeek data): kept for the templates that read it.
    if (!sharegpt && m.contains("reasoning_content") && !m["reasoning_content"].is_null()) {
      if (role != "assistant") rc.error(f + "reasoning_content", "only an assistant message has reasoning_content");
      else msg["reasoning_content"] = str(m, "reasoning_content", rc, true, f);
    }
    out.push_back(std::move(msg));
  }
  return out;
}

void check_conversation(const json& msgs, const std::string& field, RowCheck& rc) {
  bool reply = false;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i]["role"] != "assistant") continue;
    reply = true;
    if (msgs[i]["content"].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos)
      rc.error(field + "[" + std::to_string(i) + "].content", "empty response");
  }
  if (!reply && !rc.bad) rc.error(field, "no assistant reply");
}

// A preference side (string or message list) in canonical form.
json side(const json& j, const char* k, RowCheck& rc) {
  if (!j.contains(k) || j[k].is_null()) {
    rc.error(k, "missing");
    return "";
  }
  if (j[k].is_string()) {
    if (j[k].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) rc.error(k, "empty response");
    return j[k];
  }
  json m = messages_of(j[k], false, k, rc);
  if (!rc.bad && m.empty()) rc.error(k, "empty response");
  return m;
}

json canonical(const json& j, ExampleFormat f, RowCheck& rc) {
  if (!j.is_object()) {
    rc.error("", "a row must be a JSON object");
    return {};
  }
  switch (f) {
    case ExampleFormat::Alpaca: {
      const std::string sys = str(j, "system", rc, false), ins = str(j, "instruction", rc, true);
      const std::string in = str(j, "input", rc, false), out = str(j, "output", rc, true);
      if (rc.bad) return {};
      if (out.find_first_not_of(" \t\r\n") == std::string::npos) rc.error("output", "empty response");
      json msgs = json::array();
      if (!sys.empty()) msgs.push_back({{"role", "system"}, {"content", sys}});
      msgs.push_back({{"role", "user"}, {"content", in.empty() ? ins : ins + "\n\n" + in}});
      msgs.push_back({{"role", "assistant"}, {"content", out}});
      return {{"messages", msgs}};
    }
    case ExampleFormat::PromptCompletion: {
      const std::string p = str(j, "prompt", rc, true), c = str(j, "completion", rc, true);
      if (rc.bad) return {};
      if (c.find_first_not_of(" \t\r\n") == std::string::npos) rc.error("completion", "empty response");
      return {{"messages", json::array({{{"role", "user"}, {"content", p}}, {{"role", "assistant"}, {"content", c}}})}};
    }
    case ExampleFormat::Messages:
    case ExampleFormat::ShareGPT: {
      const bool sg = f == ExampleFormat::ShareGPT;
      const char* k = sg ? "conversations" : "messages";
      if (!j.contains(k)) {
        rc.error(k, "missing");
        return {};
      }
      json msgs = messages_of(j[k], sg, k, rc);
      if (!rc.bad) check_conversation(msgs, k, rc);
      return {{"messages", msgs}};
    }
    case ExampleFormat::Preference: {
      json out = json::object();
      json chosen = side(j, "chosen", rc), rejected = side(j, "rejected", rc);
      if (j.contains("prompt") && !j["prompt"].is_null()) {
        if (j["prompt"].is_string()) out["prompt"] = j["prompt"];
        else out["prompt"] = messages_of(j["prompt"], false, "prompt", rc);
      } else if (chosen.is_array() && rejected.is_array()) {
        // TRL's implicit prompt: the shared leading messages of both conversations.
        size_t n = 0;
        while (n < chosen.size() && n < rejected.size() && chosen[n] == rejected[n]) ++n;
        out["prompt"] = json(chosen.begin(), chosen.begin() + static_cast<long>(n));
        chosen = json(chosen.begin() + static_cast<long>(n), chosen.end());
        rejected = json(rejected.begin() + static_cast<long>(n), rejected.end());
      } else {
        rc.error("prompt", "missing");
      }
      if (rc.bad) return {};
      if (chosen == rejected) rc.error("rejected", "chosen is identical to rejected");
      out["chosen"] = chosen;
      out["rejected"] = rejected;
      return out;
    }
    case ExampleFormat::Candidates: {
      // A prompt (text or messages) and 1-16 responses (text or messages) to choose between.
      json out = json::object();
      if (!j.contains("prompt") || j["prompt"].is_null()) rc.error("prompt", "missing");
      else if (j["prompt"].is_string()) out["prompt"] = j["prompt"];
      else out["prompt"] = messages_of(j["prompt"], false, "prompt", rc);
      for (const char* key : {"responses", "original_responses"}) {
        if (!j.contains(key)) {
          if (std::string(key) == "responses") rc.error(key, "missing");
          continue;
        }
        const json& rs = j[key];
        if (!rs.is_array() || rs.empty() || rs.size() > 16) {
          rc.error(key, "must be a list of 1 to 16 responses");
          continue;
        }
        json list = json::array();
        for (size_t i = 0; i < rs.size(); ++i) {
          const std::string f = std::string(key) + "[" + std::to_string(i) + "]";
          if (rs[i].is_string()) {
            if (rs[i].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) rc.error(f, "empty response");
            list.push_back(rs[i]);
          } else {
            list.push_back(messages_of(rs[i], false, f, rc));
          }
        }
        out[key] = list;
      }
      if (!rc.bad && out.contains("original_responses") && out["original_responses"].size() != out["responses"].size())
        rc.error("original_responses", "must have as many entries as responses");
      if (j.contains("sources")) {  // which model wrote each response (two-source candidates)
        const json& s = j["sources"];
        bool ok = s.is_array() && out.contains("responses") && s.size() == out["responses"].size();
        for (size_t i = 0; ok && i < s.size(); ++i) ok = s[i].is_string();
        if (!ok) rc.error("sources", "must be one name per response");
        else out["sources"] = s;
      }
      return out;
    }
    case ExampleFormat::Choice: {
      // A question, 2-26 non-empty choices and the right one as a 0-based index or a letter (A = 0).
      json out = json::object();
      out["question"] = str(j, "question", rc, true);
      if (!rc.bad && out["question"].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos)
        rc.error("question", "empty question");
      const std::string ctx = str(j, "context", rc, false);
      if (!ctx.empty()) out["context"] = ctx;
      if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].size() < 2 || j["choices"].size() > 26) {
        rc.error("choices", "must be a list of 2 to 26 choices");
        return out;
      }
      json list = json::array();
      for (size_t i = 0; i < j["choices"].size(); ++i) {
        const auto& c = j["choices"][i];
        const std::string f = "choices[" + std::to_string(i) + "]";
        if (!c.is_string()) rc.error(f, "must be a string");
        else if (c.get<std::string>().empty()) rc.error(f, "empty choice");
        else list.push_back(c);
      }
      out["choices"] = list;
      const int64_t n = static_cast<int64_t>(j["choices"].size());
      int64_t answer = -1;
      if (!j.contains("answer") || j["answer"].is_null()) {
        rc.error("answer", "missing");
      } else if (j["answer"].is_number_integer()) {
        answer = j["answer"].get<int64_t>();
        if (answer < 0 || answer >= n) rc.error("answer", "index " + std::to_string(answer) + " is not one of the " + std::to_string(n) + " choices (0-based)");
      } else if (j["answer"].is_string() && j["answer"].get<std::string>().size() == 1 &&
                 std::isalpha(static_cast<unsigned char>(j["answer"].get<std::string>()[0]))) {
        answer = std::toupper(static_cast<unsigned char>(j["answer"].get<std::string>()[0])) - 'A';
        if (answer >= n) rc.error("answer", "letter " + j["answer"].get<std::string>() + " is past the last of the " + std::to_string(n) + " choices");
      } else {
        rc.error("answer", "must be a choice's 0-based index or its letter (A, B, ...)");
      }
      out["answer"] = answer;
      return out;
    }
    case ExampleFormat::Prompts: {
      // {"prompt": text or messages} or {"messages": [... ending with a user turn]}; an empty
      // "completion" may ride along (files of prompts made for other tools carry one).
      json p;
      const char* field = j.contains("prompt") ? "prompt" : "messages";
      if (!j.contains(field) || j[field].is_null()) {
        rc.error("prompt", "missing");
        return {};
      }
      if (j.contains("completion") && !blank_value(j["completion"]))
        rc.error("completion", "a prompts dataset holds questions only (import rows with answers as a chat dataset)");
      if (j[field].is_string()) {
        p = j[field];
        if (blank_value(p)) rc.error(field, "empty prompt");
      } else {
        p = messages_of(j[field], false, field, rc);
        if (!rc.bad && p.empty()) rc.error(field, "empty prompt");
        else if (!rc.bad && p.back()["role"] != "user")
          rc.error(field, "the last message must be the user's (the turn a response answers)");
      }
      return {{"prompt", p}};
    }
    case ExampleFormat::Text: {
      const std::string t = str(j, "text", rc, true);
      if (!rc.bad && t.find_first_not_of(" \t\r\n") == std::string::npos) rc.error("text", "empty text");
      return {{"text", t}};
    }
    case ExampleFormat::Auto: break;
  }
  rc.error("", "cannot tell the format");
  return {};
}

}  // namespace

std::string Problem::text() const { return where + ": " + (field.empty() ? "" : field + ": ") + message; }

const char* dataset_kind_name(DatasetKind k) {
  switch (k) {
    case DatasetKind::Chat: return "chat";
    case DatasetKind::Preference: return "preference";
    case DatasetKind::Text: return "text";
    case DatasetKind::Candidates: return "candidates";
    case DatasetKind::Choice: return "choice";
    case DatasetKind::Prompts: return "prompts";
  }
  return "?";
}

bool dataset_kind_from_name(const std::string& s, DatasetKind* out) {
  for (DatasetKind k : {DatasetKind::Chat, DatasetKind::Preference, DatasetKind::Text, DatasetKind::Candidates, DatasetKind::Choice,
                        DatasetKind::Prompts})
    if (s == dataset_kind_name(k) || (s == "instruction" && k == DatasetKind::Chat)) {
      *out = k;
      return true;
    }
  return false;
}

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

DatasetKind kind_of(ExampleFormat f) {
  if (f == ExampleFormat::Preference) return DatasetKind::Preference;
  if (f == ExampleFormat::Text) return DatasetKind::Text;
  if (f == ExampleFormat::Candidates) return DatasetKind::Candidates;
  if (f == ExampleFormat::Choice) return DatasetKind::Choice;
  if (f == ExampleFormat::Prompts) return DatasetKind::Prompts;
  return DatasetKind::Chat;
}

std::vector<std::pair<std::string, std::string>> parse_field_map(const std::string& s) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw Error("field map: \"" + item + "\" is not SOURCE=TARGET (e.g. question=instruction)");
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

namespace {

// Duplicate detection keeps two independent 64-bit hashes of each canonical row (a false match
// needs both to collide) and where the row was, packed: file index, how its place is spelled and
// its number. A row costs about 50 bytes here rather than its whole text.
struct RowKey {
  uint64_t a, b;
  bool operator==(const RowKey& o) const { return a == o.a && b == o.b; }
};
struct RowKeyHash {
  size_t operator()(const RowKey& k) const noexcept { return static_cast<size_t>(k.a); }
};

RowKey row_key(const std::string& s) {
  uint64_t fnv = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) fnv = (fnv ^ c) * 1099511628211ull;
  return {fnv, static_cast<uint64_t>(std::hash<std::string>()(s))};
}

const char* const kPlaceSpelling[] = {":", ": element ", ": row "};

// "file:12", "file: element 3", "file: row 7" -> one integer (0 when the place has another form).
uint64_t pack_place(const std::string& where, const std::string& file, size_t file_index) {
  if (where.compare(0, file.size(), file) != 0 || file_index >= (1u << 20)) return 0;
  for (uint64_t style = 3; style-- > 0;) {
    const std::string sp = kPlaceSpelling[style];
    if (where.compare(file.size(), sp.size(), sp) != 0) continue;
    const std::string num = where.substr(file.size() + sp.size());
    if (num.empty() || num.size() > 12 || num.find_first_not_of("0123456789") != std::string::npos) return 0;
    return (static_cast<uint64_t>(file_index) << 44) | (style << 42) | std::stoull(num);
  }
  return 0;
}

std::string unpack_place(uint64_t p, const std::vector<std::string>& files) {
  return files[p >> 44] + kPlaceSpelling[(p >> 42) & 3] + std::to_string(p & ((1ull << 42) - 1));
}

}  // namespace

ReadResult read_dataset_stream(const std::string& path, const ReadOptions& opt, const RecordSink& sink) {
  ReadResult res;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    bool have_data = false;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != std::filesystem::end(it);
         it.increment(ec))
      if (it->is_regular_file() && supported(lower_ext(it->path().string()))) {
        res.files.push_back(it->path().string());
        have_data = have_data || data_file(lower_ext(res.files.back()));
      }
    // A downloaded dataset repository keeps a README.md (the dataset card) beside its data files:
    // a card is not a row. A folder of only .md/.txt files is still read as text documents.
    if (have_data)
      res.files.erase(std::remove_if(res.files.begin(), res.files.end(), [](const std::string& f) { return lower_ext(f) == ".md"; }),
                      res.files.end());
    std::sort(res.files.begin(), res.files.end());
    if (res.files.empty()) throw file_error(path, "no .jsonl, .json, .parquet, .csv, .tsv, .txt or .md files in this folder");
  } else {
    if (!file_exists(path)) throw file_error(path, "no such file");
    if (!supported(lower_ext(path)))
      throw file_error(path, "unsupported file type (expected .jsonl, .json, .parquet, .csv, .tsv, .txt or .md)");
    res.files.push_back(path);
  }
  ExampleFormat fmt = opt.format;
  std::unordered_map<RowKey, uint64_t, RowKeyHash> seen;  // canonical row -> packed place first seen
  std::unordered_map<RowKey, std::string, RowKeyHash> seen_odd;  // ... for places that do not pack
  for (size_t fi = 0; fi < res.files.size(); ++fi) {
    const std::string& file = res.files[fi];
    read_file_rows(file, opt, [&](RawRow&& r) {
      ++res.rows_read;
      RowCheck rc{r.where, &res.problems};
      if (!r.bad.empty()) {
        rc.error("", r.bad);
        return;
      }
      if (!r.have_obj) {
        try {
          r.obj = json::parse(r.text);
        } catch (const json::exception& e) {
          rc.error("", plain_json_error(e, false));
          return;
        }
      }
      if (!opt.field_map.empty() && r.obj.is_object()) {
        json mapped = json::object();
        for (auto& [k, v] : r.obj.items()) {
          std::string key = k;
          for (const auto& [from, to] : opt.field_map)
            if (k == from) key = to;
          mapped[key] = std::move(v);
        }
        r.obj = std::move(mapped);
      }
      if (fmt == ExampleFormat::Auto) {
        fmt = detect(r.obj);
        if (fmt == ExampleFormat::Auto) {
          rc.error("", unknown_format_message(r.obj));
          return;
        }
      }
      json c = canonical(r.obj, fmt, rc);
      if (rc.bad) return;
      std::string data = c.dump();
      const RowKey key = row_key(data);
      const uint64_t place = pack_place(r.where, file, fi);
      std::string first;
      if (place) {
        auto [it, fresh] = seen.emplace(key, place);
        if (!fresh) first = unpack_place(it->second, res.files);
        else if (seen_odd.count(key)) first = seen_odd[key];
      } else {
        auto [it, fresh] = seen_odd.emplace(key, r.where);
        if (!fresh) first = it->second;
        else if (auto s = seen.find(key); s != seen.end()) first = unpack_place(s->second, res.files);
      }
      if (!first.empty()) {
        res.problems.push_back({r.where, "", "duplicate of " + first, false});
        ++res.duplicates;
      }
      sink({std::move(data), std::move(r.where)}, fmt);
    }, &res.problems);
  }
  // Errors found while reading files (bad UTF-8, malformed arrays) count as well.
  res.errors = 0;
  for (const auto& p : res.problems) res.errors += p.error;
  res.format = fmt;
  res.kind = kind_of(fmt);
  return res;
}

ReadResult read_dataset(const std::string& path, const ReadOptions& opt) {
  std::vector<Record> records;
  ReadResult res = read_dataset_stream(path, opt, [&](Record&& r, ExampleFormat) { records.push_back(std::move(r)); });
  res.records = std::move(records);
  return res;
}

std::string json_problem(const std::string& text, const std::string& fallback) {
  if (json_nesting(text) > kMaxJsonNesting) return "malformed JSON: nested more than " + std::to_string(kMaxJsonNesting) + " levels deep";
  try {
    (void)json::parse(text);
  } catch (const json::exception& e) {
    return plain_json_error(e, true);
  }
  return fallback;
}

std::vector<ChatMessage> record_messages(const std::string& canonical_json) {
  json j = json::parse(canonical_json);
  std::vector<ChatMessage> out;
  for (const auto& m : j.at("messages")) {
    ChatMessage cm{m.at("role").get<std::string>(), m.at("content").get<std::string>(), std::nullopt};
    if (m.contains("reasoning_content")) cm.reasoning_content = m["reasoning_content"].get<std::string>();
    out.push_back(std::move(cm));
  }
  return out;
}

std::vector<Problem> validate_record(DatasetKind kind, const std::string& text, std::string* out) {
  std::vector<Problem> problems;
  RowCheck rc{"row", &problems};
  json j;
  if (json_nesting(text) > kMaxJsonNesting) {
    rc.error("", "malformed JSON: nested more than " + std::to_string(kMaxJsonNesting) + " levels deep");
    return problems;
  }
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    rc.error("", plain_json_error(e, true));
    return problems;
  }
  ExampleFormat f = kind == DatasetKind::Preference   ? ExampleFormat::Preference
                    : kind == DatasetKind::Text       ? ExampleFormat::Text
                    : kind == DatasetKind::Candidates ? ExampleFormat::Candidates
                    : kind == DatasetKind::Choice     ? ExampleFormat::Choice
                    : kind == DatasetKind::Prompts    ? ExampleFormat::Prompts
                                                      : ExampleFormat::Messages;
  json c = canonical(j, f, rc);
  if (!rc.bad && out) *out = c.dump();
  return problems;
}

}  // namespace hone
