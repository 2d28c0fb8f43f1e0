// JSON file reading with the file named in errors.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/json_file.h"

#include "common/error.h"
#include "common/files.h"

namespace hone {

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("bad JSON: ") + e.what());
  }
}

}  // namespace hone
