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
// For values in [0, 1] (ROUGE-L, chrF, a win rate counting ties half): the bootstrap interval, or
// when every resample has the same mean (all values equal: 0 of 10 wins) the Wilson interval at
// that mean, since a bounded variable's variance is at most p(1 - p) and "[0, 0] from 10
// examples" would claim certainty the data do not give.
Score bounded_mean_score(const std::vector<double>& x);
// sum(num) / sum(den) with rows resampled together (a token-weighted mean over rows).
Score ratio_score(const std::vector<double>& num, const std::vector<double>& den, int resamples = 2000, uint64_t seed = 0);
// exp() of each end of a score (perplexity from a mean log-loss).
Score exp_score(const Score& s);

nlohmann::json score_json(const Score& s);
Score score_from_json(const nlohmann::json& j);

}  // namespace hone
