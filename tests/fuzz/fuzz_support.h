// Shared pieces of the fuzz targets: the input as a scratch file for readers that take a path,
// and the rule that only hone::Error may come out of a parser.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/error.h"

namespace hone::fuzz {

// A folder of this process's own under $TMPDIR (removed at exit), so that parallel fuzzers
// (-jobs, ctest -j) never share a file.
inline std::string& scratch_dir_storage() {
  static std::string dir;
  return dir;
}
inline const std::string& scratch_dir() {
  std::string& dir = scratch_dir_storage();
  if (dir.empty()) {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/hone-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("hone fuzz: mkdtemp");
      std::abort();
    }
    dir = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir_storage(), ec);
    });
  }
  return dir;
}

// Writes the input to scratch_dir()/name (replacing the last one) and returns its path.
inline std::string scratch_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror("hone fuzz: open");
    std::abort();
  }
  size_t off = 0;
  while (off < size) {
    const ssize_t w = ::write(fd, data + off, size - off);
    if (w <= 0) {
      std::perror("hone fuzz: write");
      std::abort();
    }
    off += static_cast<size_t>(w);
  }
  ::close(fd);
  return path;
}

inline std::string as_string(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

// Runs f; a hone::Error (the documented way to refuse bad input) is the expected outcome. Any
// other exception (a bare nlohmann::json exception, std::out_of_range, std::bad_alloc, ...)
// propagates, and libFuzzer reports it as a crash: its message would not name the file.
template <class F>
void expect_errors_only(F&& f) {
  try {
    f();
  } catch (const hone::Error&) {
  }
}

}  // namespace hone::fuzz
