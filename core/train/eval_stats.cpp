// Scores with intervals (see eval_stats.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/eval_stats.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace hone {
namespace {

constexpr double kZ = 1.959963984540054;  // the normal quantile for a two-sided 95% interval

// Percentile p (0..1) of sorted values, interpolated between neighbours.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  const double f = pos - static_cast<double>(i);
  return i + 1 < sorted.size() ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

// The Wilson score interval of a proportion p observed over n examples; exact at the ends (the
// formula leaves ~1e-18 there).
Score wilson(double p, int64_t n) {
  Score s;
  s.n = n;
  if (n <= 0) {
    s.hi = 1;
    return s;
  }
  const double N = static_cast<double>(n), z2 = kZ * kZ;
  const double centre = (p + z2 / (2 * N)) / (1 + z2 / N);
  const double half = kZ * std::sqrt(p * (1 - p) / N + z2 / (4 * N * N)) / (1 + z2 / N);
  s.value = p;
  s.lo = p <= 0 ? 0.0 : std::max(0.0, centre - half);
  s.hi = p >= 1 ? 1.0 : std::min(1.0, centre + half);
  return s;
}

}  // namespace

Score proportion_score(int64_t k, int64_t n) { return wilson(n > 0 ? static_cast<double>(k) / static_cast<double>(n) : 0, n); }

Score ratio_score(const std::vector<double>& num, const std::vector<double>& den, int resamples, uint64_t seed) {
  Score s;
  const size_t n = std::min(num.size(), den.size());
  s.n = static_cast<int64_t>(n);
  if (n == 0) return s;
  double a = 0, b = 0;
  for (size_t i = 0; i < n; ++i) a += num[i], b += den[i];
  s.value = b != 0 ? a / b : 0;
  if (n == 1) {
    s.lo = s.hi = s.value;
    return s;
  }
  std::mt19937_64 rng(seed);
  // rng() % n rather than a distribution object, whose draws differ between standard libraries:
  // the same interval on every build (the modulo bias is below 1e-17 for n this small).
  std::vector<double> stats;
  stats.reserve(static_cast<size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    double x = 0, y = 0;
    for (size_t i = 0; i < n; ++i) {
      const size_t j = static_cast<size_t>(rng() % n);
      x += num[j], y += den[j];
    }
    stats.push_back(y != 0 ? x / y : 0);
  }
  std::sort(stats.begin(), stats.end());
  s.lo = percentile(stats, 0.025);
  s.hi = percentile(stats, 0.975);
  return s;
}

Score mean_score(const std::vector<double>& x, int resamples, uint64_t seed) {
  return ratio_score(x, std::vector<double>(x.size(), 1.0), resamples, seed);
}

Score bounded_mean_score(const std::vector<double>& x) {
  const Score s = mean_score(x);
  return s.n > 0 && s.lo == s.hi ? wilson(s.value, s.n) : s;
}

Score exp_score(const Score& s) { return {std::exp(s.value), std::exp(s.lo), std::exp(s.hi), s.n}; }

nlohmann::json score_json(const Score& s) { return {{"value", s.value}, {"ci95", {s.lo, s.hi}}, {"n", s.n}}; }

Score score_from_json(const nlohmann::json& j) {
  Score s;
  s.value = j.value("value", 0.0);
  if (j.contains("ci95") && j["ci95"].is_array() && j["ci95"].size() == 2) {
    s.lo = j["ci95"][0].get<double>();
    s.hi = j["ci95"][1].get<double>();
  }
  s.n = j.value("n", int64_t{0});
  return s;
}

}  // namespace hone
