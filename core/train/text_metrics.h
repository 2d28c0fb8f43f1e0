// Task metrics for generated answers against a reference: exact match and containment after
// whitespace normalisation, ROUGE-L F1, chrF, and the rule rewards' regex / JSON / JSON-schema
// checks, chosen by name ("exact_match", "contains", "rouge_l", "chrf", "json_valid",
// "regex:PATTERN", "json_schema:FILE"). docs/evaluation.md defines each. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

#include "train/rule_reward.h"

namespace hone {

// Whitespace trimmed at both ends and each inner run of it made one space; case is kept (the
// demo's capitalise skill is a case question).
std::string normalise_answer(const std::string& s);
bool exact_match(const std::string& answer, const std::string& reference);
bool contains_reference(const std::string& answer, const std::string& reference);
// F1 of the longest common subsequence of words (runs of ASCII letters and digits, lower-cased;
// any non-ASCII byte counts as a letter), as the rouge-score package tokenizes; 0 when either is empty.
double rouge_l_f1(const std::string& answer, const std::string& reference);
// chrF (Popović 2015) as sacrebleu computes it by default: character n-grams of orders 1-6 with
// whitespace removed, precision and recall averaged over the orders both sides have, F-beta with
// beta = 2; in [0, 1] (sacrebleu prints 100x this).
double chrf(const std::string& answer, const std::string& reference);

// The metrics of a generate evaluation, parsed once from their names.
class AnswerMetrics {
 public:
  // Throws naming an unknown metric (and the ones there are).
  explicit AnswerMetrics(const std::vector<std::string>& names);
  static std::vector<std::string> defaults();  // exact_match, contains, rouge_l, chrf
  const std::vector<std::string>& names() const { return names_; }
  // Whether metric i scores 0 or 1 (a proportion, with a Wilson interval) or in between (a mean).
  bool binary(size_t i) const;
  std::vector<double> score(const std::string& answer, const std::string& reference) const;

 private:
  std::vector<std::string> names_;
  std::vector<RuleReward> rules_;  // per metric; empty for the built-in ones
};

}  // namespace hone
