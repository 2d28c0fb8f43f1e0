// Learning-rate schedules with linear warmup, as transformers' get_*_schedule_with_warmup.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>

namespace hone {

// kind: constant | linear | cosine. Returns the multiplier of the peak learning rate at `step`
// (0-based optimizer step), for `total` steps with `warmup` warmup steps.
double lr_multiplier(const std::string& kind, int64_t step, int64_t total, int64_t warmup);

}  // namespace hone
