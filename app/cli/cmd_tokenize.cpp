// hone-cli tokenize: token ids of a text, as one JSON object on stdout; hone-cli template: a
// conversation rendered with a model's chat template, with its ids and assistant mask.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hone::cli {

const char* const kTemplateUsage = R"(usage: hone-cli template --model DIR --messages FILE.json [--add-generation-prompt] [--tools FILE.json]
                         [--template auto|checkpoint|NAME] [--thinking template|keep_final] [--var KEY=JSON ...]
                         [--json]

  --model DIR        folder with the tokenizer files (tokenizer_config.json's chat_template or chat_template.jinja)
  --messages F       a JSON array of messages: {"role": ..., "content": ...} plus any fields the template
                     reads (tool_calls, reasoning_content, ...)
  --tools F          a JSON array of tool (function) schemas, passed as `tools`
  --template NAME    auto (default: the checkpoint's own template, run as Jinja), checkpoint, or a family:
                     llama3, chatml, mistral, llama2, zephyr, gemma, phi3, alpaca, raw
  --thinking M       template (default): exactly what the template renders (DeepSeek-R1's drops each
                     reply's <think>...</think>); keep_final: the final reply written whole after the
                     generation prompt, thinking kept, as the run config's "thinking": "keep_final" trains
  --var KEY=JSON     an extra template variable, e.g. --var enable_thinking=false
  --json             {"template", "text", "ids", "assistant_mask"} (the mask: 1 on the tokens of each
                     assistant reply as the template printed it, and its end-of-turn token; null when
                     messages carry more than role, text content and reasoning_content, or tools or
                     --var are given)
Prints the rendered text otherwise.
)";

const char* const kTokenizeUsage = R"(usage: hone-cli tokenize --tokenizer DIR (--text T | --text-file F) [--add-special] [--offsets]

  --tokenizer DIR  folder with tokenizer.json (preferred) or tokenizer.model, and tokenizer_config.json
  --text T         the text; or --text-file F to read it from a file (bytes as they are)
  --add-special    add what the tokenizer's own config adds (e.g. BOS)
  --offsets        also print each token's byte range in the text
Prints {"ids":[...]} on stdout.
)";


int cmd_tokenize(const Args& a) {
  auto tok = load_tokenizer(a.require("tokenizer"));
  auto enc = tok->encode(text_argument(a), a.flag("add-special"));
  nlohmann::json j = {{"ids", enc.ids}};
  if (a.flag("offsets")) j["offsets"] = enc.offsets;
  std::cout << j.dump() << "\n";
  return 0;
}


int cmd_template(const Args& a) {
  const std::string dir = a.require("model"), mfile = a.require("messages");
  auto tok = load_tokenizer(dir);
  ChatTemplate t = resolve_chat_template(tok->config(), a.get("template", "auto"));
  const std::string thinking = a.get("thinking", "template");
  if (thinking != "template" && thinking != "keep_final") throw Error("--thinking must be template or keep_final");
  t.keep_final_thinking = thinking == "keep_final";
  auto parse = [](const std::string& path) {
    try {
      return nlohmann::ordered_json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ": not valid JSON (" + e.what() + ")");
    }
  };
  const nlohmann::ordered_json messages = parse(mfile);
  const nlohmann::ordered_json tools = a.has("tools") ? parse(a.get("tools")) : nlohmann::ordered_json();
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  for (const auto& kv : a.all("var")) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--var " + kv + ": expected KEY=JSON");
    try {
      extra[kv.substr(0, eq)] = nlohmann::ordered_json::parse(kv.substr(eq + 1));
    } catch (const nlohmann::json::exception&) {
      extra[kv.substr(0, eq)] = kv.substr(eq + 1);  // a bare word is a string
    }
  }
  const bool gen = a.flag("add-generation-prompt");
  std::string text;
  try {
    text = render_chat_json(t, messages, gen, tools, extra);
  } catch (const Error& e) {
    throw Error(mfile + ": " + e.what());
  }
  if (!a.flag("json")) {
    std::cout << text;
    if (text.empty() || text.back() != '\n') std::cout << "\n";
    return 0;
  }
  // The mask needs the form training data has: role and text content (and an assistant's
  // reasoning_content).
  bool plain = tools.is_null() && extra.empty();
  std::vector<ChatMessage> msgs;
  for (const auto& m : messages) {
    const bool reasoning = m.contains("reasoning_content") && m["reasoning_content"].is_string();
    plain = plain && m.size() == (reasoning ? 3u : 2u) && m.contains("content") && m["content"].is_string();
    if (!plain) continue;
    msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>(), std::nullopt});
    if (reasoning) msgs.back().reasoning_content = m["reasoning_content"].get<std::string>();
  }
  if (t.keep_final_thinking && plain) text = render_chat(t, msgs, gen).text;
  nlohmann::ordered_json j = {{"template", t.name()}, {"family", chat_format_name(t.family)}, {"text", text}};
  if (plain) {
    ChatTokens ct = tokenize_chat(*tok, t, msgs, gen);
    j["ids"] = ct.ids;
    j["assistant_mask"] = ct.assistant_mask;
  } else {
    j["ids"] = tok->encode(text, false).ids;
    j["assistant_mask"] = nullptr;
  }
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace hone::cli
