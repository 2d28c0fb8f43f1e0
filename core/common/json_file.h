// Reading a JSON file whose parse errors name the file.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace hone {

// Throws hone::Error "path: bad JSON: ..." (or the read error) instead of a bare parser exception.
// Refuses text nested deeper than kMaxJsonNesting (see json_nesting).
nlohmann::json read_json_file(const std::string& path);

// How deep arrays and objects nest in JSON text (brackets inside strings do not count). nlohmann
// parses any depth but copies and prints values recursively: a file of 100,000 nested brackets
// overflowed the stack when Hone copied or printed a value from it. Real files nest a few levels.
constexpr size_t kMaxJsonNesting = 512;
size_t json_nesting(const std::string& text);
// Throws hone::Error "<what>: JSON nested more than 512 levels deep" when json_nesting(text) is
// beyond kMaxJsonNesting.
void check_json_nesting(const std::string& text, const std::string& what);

// A JSON number as an integer within [lo, hi]: an integer, or a float without a fraction (2.0).
// False for anything else: nlohmann's get<int64_t>() of 1e300 is a cast with undefined behaviour.
bool json_integer(const nlohmann::json& v, int64_t lo, int64_t hi, int64_t* out);

}  // namespace hone
