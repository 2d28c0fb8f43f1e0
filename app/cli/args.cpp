// hone-cli argument parsing.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/args.h"

#include "common/error.h"
#include "common/files.h"

namespace hone::cli {

Args::Args(int argc, char** argv, int start, const std::string& command, const std::vector<std::string>& values,
           const std::vector<std::string>& flags, std::string action)
    : command_(command), action_(std::move(action)) {
  const std::set<std::string> value_opts(values.begin(), values.end()), flag_opts(flags.begin(), flags.end());
  for (int i = start; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) {
      std::string key = a.substr(2), val;
      bool inline_val = false;
      auto eq = key.find('=');
      if (eq != std::string::npos) {
        val = key.substr(eq + 1);
        key = key.substr(0, eq);
        inline_val = true;
      }
      if (key == "help" || flag_opts.count(key)) {
        if (inline_val) throw Error(command_ + ": option --" + key + " takes no value");
        flags_.insert(key);
      } else if (value_opts.count(key)) {
        if (!inline_val) {
          if (i + 1 >= argc) throw Error(command_ + ": option --" + key + " needs a value");
          val = argv[++i];
        }
        values_[key] = val;
        repeated_[key].push_back(val);
      } else {
        std::string known;
        for (const auto& v : values) known += (known.empty() ? "" : ", ") + ("--" + v + " X");
        for (const auto& f : flags) known += (known.empty() ? "" : ", ") + ("--" + f);
        throw Error(command_ + ": unknown option --" + key + " (" + (known.empty() ? "it takes none" : "its options: " + known) + ")");
      }
    } else {
      positional_.push_back(a);
    }
  }
}

std::string Args::get(const std::string& k, const std::string& def) const {
  auto it = values_.find(k);
  return it == values_.end() ? def : it->second;
}

std::vector<std::string> Args::all(const std::string& k) const {
  auto it = repeated_.find(k);
  return it == repeated_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::require(const std::string& k) const {
  auto it = values_.find(k);
  if (it == values_.end()) throw Error(command_ + ": --" + k + " is required (see --help)");
  return it->second;
}

int64_t Args::integer(const std::string& k, int64_t def) const {
  auto it = values_.find(k);
  if (it == values_.end()) return def;
  try {
    size_t pos = 0;
    long long v = std::stoll(it->second, &pos);
    if (pos != it->second.size()) throw 0;
    return v;
  } catch (...) {
    throw Error(command_ + ": --" + k + " expects an integer, got '" + it->second + "'");
  }
}

double Args::number(const std::string& k, double def) const {
  auto it = values_.find(k);
  if (it == values_.end()) return def;
  try {
    size_t pos = 0;
    double v = std::stod(it->second, &pos);
    if (pos != it->second.size()) throw 0;
    return v;
  } catch (...) {
    throw Error(command_ + ": --" + k + " expects a number, got '" + it->second + "'");
  }
}

std::string text_argument(const Args& a) {
  if (a.has("text") == a.has("text-file")) throw Error("give exactly one of --text or --text-file");
  if (a.has("text")) return a.get("text");
  return read_file(a.get("text-file"));
}

}  // namespace hone::cli
