// Reading a JSON file whose parse errors name the file.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace hone {

// Throws hone::Error "path: bad JSON: ..." (or the read error) instead of a bare parser exception.
nlohmann::json read_json_file(const std::string& path);

}  // namespace hone
