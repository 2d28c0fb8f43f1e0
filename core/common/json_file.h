// Reading a JSON file whose parse errors name the file.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace hone {

// Throws hone::Error "path: bad JSON: ..." (or the read error) instead of a bare parser exception.
nlohmann::json read_json_file(const std::string& path);

// A JSON number as an integer within [lo, hi]: an integer, or a float without a fraction (2.0).
// False for anything else: nlohmann's get<int64_t>() of 1e300 is a cast with undefined behaviour.
bool json_integer(const nlohmann::json& v, int64_t lo, int64_t hi, int64_t* out);

}  // namespace hone
