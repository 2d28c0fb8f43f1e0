// The Jinja engine's parser: tokens into a syntax tree by recursive descent with jinja2's operator
// precedence. Internal to the engine (tokenizer/jinja.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace hone::jinja {

// The template's body; has_generation: whether it holds {% generation %} blocks. Throws naming
// the line and column of a syntax error.
NodeP parse_template(std::vector<Tok> toks, const std::string& name, bool* has_generation);

}  // namespace hone::jinja
