// The Jinja engine's renderer: walks the syntax tree with scopes, loop state and macros, and
// writes the output (jinja_render.cpp); the filters, tests and Python str/dict methods templates
// call are in jinja_builtins.cpp. Internal to the engine (tokenizer/jinja.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_ast.h"

namespace hone::jinja {

enum class Flow { Normal, Break, Continue };

struct Renderer {
  const std::string& tname;
  const Limits& limits;
  std::time_t now;
  std::vector<std::shared_ptr<Dict>> scopes;  // [0]: globals and the caller's variables
  std::string* out = nullptr;
  std::string* root_out = nullptr;
  std::vector<std::pair<size_t, size_t>> spans;
  int64_t iterations = 0;
  int depth = 0;
  // Every Dict a template can write into after making it (scopes, macro locals, namespaces). A
  // macro stored in a scope holds that scope (and a namespace may hold itself): reference cycles
  // that outlive the render unless release() empties these dicts at its end.
  std::vector<std::weak_ptr<Dict>> writable;

  std::shared_ptr<Dict> new_writable();
  void release();

  [[noreturn]] void fail(const Node& n, const std::string& msg) const { fail_at(tname, n.line, n.col, msg); }
  void write(const std::string& s, const Node& n);
  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v) { scopes.back()->set(name, std::move(v)); }
  std::string undefined_msg(const Value& v) const;
  // ---- statements
  Flow exec(const Node& n);
  std::string capture(const Node& body);
  template <class F>
  void unpack(const Node& n, const std::vector<std::string>& names, const Value& v, F&& put) {
    std::vector<Value> items = iterate(v, n);
    if (items.size() != names.size())
      fail(n, "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(names.size()) + " names");
    for (size_t i = 0; i < names.size(); ++i) put(names[i], items[i]);
  }
  // The items a for loop visits: a list's items, a dict's keys, a string's characters.
  std::vector<Value> iterate(const Value& v, const Node& n);
  Flow exec_for(const Node& n);
  void bind_target(const Node& n, const Value& item);
  // A macro (or a call block's caller) as a function value. Its body sees the template's top-level
  // variables and its own parameters.
  Value make_macro(const Node& def, const Node* body);
  // ---- expressions
  Args eval_args(const Node& call, size_t first = 1);
  Value invoke(const Value& fn, Args& args, const Node& at);
  Value eval(const Node& n);
  static int64_t py_floordiv(int64_t a, int64_t b);
  // a op b for op in + - * (Python's) / (floor division) and % (C's), failing on overflow.
  int64_t checked(int64_t a, int64_t b, char op, const Node& n) const;
  Value binary(const std::string& op, const Value& l, const Value& r, const Node& n);
  bool contains(const Value& hay, const Value& needle, const Node& n);
  int order(const Value& l, const Value& r, const Node& n);
  bool compare(const std::string& op, const Value& l, const Value& r, const Node& n);
  // Python's slice indices for a sequence of length len.
  static std::vector<int64_t> slice_indices(int64_t len, const Value& a, const Value& b, const Value& c);
  Value slice(const Value& v, const Node& n);
  Value get_item(const Value& v, const Value& key, const Node& n);
  // jinja2's getattr: a Python attribute (a str or dict method) first, then the item.
  Value get_attr(const Value& v, const std::string& name, const Node& n);
  static std::string strip_chars(const std::string& s, const Value& chars, bool left, bool right);
  static List split(const std::string& s, const Value& sep, int64_t maxsplit);
  // Throws when the result would pass `max` bytes (a replacement can multiply a string's size).
  static std::string replace_all(std::string s, const std::string& from, const std::string& to, int64_t count, size_t max);
  // Fails when a string a template builds (joined, concatenated) passes the output limit: the
  // memory goes before anything is written.
  void check_size(size_t bytes, const Node& n) const {
    if (bytes > limits.max_output) fail(n, "a string of " + std::to_string(bytes) + " bytes exceeds the output limit");
  }
  static std::string title_case(const std::string& s);
  static std::string lower(const std::string& s);
  static std::string upper(const std::string& s);
  static std::string capitalize(const std::string& s);
  static bool starts_or_ends(const std::string& s, const Value& what, bool start);
  Value str_method(const std::string& s, const std::string& name);
  static List dict_items(const Value& d);
  Value dict_method(const Value& d, const std::string& name);
  // ---- filters
  Value attr_path(const Value& v, const std::string& path, const Node& n);
  Value get_item_soft(const Value& v, const std::string& k, const Node& n);
  Value apply_filter_chain(const Node& f, const Value& text);
  Value apply_filter(const Node& n, const Value& v);
  std::vector<Value> seq(const Value& v, const Node& n) { return iterate(v, n); }
  bool run_test(const std::string& name, const Value& v, const std::vector<Value>& args, const Node& n);
  bool apply_test(const Node& n);
  Value filter(const std::string& f, const Value& v, Args& a, const Node& n);
};

}  // namespace hone::jinja
