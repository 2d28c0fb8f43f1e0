// The chat-template Jinja engine (see jinja.h): a lexer with jinja2's whitespace rules
// (trim_blocks, lstrip_blocks, "-" and "+" markers), a recursive-descent parser following jinja2's
// operator precedence, and a tree-walking renderer with the filters, tests, globals and Python
// str/dict methods that published chat templates call.
#include "tokenizer/jinja.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "common/error.h"

namespace hone::jinja {

// ---------------------------------------------------------------------------------------------
// Syntax tree

struct Node;
using NodeP = std::shared_ptr<Node>;

struct Node {
  enum Kind {
    // expressions
    Lit, Name, ListE, DictE, Attr, Item, Slice, Call, Filter, Test, Neg, Pos, Not, And, Or, Bin, Compare, Cond,
    // statements
    Body, Text, Output, If, For, Set, SetAttr, SetBlock, Macro, CallBlock, FilterBlock, Generation, Break, Continue
  };
  Kind k;
  int line = 0, col = 0;
  std::string s;                 // name, operator, attribute, filter or test name, text
  Value lit;                     // Lit
  std::vector<NodeP> a;          // operands, arguments, statements
  std::vector<NodeP> b;          // else-body (for, if), defaults (macro)
  std::vector<std::string> names;  // for/set targets, macro parameters, compare operators
  std::vector<std::pair<std::string, NodeP>> kw;  // keyword arguments
  bool negate = false;           // "is not"
  NodeP cond;                    // for ... if cond; the called expression of a call block
};

namespace {

[[noreturn]] void fail_at(const std::string& tname, int line, int col, const std::string& msg) {
  throw Error(tname + " line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + msg);
}

NodeP node(Node::Kind k, int line, int col) {
  auto n = std::make_shared<Node>();
  n->k = k;
  n->line = line;
  n->col = col;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Lexer

struct Tok {
  enum T { TextT, VarBegin, VarEnd, BlockBegin, BlockEnd, NameT, Str, IntT, FloatT, Op, End } t;
  std::string s;
  Value v;
  int line = 0, col = 0;
};

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

// ---------------------------------------------------------------------------------------------
// Parser (jinja2's precedence: or < and < not < compare/in/is < + - < ~ < * / // % < ** < unary;
// filters and tests bind to the unary operand; postfix . [] () tightest)

class Parser {
 public:
  Parser(std::vector<Tok> toks, const std::string& name) : t_(std::move(toks)), name_(name) {}

  NodeP parse_template(bool* has_generation) {
    std::string end;
    NodeP body = parse_body({}, &end);
    *has_generation = has_generation_;
    return body;
  }

 private:
  const Tok& cur() const { return t_[i_]; }
  const Tok& next_tok() { return t_[i_++]; }
  [[noreturn]] void fail(const Tok& t, const std::string& msg) const { fail_at(name_, t.line, t.col, msg); }
  bool is_op(const char* op) const { return cur().t == Tok::Op && cur().s == op; }
  bool is_name(const char* nm) const { return cur().t == Tok::NameT && cur().s == nm; }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(cur(), std::string("expected '") + op + "'" + found());
    ++i_;
  }
  std::string found() const {
    const Tok& t = cur();
    if (t.t == Tok::End) return ", found the end of the template";
    if (t.t == Tok::BlockEnd) return ", found '%}'";
    if (t.t == Tok::VarEnd) return ", found '}}'";
    return ", found '" + t.s + "'";
  }
  std::string expect_name() {
    if (cur().t != Tok::NameT) fail(cur(), "expected a name" + found());
    return next_tok().s;
  }
  void expect_block_end() {
    if (cur().t != Tok::BlockEnd) fail(cur(), "expected '%}'" + found());
    ++i_;
  }

  // Statements up to one of `ends` (a block tag whose keyword is in the list), consumed; *end gets it.
  NodeP parse_body(const std::set<std::string>& ends, std::string* end) {
    NodeP body = node(Node::Body, cur().line, cur().col);
    for (;;) {
      const Tok& t = cur();
      if (t.t == Tok::End) {
        if (!ends.empty()) {
          std::string want;
          for (const auto& e : ends) want += (want.empty() ? "" : " or ") + e;
          fail(t, "the template ended inside a block; expected {% " + want + " %}");
        }
        *end = "";
        return body;
      }
      if (t.t == Tok::TextT) {
        NodeP n = node(Node::Text, t.line, t.col);
        n->s = t.s;
        body->a.push_back(n);
        ++i_;
      } else if (t.t == Tok::VarBegin) {
        ++i_;
        NodeP n = node(Node::Output, t.line, t.col);
        n->a.push_back(parse_expr());
        if (cur().t != Tok::VarEnd) fail(cur(), "expected '}}'" + found());
        ++i_;
        body->a.push_back(n);
      } else if (t.t == Tok::BlockBegin) {
        ++i_;
        const Tok& kw = cur();
        if (kw.t != Tok::NameT) fail(kw, "expected a statement keyword" + found());
        if (ends.count(kw.s)) {
          *end = kw.s;
          ++i_;
          return body;
        }
        body->a.push_back(parse_statement());
      } else {
        fail(t, "unexpected token");
      }
    }
  }

  NodeP parse_statement() {
    const Tok kw = next_tok();
    const std::string& k = kw.s;
    if (k == "if") {
      NodeP n = node(Node::If, kw.line, kw.col);
      n->a.push_back(parse_expr());
      expect_block_end();
      std::string end;
      n->a.push_back(parse_body({"elif", "else", "endif"}, &end));
      NodeP tail = n;
      while (end == "elif") {
        NodeP e = node(Node::If, cur().line, cur().col);
        e->a.push_back(parse_expr());
        expect_block_end();
        e->a.push_back(parse_body({"elif", "else", "endif"}, &end));
        tail->b.push_back(e);
        tail = e;
      }
      if (end == "else") {
        expect_block_end();
        tail->b.push_back(parse_body({"endif"}, &end));
      }
      expect_block_end();
      return n;
    }
    if (k == "for") {
      NodeP n = node(Node::For, kw.line, kw.col);
      n->names.push_back(expect_name());
      while (is_op(",")) {
        ++i_;
        n->names.push_back(expect_name());
      }
      if (!is_name("in")) fail(cur(), "expected 'in'" + found());
      ++i_;
      n->a.push_back(parse_or(/*no_cond=*/true));
      if (is_name("if")) {
        ++i_;
        n->cond = parse_or(true);
      }
      if (is_name("recursive")) fail(cur(), "recursive loops are not supported");
      expect_block_end();
      std::string end;
      n->a.push_back(parse_body({"else", "endfor"}, &end));
      if (end == "else") {
        expect_block_end();
        n->b.push_back(parse_body({"endfor"}, &end));
      }
      expect_block_end();
      return n;
    }
    if (k == "set") {
      const std::string target = expect_name();
      if (is_op(".")) {
        ++i_;
        NodeP n = node(Node::SetAttr, kw.line, kw.col);
        n->names = {target, expect_name()};
        expect_op("=");
        n->a.push_back(parse_expr());
        expect_block_end();
        return n;
      }
      std::vector<std::string> targets{target};
      while (is_op(",")) {
        ++i_;
        targets.push_back(expect_name());
      }
      if (cur().t == Tok::BlockEnd && targets.size() == 1) {
        ++i_;
        NodeP n = node(Node::SetBlock, kw.line, kw.col);
        n->names = targets;
        std::string end;
        n->a.push_back(parse_body({"endset"}, &end));
        expect_block_end();
        return n;
      }
      NodeP n = node(Node::Set, kw.line, kw.col);
      n->names = targets;
      expect_op("=");
      n->a.push_back(parse_tuple_expr());
      expect_block_end();
      return n;
    }
    if (k == "macro") {
      NodeP n = node(Node::Macro, kw.line, kw.col);
      n->s = expect_name();
      parse_params(n);
      expect_block_end();
      std::string end;
      n->a.push_back(parse_body({"endmacro"}, &end));
      if (cur().t == Tok::NameT) ++i_;  // {% endmacro name %}
      expect_block_end();
      return n;
    }
    if (k == "call") {
      NodeP n = node(Node::CallBlock, kw.line, kw.col);
      NodeP params = node(Node::Macro, kw.line, kw.col);
      if (is_op("(")) parse_params(params);
      n->b.push_back(params);
      NodeP call = parse_expr();
      if (call->k != Node::Call) fail(kw, "a call block needs a macro call");
      n->cond = call;
      expect_block_end();
      std::string end;
      n->a.push_back(parse_body({"endcall"}, &end));
      expect_block_end();
      return n;
    }
    if (k == "filter") {
      NodeP n = node(Node::FilterBlock, kw.line, kw.col);
      NodeP f = parse_filter_chain(nullptr);
      n->cond = f;
      expect_block_end();
      std::string end;
      n->a.push_back(parse_body({"endfilter"}, &end));
      expect_block_end();
      return n;
    }
    if (k == "generation") {
      has_generation_ = true;
      NodeP n = node(Node::Generation, kw.line, kw.col);
      expect_block_end();
      std::string end;
      n->a.push_back(parse_body({"endgeneration"}, &end));
      expect_block_end();
      return n;
    }
    if (k == "break" || k == "continue") {
      if (cur().t != Tok::BlockEnd) fail(cur(), "expected '%}'" + found());
      ++i_;
      return node(k == "break" ? Node::Break : Node::Continue, kw.line, kw.col);
    }
    if (k == "include" || k == "import" || k == "from" || k == "extends" || k == "block")
      fail(kw, "'" + k + "' is not allowed in a chat template (no file access)");
    fail(kw, "unknown statement '" + k + "'");
  }

  void parse_params(const NodeP& n) {
    expect_op("(");
    while (!is_op(")")) {
      n->names.push_back(expect_name());
      if (is_op("=")) {
        ++i_;
        n->b.push_back(parse_expr());
      } else {
        if (!n->b.empty()) fail(cur(), "a parameter without a default follows one with a default");
        n->b.push_back(nullptr);
      }
      if (!is_op(",")) break;
      ++i_;
    }
    expect_op(")");
  }

  // A comma-separated list without brackets is a tuple (set a, b = 1, 2).
  NodeP parse_tuple_expr() {
    NodeP first = parse_expr();
    if (!is_op(",")) return first;
    NodeP l = node(Node::ListE, first->line, first->col);
    l->negate = true;  // a tuple
    l->a.push_back(first);
    while (is_op(",")) {
      ++i_;
      if (cur().t == Tok::BlockEnd || cur().t == Tok::VarEnd) break;
      l->a.push_back(parse_expr());
    }
    return l;
  }

  NodeP parse_expr() {
    NodeP e = parse_or(false);
    if (is_name("if")) {
      const Tok t = next_tok();
      NodeP n = node(Node::Cond, t.line, t.col);
      n->a.push_back(e);
      n->a.push_back(parse_or(false));
      if (is_name("else")) {
        ++i_;
        n->a.push_back(parse_expr());
      } else {
        n->a.push_back(nullptr);
      }
      return n;
    }
    return e;
  }

  NodeP parse_or(bool no_cond) {
    NodeP l = parse_and();
    while (is_name("or")) {
      const Tok t = next_tok();
      NodeP n = node(Node::Or, t.line, t.col);
      n->a = {l, parse_and()};
      l = n;
    }
    (void)no_cond;
    return l;
  }
  NodeP parse_and() {
    NodeP l = parse_not();
    while (is_name("and")) {
      const Tok t = next_tok();
      NodeP n = node(Node::And, t.line, t.col);
      n->a = {l, parse_not()};
      l = n;
    }
    return l;
  }
  NodeP parse_not() {
    if (is_name("not")) {
      const Tok t = next_tok();
      NodeP n = node(Node::Not, t.line, t.col);
      n->a.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }
  NodeP parse_compare() {
    NodeP l = parse_math1();
    NodeP cmp;
    for (;;) {
      std::string op;
      if (cur().t == Tok::Op && (cur().s == "==" || cur().s == "!=" || cur().s == "<" || cur().s == ">" ||
                                 cur().s == "<=" || cur().s == ">=")) {
        op = next_tok().s;
      } else if (is_name("in")) {
        ++i_;
        op = "in";
      } else if (is_name("not") && t_[i_ + 1].t == Tok::NameT && t_[i_ + 1].s == "in") {
        i_ += 2;
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Node::Compare, l->line, l->col);
        cmp->a.push_back(l);
      }
      cmp->names.push_back(op);
      cmp->a.push_back(parse_math1());
    }
    return cmp ? cmp : l;
  }
  NodeP bin(const std::string& op, NodeP l, NodeP r, const Tok& t) {
    NodeP n = node(Node::Bin, t.line, t.col);
    n->s = op;
    n->a = {std::move(l), std::move(r)};
    return n;
  }
  NodeP parse_math1() {
    NodeP l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Tok t = next_tok();
      l = bin(t.s, l, parse_concat(), t);
    }
    return l;
  }
  NodeP parse_concat() {
    NodeP l = parse_math2();
    while (is_op("~")) {
      const Tok t = next_tok();
      l = bin("~", l, parse_math2(), t);
    }
    return l;
  }
  NodeP parse_math2() {
    NodeP l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Tok t = next_tok();
      l = bin(t.s, l, parse_pow(), t);
    }
    return l;
  }
  NodeP parse_pow() {
    NodeP l = parse_unary(true);
    while (is_op("**")) {
      const Tok t = next_tok();
      l = bin("**", l, parse_unary(true), t);
    }
    return l;
  }
  NodeP parse_unary(bool with_filter) {
    NodeP n;
    if (is_op("-") || is_op("+")) {
      const Tok t = next_tok();
      n = node(t.s == "-" ? Node::Neg : Node::Pos, t.line, t.col);
      n->a.push_back(parse_unary(false));
    } else {
      n = parse_postfix(parse_primary());
    }
    if (with_filter) n = parse_filter_expr(n);
    return n;
  }
  NodeP parse_primary() {
    const Tok t = next_tok();
    switch (t.t) {
      case Tok::Str: {
        // Adjacent string literals concatenate, as in Python.
        std::string s = t.s;
        while (cur().t == Tok::Str) s += next_tok().s;
        NodeP n = node(Node::Lit, t.line, t.col);
        n->lit = Value(s);
        return n;
      }
      case Tok::IntT:
      case Tok::FloatT: {
        NodeP n = node(Node::Lit, t.line, t.col);
        n->lit = t.v;
        return n;
      }
      case Tok::NameT: {
        NodeP n = node(Node::Lit, t.line, t.col);
        if (t.s == "true" || t.s == "True") n->lit = Value(true);
        else if (t.s == "false" || t.s == "False") n->lit = Value(false);
        else if (t.s == "none" || t.s == "None") n->lit = Value::none();
        else {
          n->k = Node::Name;
          n->s = t.s;
        }
        return n;
      }
      case Tok::Op:
        if (t.s == "(") {
          if (is_op(")")) {
            ++i_;
            NodeP empty = node(Node::ListE, t.line, t.col);  // the empty tuple
            empty->negate = true;
            return empty;
          }
          NodeP e = parse_expr();
          if (is_op(",")) {
            NodeP l = node(Node::ListE, t.line, t.col);
            l->negate = true;  // a tuple
            l->a.push_back(e);
            while (is_op(",")) {
              ++i_;
              if (is_op(")")) break;
              l->a.push_back(parse_expr());
            }
            e = l;
          }
          expect_op(")");
          return e;
        }
        if (t.s == "[") {
          NodeP l = node(Node::ListE, t.line, t.col);
          while (!is_op("]")) {
            l->a.push_back(parse_expr());
            if (!is_op(",")) break;
            ++i_;
          }
          expect_op("]");
          return l;
        }
        if (t.s == "{") {
          NodeP d = node(Node::DictE, t.line, t.col);
          while (!is_op("}")) {
            d->a.push_back(parse_expr());
            expect_op(":");
            d->a.push_back(parse_expr());
            if (!is_op(",")) break;
            ++i_;
          }
          expect_op("}");
          return d;
        }
        break;
      default: break;
    }
    --i_;
    fail(cur(), "unexpected" + found().substr(std::strlen(", found")));
  }
  NodeP parse_postfix(NodeP n) {
    for (;;) {
      if (is_op(".")) {
        const Tok t = next_tok();
        NodeP a = node(Node::Attr, t.line, t.col);
        if (cur().t == Tok::IntT) {  // foo.0 is foo[0]
          a->k = Node::Item;
          NodeP idx = node(Node::Lit, cur().line, cur().col);
          idx->lit = next_tok().v;
          a->a = {n, idx};
        } else {
          a->s = expect_name();
          a->a = {n};
        }
        n = a;
      } else if (is_op("[")) {
        const Tok t = next_tok();
        NodeP parts[3] = {nullptr, nullptr, nullptr};
        bool slice = false;
        int k = 0;
        while (!is_op("]")) {
          if (is_op(":")) {
            slice = true;
            ++i_;
            if (++k > 2) fail(cur(), "a slice takes at most three parts");
            continue;
          }
          parts[k] = parse_expr();
          if (!is_op(":") && !is_op("]")) fail(cur(), "expected ']'" + found());
        }
        expect_op("]");
        NodeP s = node(slice ? Node::Slice : Node::Item, t.line, t.col);
        if (slice) s->a = {n, parts[0], parts[1], parts[2]};
        else {
          if (!parts[0]) fail(t, "an empty subscript");
          s->a = {n, parts[0]};
        }
        n = s;
      } else if (is_op("(")) {
        const Tok t = cur();
        NodeP c = node(Node::Call, t.line, t.col);
        c->a.push_back(n);
        parse_call_args(c);
        n = c;
      } else {
        return n;
      }
    }
  }
  void parse_call_args(const NodeP& c) {
    expect_op("(");
    while (!is_op(")")) {
      if (cur().t == Tok::NameT && t_[i_ + 1].t == Tok::Op && t_[i_ + 1].s == "=") {
        const std::string k = next_tok().s;
        ++i_;
        c->kw.emplace_back(k, parse_expr());
      } else {
        if (!c->kw.empty()) fail(cur(), "a positional argument follows a keyword argument");
        c->a.push_back(parse_expr());
      }
      if (!is_op(",")) break;
      ++i_;
    }
    expect_op(")");
  }
  // value | f1(args) | f2 ... and value is [not] test [args]
  NodeP parse_filter_expr(NodeP n) {
    for (;;) {
      if (is_op("|")) {
        ++i_;
        n = parse_one_filter(n);
      } else if (is_name("is")) {
        const Tok t = next_tok();
        NodeP tn = node(Node::Test, t.line, t.col);
        if (is_name("not")) {
          ++i_;
          tn->negate = true;
        }
        tn->s = expect_name();
        if (tn->s == "none" || tn->s == "true" || tn->s == "false") {
          // names that are also literals
        }
        tn->a.push_back(n);
        if (is_op("(")) {
          parse_call_args(tn);
        } else if (cur().t == Tok::Str || cur().t == Tok::IntT || cur().t == Tok::FloatT || is_op("[") || is_op("{") ||
                   (cur().t == Tok::NameT && !is_name("and") && !is_name("or") && !is_name("if") && !is_name("else") &&
                    !is_name("is") && !is_name("in") && !is_name("not"))) {
          tn->a.push_back(parse_postfix(parse_primary()));  // "is divisibleby 3", "is sameas false"
        }
        n = tn;
      } else {
        return n;
      }
    }
  }
  NodeP parse_one_filter(NodeP n) {
    const Tok t = cur();
    NodeP f = node(Node::Filter, t.line, t.col);
    f->s = expect_name();
    f->a.push_back(n);
    if (is_op("(")) parse_call_args(f);
    return f;
  }
  // {% filter a | b(x) %}: the chain applied to the block's text (operand null).
  NodeP parse_filter_chain(NodeP n) {
    n = parse_one_filter(n);
    while (is_op("|")) {
      ++i_;
      n = parse_one_filter(n);
    }
    return n;
  }

  std::vector<Tok> t_;
  size_t i_ = 0;
  const std::string& name_;
  bool has_generation_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Renderer

namespace {

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

  [[noreturn]] void fail(const Node& n, const std::string& msg) const { fail_at(tname, n.line, n.col, msg); }

  void write(const std::string& s, const Node& n) {
    out->append(s);
    if (out->size() > limits.max_output) fail(n, "the rendering exceeds " + std::to_string(limits.max_output) + " bytes");
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes.rbegin(); it != scopes.rend(); ++it)
      if (const Value* v = (*it)->find(name)) return *v;
    return Value::undefined(name);
  }
  void assign(const std::string& name, Value v) { scopes.back()->set(name, std::move(v)); }

  std::string undefined_msg(const Value& v) const {
    return v.str().empty() ? "a value is undefined" : "'" + v.str() + "' is undefined";
  }

  // ---- statements
  Flow exec(const Node& n) {
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

  std::string capture(const Node& body) {
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

  template <class F>
  void unpack(const Node& n, const std::vector<std::string>& names, const Value& v, F&& put) {
    std::vector<Value> items = iterate(v, n);
    if (items.size() != names.size())
      fail(n, "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(names.size()) + " names");
    for (size_t i = 0; i < names.size(); ++i) put(names[i], items[i]);
  }

  // The items a for loop visits: a list's items, a dict's keys, a string's characters.
  std::vector<Value> iterate(const Value& v, const Node& n) {
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

  Flow exec_for(const Node& n) {
    std::vector<Value> items = iterate(eval(*n.a[0]), *n.a[0]);
    // The filter runs before the loop variable's counters are set, as in jinja2.
    if (n.cond) {
      std::vector<Value> kept;
      for (const auto& it : items) {
        scopes.push_back(std::make_shared<Dict>());
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
      if (++iterations > limits.max_iterations) fail(n, "more than " + std::to_string(limits.max_iterations) + " loop iterations");
      auto scope = std::make_shared<Dict>();
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

  void bind_target(const Node& n, const Value& item) {
    if (n.names.size() == 1) assign(n.names[0], item);
    else unpack(n, n.names, item, [&](const std::string& k, Value x) { assign(k, std::move(x)); });
  }

  // A macro (or a call block's caller) as a function value. Its body sees the template's top-level
  // variables and its own parameters.
  Value make_macro(const Node& def, const Node* body) {
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
          auto local = std::make_shared<Dict>();
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
  Args eval_args(const Node& call, size_t first = 1) {
    Args a;
    for (size_t i = first; i < call.a.size(); ++i) a.pos.push_back(eval(*call.a[i]));
    for (const auto& [k, v] : call.kw) a.kw.emplace_back(k, eval(*v));
    return a;
  }

  Value invoke(const Value& fn, Args& args, const Node& at) {
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

  Value eval(const Node& n) {
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
        if (v.kind() == Value::Int || v.kind() == Value::Bool) return Value(-v.integer());
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

  static int64_t py_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  }

  Value binary(const std::string& op, const Value& l, const Value& r, const Node& n) {
    if (op == "~") return Value(l.to_str() + r.to_str());
    if (l.is_undefined() || r.is_undefined()) fail(n, undefined_msg(l.is_undefined() ? l : r));
    const bool ints = (l.kind() == Value::Int || l.kind() == Value::Bool) && (r.kind() == Value::Int || r.kind() == Value::Bool);
    if (op == "+") {
      if (l.is_string() && r.is_string()) return Value(l.str() + r.str());
      if (l.is_list() && r.is_list()) {
        List x = l.list();
        x.insert(x.end(), r.list().begin(), r.list().end());
        return Value(std::move(x));
      }
      if (l.is_number() && r.is_number()) return ints ? Value(l.integer() + r.integer()) : Value(l.number() + r.number());
    } else if (op == "-") {
      if (l.is_number() && r.is_number()) return ints ? Value(l.integer() - r.integer()) : Value(l.number() - r.number());
    } else if (op == "*") {
      if (l.is_number() && r.is_number()) return ints ? Value(l.integer() * r.integer()) : Value(l.number() * r.number());
      const Value* s = l.is_string() ? &l : r.is_string() ? &r : nullptr;
      const Value* k = l.is_string() ? &r : &l;
      if (s && (k->kind() == Value::Int || k->kind() == Value::Bool)) {
        if (k->integer() * static_cast<int64_t>(s->str().size()) > static_cast<int64_t>(limits.max_output))
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
        return ints ? Value(py_floordiv(l.integer(), r.integer())) : Value(std::floor(l.number() / r.number()));
      }
    } else if (op == "%") {
      if (l.is_number() && r.is_number()) {
        if (r.number() == 0) fail(n, "modulo by zero");
        if (ints) {
          int64_t m = l.integer() % r.integer();
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
          int64_t x = 1;
          for (int64_t i = 0; i < r.integer() && i < 64; ++i) x *= l.integer();
          return Value(x);
        }
        return Value(std::pow(l.number(), r.number()));
      }
    }
    fail(n, "unsupported operand types for " + op + ": '" + l.type_name() + "' and '" + r.type_name() + "'");
  }

  bool contains(const Value& hay, const Value& needle, const Node& n) {
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

  int order(const Value& l, const Value& r, const Node& n) {
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

  bool compare(const std::string& op, const Value& l, const Value& r, const Node& n) {
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
  static std::vector<int64_t> slice_indices(int64_t len, const Value& a, const Value& b, const Value& c) {
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
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(i);
    return idx;
  }

  Value slice(const Value& v, const Node& n) {
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

  Value get_item(const Value& v, const Value& key, const Node& n) {
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
  Value get_attr(const Value& v, const std::string& name, const Node& n) {
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

  static std::string strip_chars(const std::string& s, const Value& chars, bool left, bool right) {
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

  static List split(const std::string& s, const Value& sep, int64_t maxsplit) {
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

  static std::string replace_all(std::string s, const std::string& from, const std::string& to, int64_t count = -1) {
    if (from.empty()) {
      // Python inserts `to` between every character (and at both ends).
      const std::u32string u = utf8_to_u32(s);
      std::string o;
      int64_t done = 0;
      for (size_t i = 0; i <= u.size(); ++i) {
        if (count < 0 || done < count) o += to, ++done;
        if (i < u.size()) o += u32_to_utf8(std::u32string(1, u[i]));
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
      p = q + from.size();
      ++done;
    }
    return o + s.substr(p);
  }

  static std::string title_case(const std::string& s) {
    std::u32string u = utf8_to_u32(s);
    bool prev_cased = false;
    for (auto& c : u) {
      const bool is_cased = cased(c);
      if (is_cased) c = prev_cased ? to_lower(c) : to_upper(c);
      prev_cased = is_cased;
    }
    return u32_to_utf8(u);
  }
  static std::string lower(const std::string& s) {
    std::u32string u = utf8_to_u32(s);
    for (auto& c : u) c = to_lower(c);
    return u32_to_utf8(u);
  }
  static std::string upper(const std::string& s) {
    std::u32string u = utf8_to_u32(s);
    for (auto& c : u) c = to_upper(c);
    return u32_to_utf8(u);
  }
  static std::string capitalize(const std::string& s) {
    std::u32string u = utf8_to_u32(lower(s));
    if (!u.empty()) u[0] = to_upper(u[0]);
    return u32_to_utf8(u);
  }

  static bool starts_or_ends(const std::string& s, const Value& what, bool start) {
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

  Value str_method(const std::string& s, const std::string& name) {
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
      f = [s](Args& a) {
        return Value(replace_all(s, a.get(0, "old").to_str(), a.get(1, "new").to_str(), a.get(2, "count", Value(-1)).integer()));
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
      f = [s](Args& a) {
        std::string o;
        Value it = a.get(0, "iterable");
        if (!it.is_list()) throw Error("join() needs a list");
        for (size_t i = 0; i < it.list().size(); ++i) o += (i ? s : "") + it.list()[i].to_str();
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

  static List dict_items(const Value& d) {
    List out;
    for (const auto& [k, v] : d.dict().items) out.push_back(Value::tuple(List{Value(k), v}));
    return out;
  }

  Value dict_method(const Value& d, const std::string& name) {
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
  Value attr_path(const Value& v, const std::string& path, const Node& n) {
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
  Value get_item_soft(const Value& v, const std::string& k, const Node& n) {
    if (v.is_dict()) {
      if (const Value* x = v.dict().find(k)) return *x;
      return Value::undefined(k);
    }
    return get_attr(v, k, n);
  }

  Value apply_filter_chain(const Node& f, const Value& text) {
    if (!f.a[0]) return apply_filter(f, text);
    return apply_filter(f, apply_filter_chain(*f.a[0], text));
  }

  Value apply_filter(const Node& n, const Value& v) {
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

  std::vector<Value> seq(const Value& v, const Node& n) { return iterate(v, n); }

  bool run_test(const std::string& name, const Value& v, const std::vector<Value>& args, const Node& n) {
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
      return d.integer() != 0 && v.integer() % d.integer() == 0;
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

  bool apply_test(const Node& n) {
    const Value v = eval(*n.a[0]);
    std::vector<Value> args;
    for (size_t i = 1; i < n.a.size(); ++i) args.push_back(eval(*n.a[i]));
    return run_test(n.s, v, args, n);
  }

  Value filter(const std::string& f, const Value& v, Args& a, const Node& n) {
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
      return Value(to_json(v, ind.is_undefined() || ind.is_none() ? -1 : static_cast<int>(ind.integer())));
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
      for (size_t i = 0; i < items.size(); ++i)
        o += (i ? sep : "") + (attr.is_undefined() ? items[i] : attr_path(items[i], attr.to_str(), n)).to_str();
      return Value(o);
    }
    if (f == "replace") {
      return Value(replace_all(v.to_str(), a.get(0, "old").to_str(), a.get(1, "new").to_str(), a.get(2, "count", Value(-1)).is_none() ? -1 : a.get(2, "count", Value(-1)).integer()));
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
      Node fake = n;
      fake.s = a.pos[0].to_str();
      for (const auto& item : seq(v, n)) out.push_back(filter(fake.s, item, rest, fake));
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
      return Value(static_cast<int64_t>(std::llabs(v.integer())));
    }
    if (f == "int") {
      if (v.is_number()) return Value(v.integer());
      if (v.is_string()) {
        char* end = nullptr;
        const std::string s = strip_chars(v.str(), Value(), true, true);
        const long long x = std::strtoll(s.c_str(), &end, 10);
        if (end && *end == 0 && !s.empty()) return Value(static_cast<int64_t>(x));
        const double d = std::strtod(s.c_str(), &end);
        if (end && *end == 0 && !s.empty()) return Value(static_cast<int64_t>(d));
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
      const std::string pad = w.is_string() ? w.str() : std::string(static_cast<size_t>(std::max<int64_t>(0, w.integer())), ' ');
      const bool first = a.get(1, "first", Value(false)).truthy();
      const bool blank = a.get(2, "blank", Value(false)).truthy();
      const std::string s = v.to_str();
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
};

}  // namespace

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
  Lexer lx(src, name_);
  Parser p(lx.run(), name_);
  root_ = p.parse_template(&has_generation_);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

RenderResult Template::render(const Dict& vars, std::time_t now, const Limits& limits) const {
  Renderer r{name_, limits, now ? now : std::time(nullptr), {}, nullptr, nullptr, {}, 0, 0};
  auto globals = std::make_shared<Dict>();
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
                                [](Args& a) {
                                  auto d = std::make_shared<Dict>();
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
                              for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                                if (static_cast<int64_t>(l.size()) >= limits.max_iterations) throw Error("range() is too long");
                                l.emplace_back(i);
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
  auto caller_vars = std::make_shared<Dict>(vars);
  r.scopes.push_back(caller_vars);
  r.scopes.push_back(std::make_shared<Dict>());  // the template's own top-level variables
  RenderResult res;
  r.out = &res.text;
  r.root_out = &res.text;
  r.exec(*root_);
  res.generation_spans = std::move(r.spans);
  return res;
}

}  // namespace hone::jinja
