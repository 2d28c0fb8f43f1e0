// Scores with their uncertainty: a proportion with its Wilson score interval, a mean (or a ratio of
// sums, like a token-weighted loss) with a seeded percentile-bootstrap interval, each with the
// number of examples behind it; and their JSON form {"value", "ci95": [lo, hi], "n"}. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace hone {

struct Score {
  double value = 0, lo = 0, hi = 0;  // the estimate and its 95% interval
  int64_t n = 0;                     // examples
};

// k successes of n: k/n with the Wilson score interval (z = 1.96); n = 0 gives 0 [0, 1].
Score proportion_score(int64_t k, int64_t n);
// The mean of `x` with the 2.5th and 97.5th percentiles of `resamples` bootstrap means (seeded,
// so a score is the same every time it is computed).
Score mean_score(const std::vector<double>& x, int resamples = 2000, uint64_t seed = 0);
// sum(num) / sum(den) with rows resampled together (a token-weighted mean over rows).
Score ratio_score(const std::vector<double>& num, const std::vector<double>& den, int resamples = 2000, uint64_t seed = 0);
// exp() of each end of a score (perplexity from a mean log-loss).
Score exp_score(const Score& s);

nlohmann::json score_json(const Score& s);
Score score_from_json(const nlohmann::json& j);

}  // namespace hone
