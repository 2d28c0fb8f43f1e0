// Template bodies for train/recipe.h.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <algorithm>
#include <random>

namespace hone {

template <typename T>
void hold_out(std::vector<T>& train, std::vector<T>& eval, double fraction, uint64_t seed) {
  if (!eval.empty() || fraction <= 0 || train.empty()) return;
  std::vector<size_t> idx(train.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::mt19937_64 rng(seed * 7919 + 17);
  for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
  const size_t n_eval = std::max<size_t>(1, static_cast<size_t>(fraction * idx.size()));
  std::vector<T> tr, ev;
  for (size_t k = 0; k < idx.size(); ++k) (k < n_eval ? ev : tr).push_back(std::move(train[idx[k]]));
  train = std::move(tr);
  eval = std::move(ev);
}

}  // namespace hone
