// Rule rewards (see rule_reward.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/rule_reward.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/json_file.h"
#include "common/utf8.h"
#include "tokenizer/pretokenizer.h"

namespace hone {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t utf8_chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool type_matches(const nlohmann::json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::trunc(v.get<double>()));
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

}  // namespace

double edit_similarity(const std::string& a, const std::string& b) {
  auto points = [](const std::string& s) {
    std::vector<uint32_t> v;
    for (size_t i = 0; i < s.size();) v.push_back(utf8_next(s, i));
    return v;
  };
  const std::vector<uint32_t> x = points(a), y = points(b);
  if (x.empty() && y.empty()) return 1.0;
  // Levenshtein distance over code points, one row at a time: O(|x| |y|) time, O(|y|) memory.
  std::vector<size_t> row(y.size() + 1);
  for (size_t j = 0; j <= y.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= x.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= y.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (x[i - 1] == y[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return 1.0 - static_cast<double>(row[y.size()]) / static_cast<double>(std::max(x.size(), y.size()));
}

bool json_matches_schema(const nlohmann::json& v, const nlohmann::json& s) {
  if (s.is_boolean()) return s.get<bool>();
  if (!s.is_object()) return true;
  if (s.contains("type")) {
    const auto& t = s["type"];
    bool ok = false;
    if (t.is_string()) ok = type_matches(v, t.get<std::string>());
    else if (t.is_array())
      for (const auto& x : t) ok |= x.is_string() && type_matches(v, x.get<std::string>());
    if (!ok) return false;
  }
  if (s.contains("enum") && s["enum"].is_array() && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end())
    return false;
  if (s.contains("const") && s["const"] != v) return false;
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && s["minimum"].is_number() && x < s["minimum"].get<double>()) return false;
    if (s.contains("maximum") && s["maximum"].is_number() && x > s["maximum"].get<double>()) return false;
  }
  if (v.is_string()) {
    const double n = static_cast<double>(utf8_chars(v.get<std::string>()));
    if (s.contains("minLength") && s["minLength"].is_number() && n < s["minLength"].get<double>()) return false;
    if (s.contains("maxLength") && s["maxLength"].is_number() && n > s["maxLength"].get<double>()) return false;
  }
  if (v.is_array()) {
    // Compared as doubles: get<size_t>() of a negative or huge bound (-1, 1e300) is undefined.
    const double n = static_cast<double>(v.size());
    if (s.contains("minItems") && s["minItems"].is_number() && n < s["minItems"].get<double>()) return false;
    if (s.contains("maxItems") && s["maxItems"].is_number() && n > s["maxItems"].get<double>()) return false;
    if (s.contains("items") && s["items"].is_object())
      for (const auto& x : v)
        if (!json_matches_schema(x, s["items"])) return false;
  }
  if (v.is_object()) {
    if (s.contains("required") && s["required"].is_array())
      for (const auto& k : s["required"])
        if (k.is_string() && !v.contains(k.get<std::string>())) return false;
    const bool props = s.contains("properties") && s["properties"].is_object();
    if (props)
      for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it)
        if (v.contains(it.key()) && !json_matches_schema(v[it.key()], it.value())) return false;
    if (s.contains("additionalProperties") && s["additionalProperties"] == false)
      for (auto it = v.begin(); it != v.end(); ++it)
        if (!props || !s["properties"].contains(it.key())) return false;
  }
  return true;
}

RuleReward::RuleReward(const nlohmann::json& rules, const std::string& where) {
  if (!rules.is_array()) throw Error(where + ": \"rewards\" must be an array of rules");
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& r = rules[i];
    const std::string at = where + ": rewards[" + std::to_string(i) + "]";
    if (!r.is_object() || !r.contains("type") || !r["type"].is_string())
      throw Error(at + " needs a \"type\" (exact, similarity, regex, json or length)");
    static const std::vector<std::string> known = {"type", "weight", "pattern", "ignore_case", "schema", "min_chars", "max_chars"};
    for (auto it = r.begin(); it != r.end(); ++it)
      if (std::find(known.begin(), known.end(), it.key()) == known.end()) throw Error(at + ": unknown key \"" + it.key() + "\"");
    RewardRule rule;
    try {
      rule.type = r["type"].get<std::string>();
      rule.weight = r.value("weight", 1.0);
      rule.ignore_case = r.value("ignore_case", false);
    } catch (const nlohmann::json::exception&) {
      throw Error(at + ": a field has the wrong type");
    }
    for (const auto& [key, field] : {std::pair<const char*, int64_t*>{"min_chars", &rule.min_chars}, {"max_chars", &rule.max_chars}})
      if (r.contains(key) && !json_integer(r[key], 0, std::numeric_limits<int64_t>::max(), field))
        throw Error(at + ": \"" + key + "\" must be a non-negative integer");
    if (rule.type == "regex") {
      if (!r.contains("pattern") || !r["pattern"].is_string()) throw Error(at + ": a regex rule needs a \"pattern\"");
      rule.pattern = r["pattern"].get<std::string>();
      try {
        rule.re = std::make_shared<Regex>(rule.pattern);
      } catch (const std::exception& e) {
        throw Error(at + ": bad pattern: " + e.what());
      }
    } else if (rule.type == "json") {
      if (r.contains("schema")) rule.schema = r["schema"];
    } else if (rule.type == "length") {
      if (rule.min_chars < 0 || rule.max_chars < 0 || (rule.max_chars && rule.max_chars < rule.min_chars))
        throw Error(at + ": the length window needs 0 <= min_chars <= max_chars");
    } else if (rule.type != "exact" && rule.type != "similarity") {
      throw Error(at + ": unknown type \"" + rule.type + "\" (exact, similarity, regex, json or length)");
    }
    rules_.push_back(std::move(rule));
  }
}

std::vector<double> RuleReward::scores(const std::string& completion, const std::string& reference) const {
  std::vector<double> out;
  const std::string c = trim(completion);
  for (const auto& r : rules_) {
    bool ok = false;
    if (r.type == "similarity") {  // the one graded rule: partial credit
      const std::string ref = trim(reference);
      out.push_back(ref.empty() ? 0.0 : r.ignore_case ? edit_similarity(lower(c), lower(ref)) : edit_similarity(c, ref));
      continue;
    }
    if (r.type == "exact") {
      const std::string ref = trim(reference);
      ok = !ref.empty() && (r.ignore_case ? lower(c) == lower(ref) : c == ref);
    } else if (r.type == "regex") {
      ok = utf8_valid(c) && !r.re->find_all(c).empty();
    } else if (r.type == "json") {
      try {
        const nlohmann::json v = nlohmann::json::parse(c);
        ok = r.schema.is_null() || json_matches_schema(v, r.schema);
      } catch (const nlohmann::json::exception&) {
        ok = false;
      }
    } else if (r.type == "length") {
      const int64_t n = static_cast<int64_t>(utf8_chars(c));
      ok = n >= r.min_chars && (r.max_chars == 0 || n <= r.max_chars);
    }
    out.push_back(ok ? 1.0 : 0.0);
  }
  return out;
}

double RuleReward::score(const std::string& completion, const std::string& reference) const {
  const auto s = scores(completion, reference);
  double total = 0;
  for (size_t i = 0; i < s.size(); ++i) total += rules_[i].weight * s[i];
  return total;
}

double RuleReward::max_score() const {
  double m = 0;
  for (const auto& r : rules_) m += std::max(0.0, r.weight);
  return m;
}

}  // namespace hone
