// The Jinja engine's parser (see jinja_parser.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "common/error.h"

namespace hone::jinja {
namespace {

// Parser (jinja2's precedence: or < and < not < compare/in/is < + - < ~ < * / // % < ** < unary;
// filters and tests bind to the unary operand; postfix . [] () tightest)

class Parser {
 public:
  Parser(std::vector<Tok> toks, const std::string& name) : t_(std::move(toks)), name_(name) {}

  NodeP parse_template(bool* has_generation) {
    std::string end;
    NodeP body = parse_body({}, &end);
    check_height(body);
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

  // The parser's own recursion (blocks in blocks, brackets, not not ..., - - ...), bounded before
  // the stack is: each recursive rule holds a Nest while it runs.
  struct Nest {
    Parser* p;
    explicit Nest(Parser* parser) : p(parser) {
      if (++p->depth_ > kMaxNesting) p->fail(p->cur(), "the template nests more than " + std::to_string(kMaxNesting) + " deep");
    }
    ~Nest() { --p->depth_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };
  // The tree's height, level by level (no recursion): chains (a + b + c ..., x | f | g ...) deepen
  // it without deepening the parser.
  void check_height(const NodeP& root) const {
    std::vector<const Node*> level{root.get()}, next;
    for (int h = 1; !level.empty(); ++h) {
      if (h > kMaxNesting)
        fail_at(name_, level.front()->line, level.front()->col,
                "expressions and blocks nest more than " + std::to_string(kMaxNesting) + " deep");
      next.clear();
      for (const Node* n : level) {
        for (const auto& c : n->a)
          if (c) next.push_back(c.get());
        for (const auto& c : n->b)
          if (c) next.push_back(c.get());
        for (const auto& kv : n->kw)
          if (kv.second) next.push_back(kv.second.get());
        if (n->cond) next.push_back(n->cond.get());
      }
      level.swap(next);
    }
  }

  // Statements up to one of `ends` (a block tag whose keyword is in the list), consumed; *end gets it.
  NodeP parse_body(const std::set<std::string>& ends, std::string* end) {
    const Nest nest(this);
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
    const Nest nest(this);
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
      const Nest nest(this);
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
      const Nest nest(this);
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
  int depth_ = 0;
};

}  // namespace

Node::~Node() {
  // Children only this node holds are moved to a list and freed from it one by one; each frees
  // its own children the same way, so the recursion is never more than one level.
  std::vector<NodeP> doomed;
  auto take = [&](NodeP& c) {
    if (c && c.use_count() == 1) doomed.push_back(std::move(c));
  };
  for (auto& c : a) take(c);
  for (auto& c : b) take(c);
  for (auto& kv : kw) take(kv.second);
  take(cond);
  while (!doomed.empty()) {
    NodeP n = std::move(doomed.back());
    doomed.pop_back();
    for (auto& c : n->a) take(c);
    for (auto& c : n->b) take(c);
    for (auto& kv : n->kw) take(kv.second);
    take(n->cond);
  }
}

NodeP parse_template(std::vector<Tok> toks, const std::string& name, bool* has_generation) {
  return Parser(std::move(toks), name).parse_template(has_generation);
}

}  // namespace hone::jinja
