// Fuzzes chat templates (core/tokenizer/jinja*.cpp, chat_template.cpp): the Jinja lexer and parser
// on the template text, then a rendering with a fixed conversation (tools, a tool call, thinking)
// under small limits, so that a template that loops or recurses for ever ends in an error.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <memory>

#include "fuzz_support.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"

namespace {

using hone::jinja::Dict;
using hone::jinja::List;
using hone::jinja::Value;

std::shared_ptr<Dict> message(const char* role, const char* content) {
  auto d = std::make_shared<Dict>();
  d->set("role", Value(role));
  d->set("content", Value(content));
  return d;
}

Dict variables() {
  List msgs;
  msgs.emplace_back(message("system", "You are terse."));
  msgs.emplace_back(message("user", "What is 2+2? <b>{{ not a tag }}</b>"));
  auto call = message("assistant", "");
  auto fn = std::make_shared<Dict>();
  fn->set("name", Value("add"));
  auto args = std::make_shared<Dict>();
  args->set("a", Value(int64_t{2}));
  args->set("b", Value(2.5));
  fn->set("arguments", Value(args));
  auto tc = std::make_shared<Dict>();
  tc->set("type", Value("function"));
  tc->set("function", Value(fn));
  call->set("tool_calls", Value(List{Value(tc)}));
  msgs.emplace_back(call);
  msgs.emplace_back(message("tool", "4.5"));
  auto reply = message("assistant", "<think>\nadd them\n</think>\n\n4 ");
  reply->set("reasoning_content", Value("add them"));
  msgs.emplace_back(reply);
  msgs.emplace_back(message("user", "Ünïcödé 你好 👍🏽"));
  Dict v;
  v.set("messages", Value(std::move(msgs)));
  v.set("add_generation_prompt", Value(true));
  v.set("bos_token", Value("<s>"));
  v.set("eos_token", Value("</s>"));
  auto tool = std::make_shared<Dict>();
  tool->set("type", Value("function"));
  tool->set("function", Value(fn));
  v.set("tools", Value(List{Value(tool)}));
  v.set("documents", Value::none());
  v.set("enable_thinking", Value(false));
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source = hone::fuzz::as_string(data, size);
  static const Dict vars = variables();
  hone::jinja::Limits limits;
  limits.max_output = 1 << 20;
  limits.max_iterations = 100000;
  limits.max_depth = 50;
  hone::fuzz::expect_errors_only([&] {
    const hone::jinja::Template t(source, "fuzz template");
    volatile size_t n = t.render(vars, 1733400000, limits).text.size();
    (void)n;
  });
  // What the family detection and the stop tokens make of the same text (no parsing).
  hone::TokenizerConfig cfg;
  cfg.chat_template = source;
  volatile size_t n = hone::end_of_turn_tokens(hone::family_chat_template(cfg), "</s>").size();
  (void)n;
  return 0;
}
