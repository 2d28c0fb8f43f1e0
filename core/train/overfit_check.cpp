// The overfitting warning (see overfit_check.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/overfit_check.h"

#include <algorithm>
#include <cstdio>

namespace hone {

OverfitWarning check_overfitting(const std::vector<std::pair<int64_t, double>>& train_loss,
                                 const std::vector<std::pair<int64_t, double>>& eval_loss, int rises, double margin) {
  OverfitWarning w;
  const size_t n = eval_loss.size();
  if (n < static_cast<size_t>(rises) + 1 || train_loss.empty()) return w;
  for (size_t i = n - static_cast<size_t>(rises); i < n; ++i)
    if (!(eval_loss[i].second > eval_loss[i - 1].second)) return w;
  const auto best = std::min_element(eval_loss.begin(), eval_loss.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  w.best_step = best->first;
  w.best_eval = best->second;
  w.last_eval = eval_loss.back().second;
  if (!(w.last_eval > w.best_eval * (1 + margin))) return w;
  // Training loss over the steps after the best evaluation, against as many steps before it.
  const int64_t span = eval_loss.back().first - w.best_step;
  if (span <= 0) return w;
  double before = 0, after = 0;
  int nb = 0, na = 0;
  for (const auto& [step, v] : train_loss) {
    if (step > w.best_step && step <= eval_loss.back().first) after += v, ++na;
    else if (step <= w.best_step && step > w.best_step - span) before += v, ++nb;
  }
  if (nb == 0 || na == 0) return w;
  w.train_then = before / nb;
  w.train_now = after / na;
  if (!(w.train_now < w.train_then)) return w;
  w.warn = true;
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "Overfitting: the held-out loss rose from %.3g at step %lld to %.3g at step %lld while the training loss "
                "fell from %.3g to %.3g. Train fewer steps or epochs, add data, or use the checkpoint nearest step %lld.",
                w.best_eval, static_cast<long long>(w.best_step), w.last_eval, static_cast<long long>(eval_loss.back().first),
                w.train_then, w.train_now, static_cast<long long>(w.best_step));
  w.message = buf;
  return w;
}

}  // namespace hone
