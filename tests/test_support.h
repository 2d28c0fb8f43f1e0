// Shared helpers for Hone's tests: paths of test data, temporary folders, running hone-cli.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/files.h"

namespace hone::test {

inline std::string shared(const std::string& rel) { return std::string(HONE_SHARED_TESTDATA) + "/" + rel; }
inline std::string source(const std::string& rel) { return std::string(HONE_SOURCE_DIR) + "/" + rel; }

// A fresh folder under the build's test-work area, unique per process and name.
inline std::string temp_dir(const std::string& name) {
  std::string base = HONE_TEST_WORK;
  ::mkdir(base.c_str(), 0755);
  std::string d = base + "/" + name + "-" + std::to_string(::getpid());
  std::string cmd = "rm -rf '" + d + "' && mkdir -p '" + d + "'";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot create " + d);
  return d;
}

// Waits for child `pid` for at most `seconds`; one that has not ended by then (a deadlocked
// signal handler, a rank that never notices its peer died) is killed, so that the test fails
// instead of hanging the suite. Returns the wait status; `hung` says whether it had to be killed.
inline int wait_bounded(pid_t pid, double seconds, bool& hung) {
  int st = 0;
  hung = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (::waitpid(pid, &st, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      hung = true;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return st;
}

inline nlohmann::json load_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

struct RunResult {
  int code;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a shell command line, capturing stdout and stderr separately.
inline RunResult run(const std::string& cmdline) {
  static int n = 0;
  std::string errf = std::string(HONE_TEST_WORK) + "/stderr-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  ::mkdir(HONE_TEST_WORK, 0755);
  FILE* p = ::popen((cmdline + " 2>'" + errf + "'").c_str(), "r");
  RunResult r{-1, {}, {}};
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t k;
  while ((k = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), k);
  int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  try {
    r.err = read_file(errf);
  } catch (...) {
  }
  ::unlink(errf.c_str());
  return r;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// hone-cli with these arguments (a shell command line: quote paths with shell_quote).
inline RunResult cli(const std::string& args) { return run(std::string(HONE_CLI) + " " + args); }

// A folder for hone-cli tests: a tiny model with Hone's own tokenizer (init-model, `seed`), a
// workspace path, and 200 instruction rows written by `row(i)` to train.jsonl.
struct CliFixture {
  std::string dir, ws, model, data;
};
inline CliFixture make_cli_fixture(const std::string& name, int seed, const std::function<nlohmann::json(int)>& row) {
  CliFixture x;
  x.dir = temp_dir(name);
  x.ws = x.dir + "/ws";
  x.model = x.dir + "/model";
  auto r = cli("init-model --preset tiny --tokenizer builtin --out " + shell_quote(x.model) + " --seed " + std::to_string(seed));
  if (r.code != 0) throw std::runtime_error("init-model failed: " + r.err);
  x.data = x.dir + "/train.jsonl";
  std::string rows;
  for (int i = 0; i < 200; ++i) rows += row(i).dump() + "\n";
  write_file_atomic(x.data, rows);
  return x;
}

}  // namespace hone::test
