// The Jinja engine's builtins (see jinja_render.h): the filters, tests and Python str/dict
// methods that published chat templates call, as jinja2 and Python define them.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/jinja_render.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "common/error.h"

namespace hone::jinja {
namespace {

bool py_space(char32_t c) {
  return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// Case mapping for the scripts chat text mostly uses (ASCII, Latin-1, Latin Extended-A, Greek,
// Cyrillic); other characters keep their case, where Python would map a few more.
char32_t to_upper(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
  if (c == 0xff) return 0x178;
  if (c >= 0x100 && c <= 0x17f) {
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c % 2 == 0) ? c - 1 : c;
    if (c == 0x131) return 'I';
    if (c == 0x17f) return 'S';
    if (c != 0x138 && c != 0x149 && c != 0x130 && c % 2 == 1) return c - 1;
    return c;
  }
  if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
  if (c == 0x3c2) return 0x3a3;
  if (c >= 0x430 && c <= 0x44f) return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  return c;
}
char32_t to_lower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xc0 && c <= 0xde && c != 0xd7)) return c + 32;
  if (c == 0x178) return 0xff;
  if (c >= 0x100 && c <= 0x17f) {
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c % 2 == 1) ? c + 1 : c;
    if (c == 0x130) return 'i';
    if (c != 0x138 && c != 0x149 && c != 0x131 && c != 0x17f && c % 2 == 0) return c + 1;
    return c;
  }
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
  if (c >= 0x410 && c <= 0x42f) return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}
bool cased(char32_t c) { return to_upper(c) != c || to_lower(c) != c; }

}  // namespace

std::string Renderer::strip_chars(const std::string& s, const Value& chars, bool left, bool right) {
  std::u32string u = utf8_to_u32(s);
  std::u32string set;
  const bool ws = chars.is_undefined() || chars.is_none();
  if (!ws) set = utf8_to_u32(chars.to_str());
  auto strip_me = [&](char32_t c) { return ws ? py_space(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip_me(u[b])) ++b;
  if (right)
    while (e > b && strip_me(u[e - 1])) --e;
  return u32_to_utf8(u.substr(b, e - b));
}

List Renderer::split(const std::string& s, const Value& sep, int64_t maxsplit) {
  List out;
  if (sep.is_undefined() || sep.is_none()) {
    const std::u32string u = utf8_to_u32(s);
    size_t i = 0;
    while (i < u.size()) {
      while (i < u.size() && py_space(u[i])) ++i;
      if (i >= u.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        size_t e = u.size();
        while (e > i && py_space(u[e - 1])) --e;
        out.emplace_back(u32_to_utf8(u.substr(i, e - i)));
        break;
      }
      size_t j = i;
      while (j < u.size() && !py_space(u[j])) ++j;
      out.emplace_back(u32_to_utf8(u.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  const std::string d = sep.to_str();
  if (d.empty()) throw Error("split(): empty separator");
  size_t p = 0;
  for (;;) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) break;
    const size_t q = s.find(d, p);
    if (q == std::string::npos) break;
    out.emplace_back(s.substr(p, q - p));
    p = q + d.size();
  }
  out.emplace_back(s.substr(p));
  return out;
}

std::string Renderer::replace_all(std::string s, const std::string& from, const std::string& to, int64_t count, size_t max) {
  auto grew = [max](const std::string& o) {
    if (o.size() > max) throw Error("replace() makes a string of more than " + std::to_string(max) + " bytes (the output limit)");
  };
  if (from.empty()) {
    // Python inserts `to` between every character (and at both ends).
    const std::u32string u = utf8_to_u32(s);
    std::string o;
    int64_t done = 0;
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || done < count) o += to, ++done;
      if (i < u.size()) o += u32_to_utf8(std::u32string(1, u[i]));
      grew(o);
    }
    return o;
  }
  std::string o;
  size_t p = 0;
  int64_t done = 0;
  for (;;) {
    const size_t q = (count >= 0 && done >= count) ? std::string::npos : s.find(from, p);
    if (q == std::string::npos) break;
    o += s.substr(p, q - p) + to;
    grew(o);
    p = q + from.size();
    ++done;
  }
  o += s.substr(p);
  grew(o);
  return o;
}

std::string Renderer::title_case(const std::string& s) {
  std::u32string u = utf8_to_u32(s);
  bool prev_cased = false;
  for (auto& c : u) {
    const bool is_cased = cased(c);
    if (is_cased) c = prev_cased ? to_lower(c) : to_upper(c);
    prev_cased = is_cased;
  }
  return u32_to_utf8(u);
}

std::string Renderer::lower(const std::string& s) {
  std::u32string u = utf8_to_u32(s);
  for (auto& c : u) c = to_lower(c);
  return u32_to_utf8(u);
}

std::string Renderer::upper(const std::string& s) {
  std::u32string u = utf8_to_u32(s);
  for (auto& c : u) c = to_upper(c);
  return u32_to_utf8(u);
}

std::string Renderer::capitalize(const std::string& s) {
  std::u32string u = utf8_to_u32(lower(s));
  if (!u.empty()) u[0] = to_upper(u[0]);
  return u32_to_utf8(u);
}

bool Renderer::starts_or_ends(const std::string& s, const Value& what, bool start) {
  auto one = [&](const std::string& p) {
    if (p.size() > s.size()) return false;
    return start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (what.is_list()) {
    for (const auto& x : what.list())
      if (one(x.to_str())) return true;
    return false;
  }
  if (!what.is_string()) throw Error(std::string(start ? "startswith" : "endswith") + "() needs a string");
  return one(what.str());
}

Value Renderer::str_method(const std::string& s, const std::string& name) {
  using F = std::function<Value(Args&)>;
  F f;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    f = [s, l, r](Args& a) { return Value(strip_chars(s, a.get(0, "chars"), l, r)); };
  } else if (name == "split") {
    f = [s](Args& a) {
      Value m = a.get(1, "maxsplit", Value(-1));
      return Value(split(s, a.get(0, "sep"), m.integer()));
    };
  } else if (name == "startswith" || name == "endswith") {
    const bool st = name == "startswith";
    f = [s, st](Args& a) { return Value(starts_or_ends(s, a.get(0, "prefix"), st)); };
  } else if (name == "upper") {
    f = [s](Args&) { return Value(upper(s)); };
  } else if (name == "lower") {
    f = [s](Args&) { return Value(lower(s)); };
  } else if (name == "title") {
    f = [s](Args&) { return Value(title_case(s)); };
  } else if (name == "capitalize") {
    f = [s](Args&) { return Value(capitalize(s)); };
  } else if (name == "replace") {
    f = [s, max = limits.max_output](Args& a) {
      return Value(replace_all(s, a.get(0, "old").to_str(), a.get(1, "new").to_str(), a.get(2, "count", Value(-1)).integer(), max));
    };
  } else if (name == "find" || name == "count") {
    const bool find = name == "find";
    f = [s, find](Args& a) {
      const std::string sub = a.get(0, "sub").to_str();
      if (find) {
        const size_t p = s.find(sub);
        return Value(p == std::string::npos ? int64_t{-1} : static_cast<int64_t>(utf8_to_u32(s.substr(0, p)).size()));
      }
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_to_u32(s).size() + 1));
      int64_t c = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++c;
      return Value(c);
    };
  } else if (name == "join") {
    f = [s, max = limits.max_output](Args& a) {
      std::string o;
      Value it = a.get(0, "iterable");
      if (!it.is_list()) throw Error("join() needs a list");
      for (size_t i = 0; i < it.list().size(); ++i) {
        o += (i ? s : "") + it.list()[i].to_str();
        if (o.size() > max) throw Error("join() makes a string of more than " + std::to_string(max) + " bytes (the output limit)");
      }
      return Value(o);
    };
  } else if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum" || name == "islower" ||
             name == "isupper") {
    f = [s, name](Args&) {
      if (s.empty()) return Value(false);
      bool any_cased = false;
      for (char32_t c : utf8_to_u32(s)) {
        const bool d = c >= '0' && c <= '9', lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z';
        if (name == "isdigit" && !d) return Value(false);
        if (name == "isspace" && !py_space(c)) return Value(false);
        if (name == "isalpha" && !(lo || up)) return Value(false);
        if (name == "isalnum" && !(lo || up || d)) return Value(false);
        if (name == "islower" && up) return Value(false);
        if (name == "isupper" && lo) return Value(false);
        any_cased = any_cased || lo || up;
      }
      return Value(name == "islower" || name == "isupper" ? any_cased : true);
    };
  } else {
    return Value::undefined(name);
  }
  return Value::func(f, "str." + name);
}

List Renderer::dict_items(const Value& d) {
  List out;
  for (const auto& [k, v] : d.dict().items) out.push_back(Value::tuple(List{Value(k), v}));
  return out;
}

Value Renderer::dict_method(const Value& d, const std::string& name) {
  if (name == "items") return Value::func([d](Args&) { return Value(dict_items(d)); }, "dict.items");
  if (name == "keys")
    return Value::func(
        [d](Args&) {
          List o;
          for (const auto& kv : d.dict().items) o.emplace_back(kv.first);
          return Value(o);
        },
        "dict.keys");
  if (name == "values")
    return Value::func(
        [d](Args&) {
          List o;
          for (const auto& kv : d.dict().items) o.push_back(kv.second);
          return Value(o);
        },
        "dict.values");
  if (name == "get")
    return Value::func(
        [d](Args& a) {
          Value k = a.get(0, "key");
          const Value* x = k.is_string() ? d.dict().find(k.str()) : nullptr;
          return x ? *x : a.get(1, "default", Value::none());
        },
        "dict.get");
  return Value::undefined(name);
}

// ---- filters
Value Renderer::attr_path(const Value& v, const std::string& path, const Node& n) {
  Value cur = v;
  size_t p = 0;
  while (p <= path.size()) {
    const size_t q = path.find('.', p);
    const std::string part = path.substr(p, q == std::string::npos ? std::string::npos : q - p);
    if (cur.is_undefined()) return cur;
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = digits && cur.is_list() ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part))), n) : get_item_soft(cur, part, n);
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return cur;
}

Value Renderer::get_item_soft(const Value& v, const std::string& k, const Node& n) {
  if (v.is_dict()) {
    if (const Value* x = v.dict().find(k)) return *x;
    return Value::undefined(k);
  }
  return get_attr(v, k, n);
}

Value Renderer::apply_filter_chain(const Node& f, const Value& text) {
  if (!f.a[0]) return apply_filter(f, text);
  return apply_filter(f, apply_filter_chain(*f.a[0], text));
}

Value Renderer::apply_filter(const Node& n, const Value& v) {
  Args a = eval_args(n);
  const std::string& f = n.s;
  try {
    return filter(f, v, a, n);
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.rfind(tname + " line ", 0) == 0) throw;
    fail(n, "filter '" + f + "': " + m);
  }
}

bool Renderer::run_test(const std::string& name, const Value& v, const std::vector<Value>& args, const Node& n) {
  auto arg = [&](size_t i) {
    if (i >= args.size()) fail(n, "test '" + name + "' needs an argument");
    return args[i];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind() == Value::Int;
  if (name == "float") return v.kind() == Value::Float;
  if (name == "boolean") return v.kind() == Value::Bool;
  if (name == "true") return v.kind() == Value::Bool && v.truthy();
  if (name == "false") return v.kind() == Value::Bool && !v.truthy();
  if (name == "callable") return v.is_func();
  if (name == "lower") return v.is_string() && lower(v.str()) == v.str();
  if (name == "upper") return v.is_string() && upper(v.str()) == v.str();
  if (name == "even" || name == "odd") {
    if (!v.is_number()) fail(n, "test '" + name + "' needs a number");
    return (v.integer() % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    const Value d = arg(0);
    return d.integer() != 0 && (d.integer() == -1 || v.integer() % d.integer() == 0);  // INT64_MIN % -1 traps
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, arg(0));
  if (name == "ne" || name == "!=") return !equal(v, arg(0));
  if (name == "sameas") {
    const Value o = arg(0);
    if (v.kind() != o.kind()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.kind() == Value::Bool) return v.truthy() == o.truthy();
    if (v.is_dict()) return v.dict_ptr() == o.dict_ptr();
    return equal(v, o);
  }
  if (name == "in") return contains(arg(0), v, n);
  if (name == "gt" || name == ">" || name == "greaterthan") return order(v, arg(0), n) > 0;
  if (name == "ge" || name == ">=") return order(v, arg(0), n) >= 0;
  if (name == "lt" || name == "<" || name == "lessthan") return order(v, arg(0), n) < 0;
  if (name == "le" || name == "<=") return order(v, arg(0), n) <= 0;
  fail(n, "no test named '" + name + "'");
}

bool Renderer::apply_test(const Node& n) {
  const Value v = eval(*n.a[0]);
  std::vector<Value> args;
  for (size_t i = 1; i < n.a.size(); ++i) args.push_back(eval(*n.a[i]));
  return run_test(n.s, v, args, n);
}

Value Renderer::filter(const std::string& f, const Value& v, Args& a, const Node& n) {
  if (f == "trim") return Value(strip_chars(v.to_str(), a.get(0, "chars"), true, true));
  if (f == "upper") return Value(upper(v.to_str()));
  if (f == "lower") return Value(lower(v.to_str()));
  if (f == "title") return Value(title_case(v.to_str()));
  if (f == "capitalize") return Value(capitalize(v.to_str()));
  if (f == "length" || f == "count") {
    if (v.is_string()) return Value(static_cast<int64_t>(utf8_to_u32(v.str()).size()));
    if (v.is_list()) return Value(static_cast<int64_t>(v.list().size()));
    if (v.is_dict()) return Value(static_cast<int64_t>(v.dict().items.size()));
    if (v.is_undefined()) return Value(int64_t{0});
    fail(n, "object of type '" + v.type_name() + "' has no len()");
  }
  if (f == "tojson") {
    Value ind = a.get(0, "indent");
    const int64_t indent = ind.is_undefined() || ind.is_none() ? -1 : ind.integer();
    if (indent > 1024) fail(n, "tojson indent " + std::to_string(indent) + " is too large");
    return Value(to_json(v, static_cast<int>(std::max<int64_t>(indent, -1))));
  }
  if (f == "string") return Value(v.to_str());
  if (f == "safe" || f == "list" || f == "e" || f == "escape" || f == "forceescape") {
    if (f == "list") {
      if (v.is_list()) return v;
      return Value(seq(v, n));
    }
    if (f == "safe") return v;
    std::string o;
    for (char c : v.to_str()) {
      switch (c) {
        case '&': o += "&amp;"; break;
        case '<': o += "&lt;"; break;
        case '>': o += "&gt;"; break;
        case '"': o += "&#34;"; break;
        case '\'': o += "&#39;"; break;
        default: o += c;
      }
    }
    return Value(o);
  }
  if (f == "join") {
    const std::string sep = a.get(0, "d", Value("")).to_str();
    const Value attr = a.get(1, "attribute");
    std::string o;
    auto items = seq(v, n);
    for (size_t i = 0; i < items.size(); ++i) {
      o += (i ? sep : "") + (attr.is_undefined() ? items[i] : attr_path(items[i], attr.to_str(), n)).to_str();
      check_size(o.size(), n);
    }
    return Value(o);
  }
  if (f == "replace") {
    return Value(replace_all(v.to_str(), a.get(0, "old").to_str(), a.get(1, "new").to_str(),
                             a.get(2, "count", Value(-1)).is_none() ? -1 : a.get(2, "count", Value(-1)).integer(), limits.max_output));
  }
  if (f == "default" || f == "d") {
    const bool boolean = a.get(1, "boolean", Value(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value(""));
    return v;
  }
  if (f == "first" || f == "last") {
    auto items = seq(v, n);
    if (items.empty()) return Value::undefined(f == "first" ? "first item" : "last item");
    return f == "first" ? items.front() : items.back();
  }
  if (f == "items") {
    if (v.is_undefined()) return Value(List{});
    if (!v.is_dict()) fail(n, "items needs a mapping");
    return Value(dict_items(v));
  }
  if (f == "dictsort") {
    if (!v.is_dict()) fail(n, "dictsort needs a mapping");
    List items = dict_items(v);
    const bool cs = a.get(0, "case_sensitive", Value(false)).truthy();
    const bool by_value = a.get(1, "by", Value("key")).to_str() == "value";
    const bool rev = a.get(2, "reverse", Value(false)).truthy();
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      Value kx = x.list()[by_value ? 1 : 0], ky = y.list()[by_value ? 1 : 0];
      if (!cs && kx.is_string() && ky.is_string()) kx = Value(lower(kx.str())), ky = Value(lower(ky.str()));
      return rev ? order(ky, kx, n) < 0 : order(kx, ky, n) < 0;
    });
    return Value(items);
  }
  if (f == "selectattr" || f == "rejectattr" || f == "select" || f == "reject") {
    const bool attr = f == "selectattr" || f == "rejectattr";
    const bool keep_if = f == "selectattr" || f == "select";
    const size_t t0 = attr ? 1 : 0;
    const std::string attr_name = attr ? a.get(0, "attribute").to_str() : "";
    const std::string test = a.pos.size() > t0 ? a.pos[t0].to_str() : "";
    std::vector<Value> targs(a.pos.begin() + static_cast<std::ptrdiff_t>(std::min(a.pos.size(), t0 + 1)), a.pos.end());
    List out;
    for (const auto& item : seq(v, n)) {
      const Value x = attr ? attr_path(item, attr_name, n) : item;
      const bool r = test.empty() ? x.truthy() : run_test(test, x, targs, n);
      if (r == keep_if) out.push_back(item);
    }
    return Value(out);
  }
  if (f == "map") {
    List out;
    const Value attr = a.get(99, "attribute");
    if (!attr.is_undefined()) {
      const Value def = a.get(99, "default");
      for (const auto& item : seq(v, n)) {
        Value x = attr_path(item, attr.to_str(), n);
        out.push_back(x.is_undefined() && !def.is_undefined() ? def : x);
      }
      return Value(out);
    }
    if (a.pos.empty()) fail(n, "map needs a filter name or attribute=");
    Args rest;
    rest.pos.assign(a.pos.begin() + 1, a.pos.end());
    rest.kw = a.kw;
    const std::string name = a.pos[0].to_str();
    for (const auto& item : seq(v, n)) out.push_back(filter(name, item, rest, n));
    return Value(out);
  }
  if (f == "unique") {
    List out;
    const bool cs = a.get(0, "case_sensitive", Value(false)).truthy();
    for (const auto& item : seq(v, n)) {
      bool seen = false;
      for (const auto& o : out) {
        if (!cs && o.is_string() && item.is_string() ? lower(o.str()) == lower(item.str()) : equal(o, item)) seen = true;
      }
      if (!seen) out.push_back(item);
    }
    return Value(out);
  }
  if (f == "reverse") {
    if (v.is_string()) {
      std::u32string u = utf8_to_u32(v.str());
      std::reverse(u.begin(), u.end());
      return Value(u32_to_utf8(u));
    }
    auto items = seq(v, n);
    std::reverse(items.begin(), items.end());
    return Value(List(items));
  }
  if (f == "sort") {
    auto items = seq(v, n);
    const bool rev = a.get(0, "reverse", Value(false)).truthy();
    const bool cs = a.get(1, "case_sensitive", Value(false)).truthy();
    const Value attr = a.get(2, "attribute");
    auto key = [&](const Value& x) {
      Value k = attr.is_undefined() ? x : attr_path(x, attr.to_str(), n);
      return !cs && k.is_string() ? Value(lower(k.str())) : k;
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return rev ? order(key(y), key(x), n) < 0 : order(key(x), key(y), n) < 0;
    });
    return Value(List(items));
  }
  if (f == "sum") {
    const Value attr = a.get(0, "attribute");
    Value total = a.get(1, "start", Value(int64_t{0}));
    for (const auto& item : seq(v, n)) total = binary("+", total, attr.is_undefined() ? item : attr_path(item, attr.to_str(), n), n);
    return total;
  }
  if (f == "min" || f == "max") {
    auto items = seq(v, n);
    if (items.empty()) return Value::undefined();
    const Value attr = a.get(1, "attribute");
    Value best = items[0];
    for (const auto& x : items) {
      const Value kx = attr.is_undefined() ? x : attr_path(x, attr.to_str(), n);
      const Value kb = attr.is_undefined() ? best : attr_path(best, attr.to_str(), n);
      const int c = order(kx, kb, n);
      if ((f == "min" && c < 0) || (f == "max" && c > 0)) best = x;
    }
    return best;
  }
  if (f == "abs") {
    if (v.kind() == Value::Float) return Value(std::fabs(v.number()));
    return Value(checked(0, v.integer() < 0 ? v.integer() : -v.integer(), '-', n));  // abs(INT64_MIN) is beyond int64
  }
  if (f == "int") {
    if (v.is_number()) return Value(v.integer());
    if (v.is_string()) {
      char* end = nullptr;
      const std::string s = strip_chars(v.str(), Value(), true, true);
      const long long x = std::strtoll(s.c_str(), &end, 10);
      if (end && *end == 0 && !s.empty()) return Value(static_cast<int64_t>(x));
      const double d = std::strtod(s.c_str(), &end);
      if (end && *end == 0 && !s.empty()) return Value(int_of(d));
    }
    return a.get(0, "default", Value(int64_t{0}));
  }
  if (f == "float") {
    if (v.is_number()) return Value(v.number());
    if (v.is_string()) {
      char* end = nullptr;
      const std::string s = strip_chars(v.str(), Value(), true, true);
      const double d = std::strtod(s.c_str(), &end);
      if (end && *end == 0 && !s.empty()) return Value(d);
    }
    return a.get(0, "default", Value(0.0));
  }
  if (f == "round") {
    const int64_t prec = a.get(0, "precision", Value(int64_t{0})).integer();
    const std::string method = a.get(1, "method", Value("common")).to_str();
    const double m = std::pow(10.0, static_cast<double>(prec));
    const double x = v.number() * m;
    const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);  // Python rounds half to even
    return Value(r / m);
  }
  if (f == "indent") {
    const Value w = a.get(0, "width", Value(int64_t{4}));
    const std::string s = v.to_str();
    const size_t lines = static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) + 1;
    const uint64_t width = w.is_string() ? w.str().size() : static_cast<uint64_t>(std::max<int64_t>(0, w.integer()));
    if (width > 0 && lines > limits.max_output / width) fail(n, "the indented text exceeds the output limit");
    const std::string pad = w.is_string() ? w.str() : std::string(static_cast<size_t>(width), ' ');
    const bool first = a.get(1, "first", Value(false)).truthy();
    const bool blank = a.get(2, "blank", Value(false)).truthy();
    std::string o;
    size_t p = 0;
    bool is_first = true;
    for (;;) {
      const size_t q = s.find('\n', p);
      const std::string line = s.substr(p, q == std::string::npos ? std::string::npos : q - p);
      if ((!is_first || first) && (blank || !line.empty())) o += pad;
      o += line;
      if (q == std::string::npos) break;
      o += "\n";
      p = q + 1;
      is_first = false;
    }
    return Value(o);
  }
  if (f == "wordcount") return Value(static_cast<int64_t>(split(v.to_str(), Value(), -1).size()));
  if (f == "attr") return get_attr(v, a.get(0, "name").to_str(), n);
  if (f == "batch" || f == "slice" || f == "groupby" || f == "format" || f == "urlencode" || f == "pprint" || f == "xmlattr")
    fail(n, "the filter '" + f + "' is not supported in chat templates here");
  fail(n, "no filter named '" + f + "'");
}

}  // namespace hone::jinja
