// The chat-template Jinja engine (see jinja.h): a template is lexed (jinja_lexer), parsed into a
// syntax tree (jinja_parser, jinja_ast.h) and rendered by walking it (jinja_render, with the
// filters, tests and methods in jinja_builtins) with transformers' globals.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/jinja.h"

#include <ctime>

#include "common/error.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_render.h"

namespace hone::jinja {

Template::Template(const std::string& source, std::string name) : name_(std::move(name)) {
  // jinja2 reads "\r\n" and "\r" as "\n" and drops one newline at the very end
  // (keep_trailing_newline is off in transformers' environment).
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  root_ = parse_template(lex_template(src, name_), name_, &has_generation_);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

RenderResult Template::render(const Dict& vars, std::time_t now, const Limits& limits) const {
  Renderer r{name_, limits, now ? now : std::time(nullptr), {}, nullptr, nullptr, {}, 0, 0, {}};
  struct Release {
    Renderer& r;
    ~Release() { r.release(); }
  } release{r};
  auto globals = r.new_writable();
  globals->set("raise_exception", Value::func(
                                      [](Args& a) -> Value {
                                        throw Error("the template raised an error: " + a.get(0, "message").to_str());
                                      },
                                      "raise_exception"));
  const std::time_t t = r.now;
  globals->set("strftime_now", Value::func(
                                   [t](Args& a) {
                                     std::tm tm{};
                                     localtime_r(&t, &tm);
                                     char buf[256];
                                     const size_t len = std::strftime(buf, sizeof buf, a.get(0, "format").to_str().c_str(), &tm);
                                     return Value(std::string(buf, len));
                                   },
                                   "strftime_now"));
  globals->set("namespace", Value::func(
                                [&r](Args& a) {
                                  auto d = r.new_writable();
                                  d->is_namespace = true;
                                  for (const auto& p : a.pos)
                                    if (p.is_dict())
                                      for (const auto& kv : p.dict().items) d->set(kv.first, kv.second);
                                  for (const auto& [k, v] : a.kw) d->set(k, v);
                                  return Value(d);
                                },
                                "namespace"));
  globals->set("range", Value::func(
                            [limits](Args& a) {
                              int64_t start = 0, stop = 0, step = 1;
                              if (a.pos.size() == 1) stop = a.pos[0].integer();
                              else if (a.pos.size() >= 2) start = a.pos[0].integer(), stop = a.pos[1].integer();
                              if (a.pos.size() >= 3) step = a.pos[2].integer();
                              if (step == 0) throw Error("range() step must not be zero");
                              List l;
                              for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
                                if (static_cast<int64_t>(l.size()) >= limits.max_iterations) throw Error("range() is too long");
                                l.emplace_back(i);
                                if (__builtin_add_overflow(i, step, &i)) break;  // past either end of int64
                              }
                              return Value(l);
                            },
                            "range"));
  globals->set("dict", Value::func(
                           [](Args& a) {
                             auto d = std::make_shared<Dict>();
                             for (const auto& [k, v] : a.kw) d->set(k, v);
                             return Value(d);
                           },
                           "dict"));
  r.scopes.push_back(globals);
  auto caller_vars = r.new_writable();
  *caller_vars = vars;
  r.scopes.push_back(caller_vars);
  r.scopes.push_back(r.new_writable());  // the template's own top-level variables
  RenderResult res;
  r.out = &res.text;
  r.root_out = &res.text;
  r.exec(*root_);
  res.generation_spans = std::move(r.spans);
  return res;
}


}  // namespace hone::jinja
