// The Jinja engine's syntax tree (tokenizer/jinja.h): what the parser builds and the renderer
// walks; and the one way its errors name the template's line and column. Internal to the engine.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "tokenizer/jinja.h"

namespace hone::jinja {

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

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Frees the subtree without recursing: a template is anyone's, and a chain like 1+1+1+... is a
  // tree as deep as it is long.
  ~Node();
};

// How deep trees may nest (nested blocks, brackets, operator and filter chains): the renderer
// walks them recursively. Real chat templates stay under 30.
constexpr int kMaxNesting = 256;

[[noreturn]] inline void fail_at(const std::string& tname, int line, int col, const std::string& msg) {
  throw Error(tname + " line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + msg);
}

inline NodeP node(Node::Kind k, int line, int col) {
  auto n = std::make_shared<Node>();
  n->k = k;
  n->line = line;
  n->col = col;
  return n;
}

}  // namespace hone::jinja
