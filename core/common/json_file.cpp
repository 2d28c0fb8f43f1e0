// JSON file reading with the file named in errors.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/json_file.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/files.h"

namespace hone {

size_t json_nesting(const std::string& text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character, a quote included
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

void check_json_nesting(const std::string& text, const std::string& what) {
  if (json_nesting(text) > kMaxJsonNesting)
    throw Error(what + ": JSON nested more than " + std::to_string(kMaxJsonNesting) + " levels deep");
}

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_file(path);
  check_json_nesting(text, path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("bad JSON: ") + e.what());
  }
}

bool json_integer(const nlohmann::json& v, int64_t lo, int64_t hi, int64_t* out) {
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    x = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 is the first double past int64 (int64's max itself is not a double).
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::trunc(d)) return false;
    x = static_cast<int64_t>(d);
  } else {
    return false;
  }
  if (x < lo || x > hi) return false;
  *out = x;
  return true;
}

}  // namespace hone
