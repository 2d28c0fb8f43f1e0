// Schedules (hf-compat.md §7): warmup step/W; cosine 0.5*(1+cos(pi*p)), p = (step-W)/(T-W);
// linear (T-step)/(T-W).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace hone {

double lr_multiplier(const std::string& kind, int64_t step, int64_t total, int64_t warmup) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  if (kind == "constant") return 1.0;
  const double p = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  if (kind == "linear") return std::max(0.0, 1.0 - p);
  if (kind == "cosine") return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * p)));
  throw Error("unknown learning-rate schedule \"" + kind + "\" (constant, linear, cosine)");
}

}  // namespace hone
