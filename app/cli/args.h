// Command-line parsing for every hone-cli command: --key value (or --key=value) options and --flag
// switches as the command table declares them (commands.h); an unknown option is an error that
// names it and lists the command's own.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace hone::cli {

class Args {
 public:
  // Parses argv[start..]; value_opts take a value, flag_opts do not. "--help" is always a flag.
  // `action` is the word the command took before its options (dataset import), if any.
  Args(int argc, char** argv, int start, const std::string& command, const std::vector<std::string>& value_opts,
       const std::vector<std::string>& flag_opts, std::string action = "");
  const std::string& action() const { return action_; }
  bool has(const std::string& k) const { return values_.count(k) || flags_.count(k); }
  bool flag(const std::string& k) const { return flags_.count(k) > 0; }
  std::string get(const std::string& k, const std::string& def = "") const;
  std::string require(const std::string& k) const;
  // Every value of an option given several times (get() returns the last).
  std::vector<std::string> all(const std::string& k) const;
  int64_t integer(const std::string& k, int64_t def) const;
  double number(const std::string& k, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Replaces an option's value (dispatch turns ORG/NAME model names into cache folders).
  void set(const std::string& k, const std::string& v) {
    values_[k] = v;
    repeated_[k] = {v};
  }

 private:
  std::string command_, action_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> repeated_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

// Text from --text or --text-file (exactly one of them).
std::string text_argument(const Args& a);

}  // namespace hone::cli
