// The Jinja engine's lexer (see jinja_lexer.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "common/error.h"
#include "tokenizer/jinja_ast.h"

namespace hone::jinja {
namespace {

std::string rstrip_ws(const std::string& s) {
  size_t e = s.size();
  while (e > 0 && std::strchr(" \t\n\r\f\v", s[e - 1])) --e;
  return s.substr(0, e);
}

class Lexer {
 public:
  Lexer(const std::string& src, const std::string& name) : src_(src), name_(name) {}

  std::vector<Tok> run() {
    size_t pos = 0;
    bool line_starting = true;  // jinja2: the previous match ended with a newline (or this is the start)
    const size_t n = src_.size();
    while (pos < n) {
      size_t k = pos;
      for (;;) {
        k = src_.find('{', k);
        if (k == std::string::npos || k + 1 >= n) {
          k = std::string::npos;
          break;
        }
        const char c = src_[k + 1];
        if (c == '{' || c == '%' || c == '#') break;
        ++k;
      }
      if (k == std::string::npos) {
        emit_text(src_.substr(pos), pos);
        break;
      }
      std::string text = src_.substr(pos, k - pos);
      const char kind = src_[k + 1];
      const char flag = k + 2 < n ? src_[k + 2] : 0;
      if (flag == '-') text = rstrip_ws(text);
      else if (kind != '{' && flag != '+') {
        // lstrip_blocks: whitespace between the line's start and a block or comment tag goes.
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool only_ws = true;
          for (size_t i = l_pos; i < text.size(); ++i)
            if (text[i] != ' ' && text[i] != '\t') only_ws = false;
          if (only_ws) text = text.substr(0, l_pos);
        }
      }
      emit_text(text, pos);
      size_t p = k + 2 + ((flag == '-' || flag == '+') ? 1 : 0);
      if (kind == '#') {
        const size_t e = src_.find("#}", p);
        if (e == std::string::npos) fail(k, "the comment is not closed with '#}'");
        const bool strip_after = e > p && src_[e - 1] == '-';
        pos = after_tag(e + 2, strip_after, /*trim=*/e > p && src_[e - 1] == '+' ? false : true, &line_starting);
        continue;
      }
      // A raw block is text up to its endraw tag.
      if (kind == '%') {
        size_t q = p;
        while (q < n && (src_[q] == ' ' || src_[q] == '\t' || src_[q] == '\n')) ++q;
        if (src_.compare(q, 3, "raw") == 0 && (q + 3 >= n || !std::isalnum(static_cast<unsigned char>(src_[q + 3])))) {
          const size_t close = src_.find("%}", q + 3);
          if (close == std::string::npos) fail(k, "the raw tag is not closed");
          const size_t body = after_tag(close + 2, src_[close - 1] == '-', true, &line_starting);
          size_t end = body;
          for (;;) {
            end = src_.find("{%", end);
            if (end == std::string::npos) fail(k, "no {% endraw %} for this raw block");
            size_t r = end + 2;
            const bool minus = r < n && src_[r] == '-';
            if (minus || (r < n && src_[r] == '+')) ++r;
            while (r < n && (src_[r] == ' ' || src_[r] == '\t' || src_[r] == '\n')) ++r;
            if (src_.compare(r, 6, "endraw") == 0) {
              std::string raw = src_.substr(body, end - body);
              if (minus) raw = rstrip_ws(raw);
              emit_text(raw, body);
              const size_t close2 = src_.find("%}", r + 6);
              if (close2 == std::string::npos) fail(end, "the endraw tag is not closed");
              pos = after_tag(close2 + 2, src_[close2 - 1] == '-', src_[close2 - 1] != '+', &line_starting);
              break;
            }
            end += 2;
          }
          continue;
        }
      }
      push(kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", k);
      const std::string close = kind == '{' ? "}}" : "%}";
      pos = inside(p, close, kind == '{' ? Tok::VarEnd : Tok::BlockEnd, &line_starting);
    }
    push(Tok::End, "", n);
    return std::move(toks_);
  }

  std::pair<int, int> line_col(size_t off) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < off && i < src_.size(); ++i) {
      if (src_[i] == '\n') ++line, col = 1;
      else ++col;
    }
    return {line, col};
  }

 private:
  [[noreturn]] void fail(size_t off, const std::string& msg) const {
    auto [l, c] = line_col(off);
    fail_at(name_, l, c, msg);
  }

  void push(Tok::T t, std::string s, size_t off, Value v = Value()) {
    Tok tk{t, std::move(s), std::move(v), 0, 0};
    // Line and column computed incrementally (templates can be long).
    while (lc_off_ < off && lc_off_ < src_.size()) {
      if (src_[lc_off_] == '\n') ++lc_line_, lc_col_ = 1;
      else ++lc_col_;
      ++lc_off_;
    }
    tk.line = lc_line_;
    tk.col = lc_col_;
    toks_.push_back(std::move(tk));
  }

  void emit_text(const std::string& t, size_t off) {
    if (!t.empty()) push(Tok::TextT, t, off);
  }

  // After a tag's closing delimiter at `p`: "-" strips all following whitespace; trim_blocks drops
  // one newline after a block or comment tag.
  size_t after_tag(size_t p, bool strip_after, bool trim, bool* line_starting) {
    const size_t n = src_.size();
    if (strip_after) {
      size_t q = p;
      while (q < n && std::strchr(" \t\n\r\f\v", src_[q])) ++q;
      *line_starting = q > p ? src_[q - 1] == '\n' : (p > 0 && src_[p - 1] == '\n');
      return q;
    }
    if (trim && p < n && src_[p] == '\n') {
      *line_starting = true;
      return p + 1;
    }
    *line_starting = false;
    return p;
  }

  size_t inside(size_t p, const std::string& close, Tok::T end_t, bool* line_starting) {
    const size_t n = src_.size();
    for (;;) {
      while (p < n && std::strchr(" \t\n\r", src_[p])) ++p;
      if (p >= n) fail(p, "the tag is not closed with '" + close + "'");
      // The end, with an optional whitespace-control marker before it.
      if ((src_[p] == '-' || src_[p] == '+') && src_.compare(p + 1, 2, close) == 0) {
        push(end_t, "", p);
        return after_tag(p + 3, src_[p] == '-', end_t == Tok::BlockEnd && src_[p] != '+', line_starting);
      }
      if (src_.compare(p, 2, close) == 0) {
        push(end_t, "", p);
        return after_tag(p + 2, false, end_t == Tok::BlockEnd, line_starting);
      }
      const char c = src_[p];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t q = p;
        while (q < n && (std::isalnum(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
        push(Tok::NameT, src_.substr(p, q - p), p);
        p = q;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t q = p;
        bool is_float = false;
        while (q < n && (std::isdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
        if (q + 1 < n && src_[q] == '.' && std::isdigit(static_cast<unsigned char>(src_[q + 1]))) {
          is_float = true;
          ++q;
          while (q < n && (std::isdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
        }
        if (q < n && (src_[q] == 'e' || src_[q] == 'E')) {
          size_t r = q + 1;
          if (r < n && (src_[r] == '+' || src_[r] == '-')) ++r;
          if (r < n && std::isdigit(static_cast<unsigned char>(src_[r]))) {
            is_float = true;
            q = r;
            while (q < n && std::isdigit(static_cast<unsigned char>(src_[q]))) ++q;
          }
        }
        std::string num;
        for (size_t i = p; i < q; ++i)
          if (src_[i] != '_') num += src_[i];
        if (is_float) push(Tok::FloatT, num, p, Value(std::strtod(num.c_str(), nullptr)));
        else push(Tok::IntT, num, p, Value(static_cast<int64_t>(std::strtoll(num.c_str(), nullptr, 10))));
        p = q;
      } else if (c == '\'' || c == '"') {
        std::string s;
        size_t q = p + 1;
        for (;;) {
          if (q >= n) fail(p, "the string is not closed");
          const char d = src_[q];
          if (d == c) break;
          if (d == '\\' && q + 1 < n) {
            const char e = src_[q + 1];
            q += 2;
            switch (e) {
              case 'n': s += '\n'; break;
              case 't': s += '\t'; break;
              case 'r': s += '\r'; break;
              case '0': s += '\0'; break;
              case 'b': s += '\b'; break;
              case 'f': s += '\f'; break;
              case 'v': s += '\v'; break;
              case 'a': s += '\a'; break;
              case '\\': s += '\\'; break;
              case '\'': s += '\''; break;
              case '"': s += '"'; break;
              case '\n': break;
              case 'x':
              case 'u':
              case 'U': {
                const size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                if (q + len > n) fail(q, "a truncated escape in a string");
                const char32_t cp = static_cast<char32_t>(std::strtoul(src_.substr(q, len).c_str(), nullptr, 16));
                s += u32_to_utf8(std::u32string(1, cp));
                q += len;
                break;
              }
              default: s += '\\', s += e;  // Python keeps unknown escapes as they are
            }
            continue;
          }
          s += d;
          ++q;
        }
        push(Tok::Str, s, p, Value(s));
        p = q + 1;
      } else {
        static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"};
        bool found = false;
        for (const char* op : ops) {
          const size_t L = std::strlen(op);
          if (src_.compare(p, L, op) == 0) {
            push(Tok::Op, op, p);
            p += L;
            found = true;
            break;
          }
        }
        if (!found) fail(p, std::string("unexpected character '") + c + "'");
      }
    }
  }

  const std::string& src_;
  const std::string& name_;
  std::vector<Tok> toks_;
  size_t lc_off_ = 0;
  int lc_line_ = 1, lc_col_ = 1;
};

}  // namespace

std::vector<Tok> lex_template(const std::string& src, const std::string& name) { return Lexer(src, name).run(); }

}  // namespace hone::jinja
