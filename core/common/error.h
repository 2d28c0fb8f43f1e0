// Error type of the core: one message that names the file, line, row or tensor at fault.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <stdexcept>
#include <string>

namespace hone {

struct Error : std::runtime_error {
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown from inside a long computation (between decoder layers, forward or backward) when the
// user asked to stop; the training session turns it into a clean stop with a checkpoint.
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

// Prefixes a message with the file it concerns: "path: message".
inline Error file_error(const std::string& path, const std::string& msg) { return Error(path + ": " + msg); }

}  // namespace hone
