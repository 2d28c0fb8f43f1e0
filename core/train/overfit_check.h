// The overfitting warning the Train and Runs pages show: the held-out loss has risen at several
// evaluations in a row, well above its best, while the training loss kept falling. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hone {

struct OverfitWarning {
  bool warn = false;
  int64_t best_step = 0;             // the evaluation with the lowest held-out loss
  double best_eval = 0, last_eval = 0;
  double train_then = 0, train_now = 0;  // mean training loss around best_step and over the last stretch
  std::string message;                   // one line for the pages ("" when no warning)
};

// (step, value) series of the training loss and the held-out loss. Warns when the last `rises`
// held-out evaluations each rose, the last is over `margin` above the best, and the mean training
// loss since the best evaluation is below the mean over the same number of steps before it.
OverfitWarning check_overfitting(const std::vector<std::pair<int64_t, double>>& train_loss,
                                 const std::vector<std::pair<int64_t, double>>& eval_loss, int rises = 3,
                                 double margin = 0.05);

}  // namespace hone
