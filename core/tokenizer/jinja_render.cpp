// The Jinja engine's renderer (see jinja_render.h): statements, expressions, operators, item and
// attribute access, macros and calls.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/jinja_render.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "common/error.h"

namespace hone::jinja {

void Renderer::write(const std::string& s, const Node& n) {
  out->append(s);
  if (out->size() > limits.max_output) fail(n, "the rendering exceeds " + std::to_string(limits.max_output) + " bytes");
}

Value Renderer::lookup(const std::string& name) const {
  for (auto it = scopes.rbegin(); it != scopes.rend(); ++it)
    if (const Value* v = (*it)->find(name)) return *v;
  return Value::undefined(name);
}

std::string Renderer::undefined_msg(const Value& v) const {
  return v.str().empty() ? "a value is undefined" : "'" + v.str() + "' is undefined";
}

// ---- statements
Flow Renderer::exec(const Node& n) {
  switch (n.k) {
    case Node::Body:
      for (const auto& s : n.a) {
        Flow f = exec(*s);
        if (f != Flow::Normal) return f;
      }
      return Flow::Normal;
    case Node::Text: write(n.s, n); return Flow::Normal;
    case Node::Output: write(eval(*n.a[0]).to_str(), n); return Flow::Normal;
    case Node::If: {
      if (eval(*n.a[0]).truthy()) return exec(*n.a[1]);
      if (!n.b.empty()) return exec(*n.b[0]);
      return Flow::Normal;
    }
    case Node::For: return exec_for(n);
    case Node::Set: {
      Value v = eval(*n.a[0]);
      if (n.names.size() == 1) assign(n.names[0], v);
      else unpack(n, n.names, v, [&](const std::string& k, Value x) { assign(k, std::move(x)); });
      return Flow::Normal;
    }
    case Node::SetAttr: {
      Value ns = lookup(n.names[0]);
      if (!ns.is_dict() || !ns.dict().is_namespace)
        fail(n, "cannot set attribute '" + n.names[1] + "' on '" + n.names[0] + "': it is not a namespace()");
      ns.dict().set(n.names[1], eval(*n.a[0]));
      return Flow::Normal;
    }
    case Node::SetBlock: assign(n.names[0], Value(capture(*n.a[0]))); return Flow::Normal;
    case Node::Macro: assign(n.s, make_macro(n, nullptr)); return Flow::Normal;
    case Node::CallBlock: {
      const Node& call = *n.cond;
      Value caller = make_macro(*n.b[0], n.a[0].get());
      Value fn = eval(*call.a[0]);
      Args args = eval_args(call);
      args.kw.emplace_back("caller", caller);
      write(invoke(fn, args, call).to_str(), n);
      return Flow::Normal;
    }
    case Node::FilterBlock: {
      Value text(capture(*n.a[0]));
      write(apply_filter_chain(*n.cond, text).to_str(), n);
      return Flow::Normal;
    }
    case Node::Generation: {
      const bool top = out == root_out;
      const size_t start = out->size();
      Flow f = exec(*n.a[0]);
      if (top) spans.emplace_back(start, out->size());
      return f;
    }
    case Node::Break: return Flow::Break;
    case Node::Continue: return Flow::Continue;
    default: write(eval(n).to_str(), n); return Flow::Normal;
  }
}

std::shared_ptr<Dict> Renderer::new_writable() {
  auto d = std::make_shared<Dict>();
  if (writable.size() >= 1024 && writable.size() == writable.capacity())  // drop the dead before growing
    writable.erase(std::remove_if(writable.begin(), writable.end(), [](const std::weak_ptr<Dict>& w) { return w.expired(); }),
                   writable.end());
  writable.push_back(d);
  return d;
}

void Renderer::release() {
  // Taken out first: clearing one dict may free others whose entries are still listed.
  std::vector<std::shared_ptr<Dict>> alive;
  for (const auto& w : writable)
    if (auto d = w.lock()) alive.push_back(std::move(d));
  writable.clear();
  for (auto& d : alive) d->items.clear();
}

std::string Renderer::capture(const Node& body) {
  std::string buf;
  std::string* saved = out;
  out = &buf;
  try {
    exec(body);
  } catch (...) {
    out = saved;
    throw;
  }
  out = saved;
  return buf;
}

// The items a for loop visits: a list's items, a dict's keys, a string's characters.
std::vector<Value> Renderer::iterate(const Value& v, const Node& n) {
  switch (v.kind()) {
    case Value::Undefined: return {};
    case Value::ListK: return v.list();
    case Value::DictK: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict().items) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::String: {
      std::vector<Value> chars;
      for (char32_t c : utf8_to_u32(v.str())) chars.emplace_back(u32_to_utf8(std::u32string(1, c)));
      return chars;
    }
    default: fail(n, "'" + v.type_name() + "' object is not iterable");
  }
}

Flow Renderer::exec_for(const Node& n) {
  std::vector<Value> items = iterate(eval(*n.a[0]), *n.a[0]);
  // The filter runs before the loop variable's counters are set, as in jinja2.
  if (n.cond) {
    std::vector<Value> kept;
    for (const auto& it : items) {
      scopes.push_back(new_writable());
      bind_target(n, it);
      const bool ok = eval(*n.cond).truthy();
      scopes.pop_back();
      if (ok) kept.push_back(it);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    if (!n.b.empty()) return exec(*n.b[0]);
    return Flow::Normal;
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < len; ++i) {
    if (++iterations > limits.max_iterations)
      fail(n, "more than " + std::to_string(limits.max_iterations) + " loop iterations and macro calls");
    auto scope = new_writable();
    scopes.push_back(scope);
    bind_target(n, items[static_cast<size_t>(i)]);
    auto loop = std::make_shared<Dict>();
    loop->set("index", Value(i + 1));
    loop->set("index0", Value(i));
    loop->set("revindex", Value(len - i));
    loop->set("revindex0", Value(len - i - 1));
    loop->set("first", Value(i == 0));
    loop->set("last", Value(i == len - 1));
    loop->set("length", Value(len));
    loop->set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("loop.previtem"));
    loop->set("nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value::undefined("loop.nextitem"));
    loop->set("depth", Value(int64_t{1}));  // depth counts recursive loops, which are not supported
    loop->set("depth0", Value(int64_t{0}));
    loop->set("cycle", Value::func(
                           [i](Args& a) {
                             if (a.pos.empty()) throw Error("loop.cycle() needs at least one value");
                             return a.pos[static_cast<size_t>(i) % a.pos.size()];
                           },
                           "loop.cycle"));
    scope->set("loop", Value(loop));
    Flow f;
    try {
      f = exec(*n.a[1]);
    } catch (...) {
      scopes.pop_back();
      throw;
    }
    scopes.pop_back();
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

void Renderer::bind_target(const Node& n, const Value& item) {
  if (n.names.size() == 1) assign(n.names[0], item);
  else unpack(n, n.names, item, [&](const std::string& k, Value x) { assign(k, std::move(x)); });
}

// A macro (or a call block's caller) as a function value. Its body sees the template's top-level
// variables and its own parameters.
Value Renderer::make_macro(const Node& def, const Node* body) {
  const Node* d = &def;
  const Node* b = body ? body : def.a[0].get();
  const std::string name = body ? "caller" : def.s;
  // A macro sees the globals, the caller's variables and the template's top-level ones; a call
  // block's caller also sees the scope it was written in.
  std::vector<std::shared_ptr<Dict>> closure =
      body ? scopes : std::vector<std::shared_ptr<Dict>>(scopes.begin(), scopes.begin() + std::min<size_t>(scopes.size(), 3));
  return Value::func(
      [this, d, b, name, closure](Args& args) -> Value {
        if (depth + 1 > limits.max_depth) fail(*d, "macros nest deeper than " + std::to_string(limits.max_depth) + " calls");
        // Calls count with loop iterations: a macro that calls itself twice runs 2^depth times.
        if (++iterations > limits.max_iterations)
          fail(*d, "more than " + std::to_string(limits.max_iterations) + " loop iterations and macro calls");
        auto local = new_writable();
        std::vector<std::shared_ptr<Dict>> saved = closure;
        saved.push_back(local);
        std::swap(scopes, saved);  // saved now holds the calling scopes
        ++depth;
        struct Restore {
          Renderer* r;
          std::vector<std::shared_ptr<Dict>>* saved;
          ~Restore() { std::swap(r->scopes, *saved), --r->depth; }
        } restore{this, &saved};
        size_t used = 0;
        for (size_t i = 0; i < d->names.size(); ++i) {
          Value v = args.get(i, d->names[i]);
          if (i < args.pos.size()) ++used;
          if (v.is_undefined() && d->b.size() > i && d->b[i]) v = eval(*d->b[i]);
          local->set(d->names[i], v);
        }
        List varargs(args.pos.begin() + static_cast<std::ptrdiff_t>(std::min(used, args.pos.size())), args.pos.end());
        auto kwargs = std::make_shared<Dict>();
        for (const auto& [k, v] : args.kw) {
          if (std::find(d->names.begin(), d->names.end(), k) != d->names.end()) continue;
          if (k == "caller") local->set("caller", v);
          else kwargs->set(k, v);
        }
        local->set("varargs", Value::tuple(varargs));
        local->set("kwargs", Value(kwargs));
        return Value(capture(*b));
      },
      name);
}

// ---- expressions
Args Renderer::eval_args(const Node& call, size_t first) {
  Args a;
  for (size_t i = first; i < call.a.size(); ++i) a.pos.push_back(eval(*call.a[i]));
  for (const auto& [k, v] : call.kw) a.kw.emplace_back(k, eval(*v));
  return a;
}

Value Renderer::invoke(const Value& fn, Args& args, const Node& at) {
  if (fn.is_undefined()) fail(at, undefined_msg(fn) + " (called as a function)");
  if (!fn.is_func()) fail(at, "'" + fn.type_name() + "' object is not callable");
  try {
    return fn.fn()(args);
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.rfind(tname + " line ", 0) == 0) throw;  // already placed
    fail(at, m);
  }
}

Value Renderer::eval(const Node& n) {
  switch (n.k) {
    case Node::Lit: return n.lit;
    case Node::Name: return lookup(n.s);
    case Node::ListE: {
      List l;
      for (const auto& e : n.a) l.push_back(eval(*e));
      return n.negate ? Value::tuple(std::move(l)) : Value(std::move(l));
    }
    case Node::DictE: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < n.a.size(); i += 2) {
        Value k = eval(*n.a[i]);
        if (!k.is_string()) fail(*n.a[i], "dict keys must be strings here");
        d->set(k.str(), eval(*n.a[i + 1]));
      }
      return Value(d);
    }
    case Node::Attr: return get_attr(eval(*n.a[0]), n.s, n);
    case Node::Item: return get_item(eval(*n.a[0]), eval(*n.a[1]), n);
    case Node::Slice: return slice(eval(*n.a[0]), n);
    case Node::Call: {
      Value fn = eval(*n.a[0]);
      Args args = eval_args(n);
      return invoke(fn, args, n);
    }
    case Node::Filter: return apply_filter(n, eval(*n.a[0]));
    case Node::Test: {
      const bool r = apply_test(n);
      return Value(n.negate ? !r : r);
    }
    case Node::Neg: {
      Value v = eval(*n.a[0]);
      if (v.kind() == Value::Int || v.kind() == Value::Bool) return Value(checked(0, v.integer(), '-', n));
      if (v.kind() == Value::Float) return Value(-v.number());
      fail(n, "bad operand type for unary -: '" + v.type_name() + "'");
    }
    case Node::Pos: return eval(*n.a[0]);
    case Node::Not: return Value(!eval(*n.a[0]).truthy());
    case Node::And: {
      Value l = eval(*n.a[0]);
      return l.truthy() ? eval(*n.a[1]) : l;
    }
    case Node::Or: {
      Value l = eval(*n.a[0]);
      return l.truthy() ? l : eval(*n.a[1]);
    }
    case Node::Bin: return binary(n.s, eval(*n.a[0]), eval(*n.a[1]), n);
    case Node::Compare: {
      Value l = eval(*n.a[0]);
      for (size_t i = 0; i < n.names.size(); ++i) {
        Value r = eval(*n.a[i + 1]);
        if (!compare(n.names[i], l, r, n)) return Value(false);
        l = r;
      }
      return Value(true);
    }
    case Node::Cond: {
      if (eval(*n.a[1]).truthy()) return eval(*n.a[0]);
      return n.a[2] ? eval(*n.a[2]) : Value::undefined();
    }
    default: fail(n, "a statement where an expression was expected");
  }
}

int64_t Renderer::py_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Python's ints do not overflow; int64 does, and that is undefined behaviour in C++. A template
// that leaves int64 fails instead (no chat template needs numbers that large).
int64_t Renderer::checked(int64_t a, int64_t b, char op, const Node& n) const {
  int64_t r = 0;
  const bool over = op == '+'   ? __builtin_add_overflow(a, b, &r)
                    : op == '-' ? __builtin_sub_overflow(a, b, &r)
                    : op == '*' ? __builtin_mul_overflow(a, b, &r)
                                : (b == -1 && a == std::numeric_limits<int64_t>::min());  // '/' and '%'
  if (over) fail(n, "integer overflow: the result is beyond 64 bits");
  if (op == '/') return py_floordiv(a, b);
  if (op == '%') return a % b;
  return r;
}

Value Renderer::binary(const std::string& op, const Value& l, const Value& r, const Node& n) {
  if (op == "~") {
    std::string a = l.to_str(), b = r.to_str();
    check_size(a.size() + b.size(), n);
    return Value(a + b);
  }
  if (l.is_undefined() || r.is_undefined()) fail(n, undefined_msg(l.is_undefined() ? l : r));
  const bool ints = (l.kind() == Value::Int || l.kind() == Value::Bool) && (r.kind() == Value::Int || r.kind() == Value::Bool);
  if (op == "+") {
    if (l.is_string() && r.is_string()) {
      check_size(l.str().size() + r.str().size(), n);
      return Value(l.str() + r.str());
    }
    if (l.is_list() && r.is_list()) {
      if (static_cast<int64_t>(l.list().size() + r.list().size()) > limits.max_iterations)
        fail(n, "a list of more than " + std::to_string(limits.max_iterations) + " items (the iteration limit)");
      List x = l.list();
      x.insert(x.end(), r.list().begin(), r.list().end());
      return Value(std::move(x));
    }
    if (l.is_number() && r.is_number()) return ints ? Value(checked(l.integer(), r.integer(), '+', n)) : Value(l.number() + r.number());
  } else if (op == "-") {
    if (l.is_number() && r.is_number()) return ints ? Value(checked(l.integer(), r.integer(), '-', n)) : Value(l.number() - r.number());
  } else if (op == "*") {
    if (l.is_number() && r.is_number()) return ints ? Value(checked(l.integer(), r.integer(), '*', n)) : Value(l.number() * r.number());
    const Value* s = l.is_string() ? &l : r.is_string() ? &r : nullptr;
    const Value* k = l.is_string() ? &r : &l;
    if (s && (k->kind() == Value::Int || k->kind() == Value::Bool)) {
      if (k->integer() > 0 && !s->str().empty() && static_cast<uint64_t>(k->integer()) > limits.max_output / s->str().size())
        fail(n, "the repeated string exceeds the output limit");
      std::string o;
      for (int64_t i = 0; i < k->integer(); ++i) o += s->str();
      return Value(o);
    }
  } else if (op == "/") {
    if (l.is_number() && r.is_number()) {
      if (r.number() == 0) fail(n, "division by zero");
      return Value(l.number() / r.number());
    }
  } else if (op == "//") {
    if (l.is_number() && r.is_number()) {
      if (r.number() == 0) fail(n, "division by zero");
      return ints ? Value(checked(l.integer(), r.integer(), '/', n)) : Value(std::floor(l.number() / r.number()));
    }
  } else if (op == "%") {
    if (l.is_number() && r.is_number()) {
      if (r.number() == 0) fail(n, "modulo by zero");
      if (ints) {
        int64_t m = checked(l.integer(), r.integer(), '%', n);
        if (m != 0 && ((m < 0) != (r.integer() < 0))) m += r.integer();
        return Value(m);
      }
      double m = std::fmod(l.number(), r.number());
      if (m != 0 && ((m < 0) != (r.number() < 0))) m += r.number();
      return Value(m);
    }
  } else if (op == "**") {
    if (l.is_number() && r.is_number()) {
      if (ints && r.integer() >= 0) {
        const int64_t base = l.integer(), e = r.integer();
        int64_t x = 1;
        if (base == 0 || base == 1 || base == -1) x = base == 0 ? (e == 0 ? 1 : 0) : base == 1 ? 1 : (e % 2 ? -1 : 1);
        else
          for (int64_t i = 0; i < e; ++i) x = checked(x, base, '*', n);  // |base| >= 2 leaves int64 within 63 steps
        return Value(x);
      }
      return Value(std::pow(l.number(), r.number()));
    }
  }
  fail(n, "unsupported operand types for " + op + ": '" + l.type_name() + "' and '" + r.type_name() + "'");
}

bool Renderer::contains(const Value& hay, const Value& needle, const Node& n) {
  switch (hay.kind()) {
    case Value::String:
      if (!needle.is_string()) fail(n, "'in <string>' requires a string on the left");
      return hay.str().find(needle.str()) != std::string::npos;
    case Value::ListK:
      for (const auto& x : hay.list())
        if (equal(x, needle)) return true;
      return false;
    case Value::DictK: return needle.is_string() && hay.dict().find(needle.str()) != nullptr;
    case Value::Undefined: return false;
    default: fail(n, "argument of type '" + hay.type_name() + "' is not iterable");
  }
}

int Renderer::order(const Value& l, const Value& r, const Node& n) {
  if (l.is_number() && r.is_number()) return l.number() < r.number() ? -1 : l.number() > r.number() ? 1 : 0;
  if (l.is_string() && r.is_string()) return l.str().compare(r.str()) < 0 ? -1 : l.str() == r.str() ? 0 : 1;
  if (l.is_list() && r.is_list()) {
    for (size_t i = 0; i < std::min(l.list().size(), r.list().size()); ++i) {
      const int c = order(l.list()[i], r.list()[i], n);
      if (c) return c;
    }
    return l.list().size() < r.list().size() ? -1 : l.list().size() > r.list().size() ? 1 : 0;
  }
  fail(n, "'<' is not supported between '" + l.type_name() + "' and '" + r.type_name() + "'");
}

bool Renderer::compare(const std::string& op, const Value& l, const Value& r, const Node& n) {
  if (op == "==") return equal(l, r);
  if (op == "!=") return !equal(l, r);
  if (op == "in") return contains(r, l, n);
  if (op == "notin") return !contains(r, l, n);
  const int c = order(l, r, n);
  if (op == "<") return c < 0;
  if (op == ">") return c > 0;
  if (op == "<=") return c <= 0;
  return c >= 0;
}

// Python's slice indices for a sequence of length len.
std::vector<int64_t> Renderer::slice_indices(int64_t len, const Value& a, const Value& b, const Value& c) {
  const int64_t step = c.is_undefined() || c.is_none() ? 1 : c.integer();
  if (step == 0) throw Error("slice step cannot be zero");
  auto norm = [&](const Value& v, int64_t def) {
    if (v.is_undefined() || v.is_none()) return def;
    int64_t x = v.integer();
    if (x < 0) x += len;
    if (step > 0) return std::clamp<int64_t>(x, 0, len);
    return std::clamp<int64_t>(x, -1, len - 1);
  };
  const int64_t start = norm(a, step > 0 ? 0 : len - 1), stop = norm(b, step > 0 ? len : -1);
  std::vector<int64_t> idx;
  for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
    idx.push_back(i);
    if (__builtin_add_overflow(i, step, &i)) break;  // past either end
  }
  return idx;
}

Value Renderer::slice(const Value& v, const Node& n) {
  Value parts[3];
  for (int i = 0; i < 3; ++i)
    if (n.a[static_cast<size_t>(i) + 1]) parts[i] = eval(*n.a[static_cast<size_t>(i) + 1]);
  try {
    if (v.is_list()) {
      List out;
      for (int64_t i : slice_indices(static_cast<int64_t>(v.list().size()), parts[0], parts[1], parts[2]))
        out.push_back(v.list()[static_cast<size_t>(i)]);
      return Value(std::move(out));
    }
    if (v.is_string()) {
      const std::u32string u = utf8_to_u32(v.str());
      std::u32string out;
      for (int64_t i : slice_indices(static_cast<int64_t>(u.size()), parts[0], parts[1], parts[2])) out += u[static_cast<size_t>(i)];
      return Value(u32_to_utf8(out));
    }
  } catch (const Error& e) {
    fail(n, e.what());
  }
  if (v.is_undefined()) fail(n, undefined_msg(v));
  fail(n, "'" + v.type_name() + "' object is not subscriptable");
}

Value Renderer::get_item(const Value& v, const Value& key, const Node& n) {
  switch (v.kind()) {
    case Value::DictK:
      if (key.is_string()) {
        if (const Value* x = v.dict().find(key.str())) return *x;
        return Value::undefined(key.str());
      }
      return Value::undefined();
    case Value::ListK: {
      if (!(key.kind() == Value::Int || key.kind() == Value::Bool)) {
        if (key.is_string()) return get_attr(v, key.str(), n);
        fail(n, "list indices must be integers, not " + key.type_name());
      }
      int64_t i = key.integer();
      const int64_t len = static_cast<int64_t>(v.list().size());
      if (i < 0) i += len;
      if (i < 0 || i >= len) return Value::undefined("list index " + std::to_string(key.integer()));
      return v.list()[static_cast<size_t>(i)];
    }
    case Value::String: {
      if (key.is_string()) return get_attr(v, key.str(), n);
      const std::u32string u = utf8_to_u32(v.str());
      int64_t i = key.integer();
      const int64_t len = static_cast<int64_t>(u.size());
      if (i < 0) i += len;
      if (i < 0 || i >= len) return Value::undefined("string index " + std::to_string(key.integer()));
      return Value(u32_to_utf8(std::u32string(1, u[static_cast<size_t>(i)])));
    }
    case Value::Undefined: fail(n, undefined_msg(v));
    default: return Value::undefined();
  }
}

// jinja2's getattr: a Python attribute (a str or dict method) first, then the item.
Value Renderer::get_attr(const Value& v, const std::string& name, const Node& n) {
  if (v.is_undefined()) fail(n, undefined_msg(v) + " (reading '." + name + "')");
  if (v.is_string()) {
    Value m = str_method(v.str(), name);
    if (!m.is_undefined()) return m;
    return Value::undefined(name);
  }
  if (v.is_dict()) {
    if (!v.dict().is_namespace) {
      Value m = dict_method(v, name);
      if (!m.is_undefined()) return m;
    }
    if (const Value* x = v.dict().find(name)) return *x;
    return Value::undefined(name);
  }
  return Value::undefined(name);
}

}  // namespace hone::jinja
