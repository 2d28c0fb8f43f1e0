// hone-cli: the headless front end of Hone. Dispatches through the command table (commands.h);
// every failure becomes one line on stderr naming the file and the problem, and a non-zero exit code.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <c10/util/Exception.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "common/crash.h"
#include "common/runtime.h"

namespace {

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

int main(int argc, char** argv) {
  hone::tune_blas_kernel(argv);
  const bool help_only = argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
                         !std::strcmp(argv[1], "help") || !std::strcmp(argv[1], "--version");
  if (!help_only) {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    hone::install_crash_handler("hone-cli", ec ? std::string() : self.string());
  }
  try {
    if (!help_only) hone::init_runtime();
    return hone::cli::dispatch(argc, argv);
  } catch (const hone::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "error: " << first_line(e.what_without_backtrace()) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << first_line(e.what()) << "\n";
  }
  return 1;
}
