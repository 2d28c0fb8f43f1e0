// Jinja values with Python's printing, truthiness, equality and JSON (see jinja_value.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/jinja_value.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "common/error.h"

namespace hone::jinja {

Value::Value(std::shared_ptr<Dict> d) : k_(DictK), d_(std::move(d)) {}

Value Value::func(Func f, std::string name) {
  Value v;
  v.k_ = FuncK;
  v.f_ = std::make_shared<Func>(std::move(f));
  v.s_ = std::move(name);
  return v;
}

bool Value::truthy() const {
  switch (k_) {
    case Undefined:
    case None: return false;
    case Bool:
    case Int: return i_ != 0;
    case Float: return f64_ != 0;
    case String: return !s_.empty();
    case ListK: return !l_->empty();
    case DictK: return !d_->items.empty() || d_->is_namespace;
    case FuncK: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (k_) {
    case Undefined: return "undefined";
    case None: return "NoneType";
    case Bool: return "bool";
    case Int: return "int";
    case Float: return "float";
    case String: return "str";
    case ListK: return "list";
    case DictK: return d_->is_namespace ? "Namespace" : "dict";
    case FuncK: return "function";
  }
  return "?";
}

std::string python_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // The shortest precision that reads back exactly, as Python's repr picks.
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  // buf is d.ddde[+-]XX; split into digits and exponent.
  std::string s(buf);
  const bool neg = s[0] == '-';
  if (neg) s = s.substr(1);
  const size_t e = s.find('e');
  const int exp10 = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (s[i] != '.') digits += s[i];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp10 < -4 || exp10 >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += eb;
  } else if (exp10 < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
  } else {
    const size_t whole = static_cast<size_t>(exp10) + 1;
    if (digits.size() <= whole) out = digits + std::string(whole - digits.size(), '0') + ".0";
    else out = digits.substr(0, whole) + "." + digits.substr(whole);
  }
  return neg ? "-" + out : out;
}

std::string python_str_repr(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) out += std::string("\\") + q;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else out += static_cast<char>(c);
  }
  return out + q;
}

std::string Value::to_str() const {
  switch (k_) {
    case Undefined: return "";
    case None: return "None";
    case Bool: return i_ ? "True" : "False";
    case Int: return std::to_string(i_);
    case Float: return python_float(f64_);
    case String: return s_;
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (k_) {
    case String: return python_str_repr(s_);
    case ListK: {
      std::string o = tuple_ ? "(" : "[";
      for (size_t i = 0; i < l_->size(); ++i) o += (i ? ", " : "") + (*l_)[i].repr();
      if (tuple_) return o + (l_->size() == 1 ? ",)" : ")");
      return o + "]";
    }
    case DictK: {
      if (d_->is_namespace) return "<Namespace>";
      std::string o = "{";
      for (size_t i = 0; i < d_->items.size(); ++i)
        o += (i ? ", " : "") + python_str_repr(d_->items[i].first) + ": " + d_->items[i].second.repr();
      return o + "}";
    }
    case FuncK: return "<function " + s_ + ">";
    default: return to_str();
  }
}

const Value* Dict::find(const std::string& k) const {
  for (const auto& [key, v] : items)
    if (key == k) return &v;
  return nullptr;
}

void Dict::set(const std::string& k, Value v) {
  for (auto& [key, old] : items)
    if (key == k) {
      old = std::move(v);
      return;
    }
  items.emplace_back(k, std::move(v));
}

Value Args::get(size_t i, const std::string& name, Value def) const {
  if (i < pos.size()) return pos[i];
  for (const auto& [k, v] : kw)
    if (k == name) return v;
  return def;
}

int64_t int_of(double d) {
  if (std::isnan(d)) return 0;
  if (d >= 9223372036854775807.0) return std::numeric_limits<int64_t>::max();
  if (d <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.number() == b.number();
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Undefined:
    case Value::None: return true;
    case Value::String: return a.str() == b.str();
    case Value::ListK: {
      if (a.list().size() != b.list().size()) return false;
      for (size_t i = 0; i < a.list().size(); ++i)
        if (!equal(a.list()[i], b.list()[i])) return false;
      return true;
    }
    case Value::DictK: {
      if (a.dict_ptr() == b.dict_ptr()) return true;
      if (a.dict().is_namespace || b.dict().is_namespace) return false;
      if (a.dict().items.size() != b.dict().items.size()) return false;
      for (const auto& [k, v] : a.dict().items) {
        const Value* o = b.dict().find(k);
        if (!o || !equal(v, *o)) return false;
      }
      return true;
    }
    default: return false;
  }
}

namespace {

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else out += static_cast<char>(c);  // ensure_ascii=False: UTF-8 as it is
    }
  }
  out += '"';
}

void json_value(const Value& v, int indent, int depth, std::string& out) {
  if (depth > 256) throw Error("tojson: the value nests deeper than 256 levels");
  // json.dumps' separators: (", ", ": ") without indent, ("," + newline, ": ") with it.
  auto newline = [&](int d) {
    if (indent >= 0) out += "\n" + std::string(static_cast<size_t>(indent * d), ' ');
  };
  switch (v.kind()) {
    case Value::Undefined: throw Error("tojson: the value is undefined");
    case Value::None: out += "null"; return;
    case Value::Bool: out += v.truthy() ? "true" : "false"; return;
    case Value::Int: out += std::to_string(v.integer()); return;
    case Value::Float: {
      const double d = v.number();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float(d);
      return;
    }
    case Value::String: json_string(v.str(), out); return;
    case Value::ListK: {
      if (v.list().empty()) {
        out += "[]";
        return;
      }
      out += "[";
      for (size_t i = 0; i < v.list().size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        newline(depth + 1);
        json_value(v.list()[i], indent, depth + 1, out);
      }
      newline(depth);
      out += "]";
      return;
    }
    case Value::DictK: {
      const auto& items = v.dict().items;
      if (items.empty()) {
        out += "{}";
        return;
      }
      out += "{";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        newline(depth + 1);
        json_string(items[i].first, out);
        out += ": ";
        json_value(items[i].second, indent, depth + 1, out);
      }
      newline(depth);
      out += "}";
      return;
    }
    case Value::FuncK: throw Error("tojson: a function is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, int indent) {
  std::string out;
  json_value(v, indent, 0, out);
  return out;
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: return Value(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      for (const auto& x : j) l.push_back(from_json(x));
      return Value(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->items.emplace_back(it.key(), from_json(it.value()));
      return Value(d);
    }
    default: return Value();
  }
}

std::u32string utf8_to_u32(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < n && i + static_cast<size_t>(k) < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3f);
    out += cp;
    i += static_cast<size_t>(n);
  }
  return out;
}

std::string u32_to_utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) out += static_cast<char>(c);
    else if (c < 0x800) out += static_cast<char>(0xc0 | (c >> 6)), out += static_cast<char>(0x80 | (c & 0x3f));
    else if (c < 0x10000)
      out += static_cast<char>(0xe0 | (c >> 12)), out += static_cast<char>(0x80 | ((c >> 6) & 0x3f)),
          out += static_cast<char>(0x80 | (c & 0x3f));
    else
      out += static_cast<char>(0xf0 | (c >> 18)), out += static_cast<char>(0x80 | ((c >> 12) & 0x3f)),
          out += static_cast<char>(0x80 | ((c >> 6) & 0x3f)), out += static_cast<char>(0x80 | (c & 0x3f));
  }
  return out;
}

}  // namespace hone::jinja
