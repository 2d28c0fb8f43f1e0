// Task metrics for generated answers (see text_metrics.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/text_metrics.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "common/error.h"
#include "common/json_file.h"
#include "common/utf8.h"

namespace hone {
namespace {

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::string w;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) w += static_cast<char>(std::tolower(c));
    else if (!w.empty()) out.push_back(std::move(w)), w.clear();
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

// Counts of the character n-grams of order n.
std::map<std::u32string, int> ngrams(const std::u32string& s, size_t n) {
  std::map<std::u32string, int> out;
  for (size_t i = 0; i + n <= s.size(); ++i) ++out[s.substr(i, n)];
  return out;
}

std::u32string code_points_without_space(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const uint32_t cp = utf8_next(s, i);
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v') continue;
    out.push_back(cp);
  }
  return out;
}

}  // namespace

std::string normalise_answer(const std::string& s) { return collapse_whitespace(s); }

bool exact_match(const std::string& answer, const std::string& reference) {
  return normalise_answer(answer) == normalise_answer(reference);
}

bool contains_reference(const std::string& answer, const std::string& reference) {
  const std::string r = normalise_answer(reference);
  return !r.empty() && normalise_answer(answer).find(r) != std::string::npos;
}

double rouge_l_f1(const std::string& answer, const std::string& reference) {
  const auto a = words(answer), r = words(reference);
  if (a.empty() || r.empty()) return 0;
  std::vector<int> prev(r.size() + 1, 0), cur(r.size() + 1, 0);  // LCS table, one row at a time
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= r.size(); ++j)
      cur[j] = a[i - 1] == r[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  const double lcs = prev[r.size()];
  if (lcs == 0) return 0;
  const double p = lcs / static_cast<double>(a.size()), rec = lcs / static_cast<double>(r.size());
  return 2 * p * rec / (p + rec);
}

double chrf(const std::string& answer, const std::string& reference) {
  const std::u32string h = code_points_without_space(answer), r = code_points_without_space(reference);
  double prec = 0, rec = 0;
  int orders = 0;
  for (size_t n = 1; n <= 6; ++n) {
    const auto hn = ngrams(h, n), rn = ngrams(r, n);
    if (hn.empty() || rn.empty()) continue;  // an order one side is too short for
    double hyp = 0, ref = 0, match = 0;
    for (const auto& [g, c] : hn) {
      hyp += c;
      auto it = rn.find(g);
      if (it != rn.end()) match += std::min(c, it->second);
    }
    for (const auto& [g, c] : rn) ref += c;
    prec += match / hyp;
    rec += match / ref;
    ++orders;
  }
  if (orders == 0) return 0;
  prec /= orders;
  rec /= orders;
  const double b2 = 4.0;  // beta = 2: recall weighs twice as much as precision
  return prec + rec > 0 ? (1 + b2) * prec * rec / (b2 * prec + rec) : 0;
}

AnswerMetrics::AnswerMetrics(const std::vector<std::string>& names) : names_(names) {
  if (names_.empty()) names_ = defaults();
  for (const auto& n : names_) {
    RuleReward rule;
    if (n == "json_valid") {
      rule = RuleReward(nlohmann::json::array({{{"type", "json"}}}), "metric json_valid");
    } else if (n.rfind("regex:", 0) == 0) {
      rule = RuleReward(nlohmann::json::array({{{"type", "regex"}, {"pattern", n.substr(6)}}}), "metric " + n);
    } else if (n.rfind("json_schema:", 0) == 0) {
      const nlohmann::json schema = read_json_file(n.substr(12));
      rule = RuleReward(nlohmann::json::array({{{"type", "json"}, {"schema", schema}}}), "metric " + n);
    } else if (n != "exact_match" && n != "contains" && n != "rouge_l" && n != "chrf") {
      throw Error("unknown metric \"" + n + "\" for answers (exact_match, contains, rouge_l, chrf, json_valid, regex:PATTERN, "
                  "json_schema:FILE)");
    }
    rules_.push_back(std::move(rule));
  }
}

std::vector<std::string> AnswerMetrics::defaults() { return {"exact_match", "contains", "rouge_l", "chrf"}; }

bool AnswerMetrics::binary(size_t i) const { return names_[i] != "rouge_l" && names_[i] != "chrf"; }

std::vector<double> AnswerMetrics::score(const std::string& answer, const std::string& reference) const {
  std::vector<double> out;
  for (size_t i = 0; i < names_.size(); ++i) {
    const std::string& n = names_[i];
    if (!rules_[i].empty()) out.push_back(rules_[i].score(answer, reference) > 0.5 ? 1 : 0);
    else if (n == "exact_match") out.push_back(exact_match(answer, reference));
    else if (n == "contains") out.push_back(contains_reference(answer, reference));
    else if (n == "rouge_l") out.push_back(rouge_l_f1(answer, reference));
    else out.push_back(chrf(answer, reference));
  }
  return out;
}

}  // namespace hone
