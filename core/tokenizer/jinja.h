// A Jinja engine for chat templates: the subset Hugging Face checkpoints' chat_template strings
// use, configured as transformers configures jinja2 (trim_blocks, lstrip_blocks, loop controls,
// an immutable sandbox, its tojson, raise_exception and strftime_now), so that a template renders
// byte for byte as it does in Python. Sandboxed: no file or process access, bounded loop
// iterations, recursion and output size. Errors name the template line and column.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace hone::jinja {

struct Node;

struct Limits {
  size_t max_output = 64u << 20;    // bytes of rendered text
  int64_t max_iterations = 10'000'000;  // loop iterations and macro calls over the whole render
  int max_depth = 200;              // nested macro calls
};

struct RenderResult {
  std::string text;
  // Byte ranges of the output written inside {% generation %} ... {% endgeneration %} blocks
  // (transformers' assistant-token mask for templates that mark their assistant turns).
  std::vector<std::pair<size_t, size_t>> generation_spans;
};

class Template {
 public:
  // Parses `source`; throws hone::Error "<name> line L, column C: ..." on a syntax error.
  explicit Template(const std::string& source, std::string name = "chat template");
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with the given variables (messages, add_generation_prompt, bos_token, tools, ...).
  // `now` is what strftime_now formats (the current local time when 0). Throws hone::Error naming
  // the line and column, or the template's own raise_exception message.
  RenderResult render(const Dict& vars, std::time_t now = 0, const Limits& limits = {}) const;

  // True when the template marks assistant turns with {% generation %} blocks.
  bool has_generation_blocks() const { return has_generation_; }

 private:
  std::string name_;
  std::shared_ptr<Node> root_;
  bool has_generation_ = false;
};

}  // namespace hone::jinja
