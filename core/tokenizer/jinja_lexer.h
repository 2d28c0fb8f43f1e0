// The Jinja engine's lexer: template text into tokens with jinja2's whitespace rules (trim_blocks,
// lstrip_blocks, the "-" and "+" markers). Internal to the engine (tokenizer/jinja.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace hone::jinja {

struct Tok {
  enum T { TextT, VarBegin, VarEnd, BlockBegin, BlockEnd, NameT, Str, IntT, FloatT, Op, End } t;
  std::string s;
  Value v;
  int line = 0, col = 0;
};

// The tokens of a template (its "\r\n" already read as "\n"); throws naming the line and column.
std::vector<Tok> lex_template(const std::string& src, const std::string& name);

}  // namespace hone::jinja
