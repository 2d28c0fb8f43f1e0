// Values of the chat-template Jinja engine (tokenizer/jinja.h) with Python's semantics where a
// template's output depends on them: str() and repr() of None/bools/floats/lists/dicts, truthiness,
// equality, and json.dumps as transformers' `tojson` calls it. Dicts keep insertion order.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace hone::jinja {

class Value;
using List = std::vector<Value>;
// A double as int64 the way int() truncates it, saturated at the ends of int64 (Python's ints have
// none) and 0 for NaN: a plain cast of 1e300 is undefined behaviour.
int64_t int_of(double d);
struct Dict;
struct Args;
using Func = std::function<Value(Args&)>;

class Value {
 public:
  enum Kind { Undefined, None, Bool, Int, Float, String, ListK, DictK, FuncK };
  Value() = default;  // undefined
  static Value none() { Value v; v.k_ = None; return v; }
  static Value undefined(std::string name = {}) { Value v; v.s_ = std::move(name); return v; }
  Value(bool b) : k_(Bool), i_(b) {}
  Value(int i) : k_(Int), i_(i) {}
  Value(int64_t i) : k_(Int), i_(i) {}
  Value(double d) : k_(Float), f64_(d) {}
  Value(std::string s) : k_(String), s_(std::move(s)) {}
  Value(const char* s) : k_(String), s_(s) {}
  Value(List l) : k_(ListK), l_(std::make_shared<List>(std::move(l))) {}
  Value(std::shared_ptr<Dict> d);
  static Value func(Func f, std::string name);
  static Value tuple(List l) { Value v(std::move(l)); v.tuple_ = true; return v; }  // prints as (a, b)

  Kind kind() const { return k_; }
  bool is_undefined() const { return k_ == Undefined; }
  bool is_none() const { return k_ == None; }
  bool is_string() const { return k_ == String; }
  bool is_number() const { return k_ == Int || k_ == Float || k_ == Bool; }
  bool is_list() const { return k_ == ListK; }
  bool is_dict() const { return k_ == DictK; }
  bool is_func() const { return k_ == FuncK; }
  bool is_tuple() const { return k_ == ListK && tuple_; }
  bool truthy() const;

  const std::string& str() const { return s_; }    // String (or an undefined value's name)
  int64_t integer() const { return k_ == Float ? int_of(f64_) : i_; }
  double number() const { return k_ == Float ? f64_ : static_cast<double>(i_); }
  const List& list() const { return *l_; }
  Dict& dict() const { return *d_; }
  std::shared_ptr<Dict> dict_ptr() const { return d_; }
  const Func& fn() const { return *f_; }
  const std::string& fn_name() const { return s_; }

  // Python's str(): what {{ x }} prints ("" for undefined).
  std::string to_str() const;
  // Python's repr(): how a value prints inside a printed list or dict.
  std::string repr() const;
  std::string type_name() const;  // for error messages ("str", "list", ...)

 private:
  Kind k_ = Undefined;
  int64_t i_ = 0;
  double f64_ = 0;
  std::string s_;
  std::shared_ptr<List> l_;
  std::shared_ptr<Dict> d_;
  std::shared_ptr<Func> f_;
  bool tuple_ = false;
};

// An insertion-ordered mapping with string keys (what JSON messages and tools are). A namespace()
// is a Dict whose attributes a template may set.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;
  const Value* find(const std::string& k) const;
  void set(const std::string& k, Value v);
};

// Positional and keyword arguments of a call.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // The argument at position i or named `name`, else `def`.
  Value get(size_t i, const std::string& name, Value def = Value()) const;
};

bool equal(const Value& a, const Value& b);

// Python's float repr (shortest text that reads back to the same double: 1.0, 0.1, 1e-05, 1e+16).
std::string python_float(double d);
// Python's repr of a str: single quotes unless the text has ' and no ".
std::string python_str_repr(const std::string& s);
// json.dumps(v, ensure_ascii=False, indent=indent, separators=default, sort_keys=False); indent < 0: none.
std::string to_json(const Value& v, int indent = -1);
Value from_json(const nlohmann::ordered_json& j);

// UTF-8 text as code points and back (Python's str indexes and slices code points).
std::u32string utf8_to_u32(const std::string& s);
std::string u32_to_utf8(const std::u32string& s);

}  // namespace hone::jinja
