// Rule rewards for RL fine-tuning without writing code: exact match against the row's reference
// answer, similarity to it (partial credit), a regular expression, valid JSON (optionally against a
// JSON schema), a length window;
// combined as a weighted sum in the run config ("rewards": [{"type": ..., "weight": ...}, ...]).
// Every rule sees the completion with the whitespace around it trimmed.
// Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hone {

class Regex;

struct RewardRule {
  std::string type;  // exact | similarity | regex | json | length
  double weight = 1.0;
  std::string pattern;          // regex: PCRE2, searched anywhere unless anchored
  bool ignore_case = false;     // exact, similarity
  nlohmann::json schema;        // json: null = any valid JSON
  int64_t min_chars = 0, max_chars = 0;  // length: the window, in characters (max 0 = no upper bound)
  std::shared_ptr<Regex> re;    // compiled pattern
};

class RuleReward {
 public:
  RuleReward() = default;
  // `rules`: the run config's "rewards" array; `where` names the config in errors (the rule's index too).
  RuleReward(const nlohmann::json& rules, const std::string& where);
  bool empty() const { return rules_.empty(); }
  // Weighted sum of the rules' scores (each 0 or 1; similarity in [0, 1]) for a completion;
  // `reference` is the row's answer ("" when it has none: exact and similarity then score 0).
  double score(const std::string& completion, const std::string& reference) const;
  // Each rule's score, in order (for per-rule metrics).
  std::vector<double> scores(const std::string& completion, const std::string& reference) const;
  double max_score() const;  // sum of the positive weights
  const std::vector<RewardRule>& rules() const { return rules_; }

 private:
  std::vector<RewardRule> rules_;
};

// 1 - Levenshtein distance / the longer length, over Unicode code points: 1 for equal strings, 0
// for strings with nothing in place (the similarity rule; 1 for two empty strings).
double edit_similarity(const std::string& a, const std::string& b);

// Whether `value` satisfies `schema` (type, properties, required, additionalProperties false, items,
// enum, const, minimum/maximum, minLength/maxLength, minItems/maxItems): the parts of JSON Schema
// that structured-output tasks use. Unknown keywords are ignored, as the specification says.
bool json_matches_schema(const nlohmann::json& value, const nlohmann::json& schema);

}  // namespace hone
