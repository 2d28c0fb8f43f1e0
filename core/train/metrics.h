// Named scalars: what a training step or an evaluation reports, as (name, value) pairs in the order
// the recipe produced them. Every sink (metrics.jsonl, the store, CLI JSON, plots) iterates over
// them, so a new recipe's metrics reach all of them without touching any. Torch-free (ui/ uses it).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace hone {

struct Scalar {
  std::string name;
  double value = 0;
};
using Scalars = std::vector<Scalar>;

// Value of `name` in `s`, or `fallback` when absent.
inline double scalar_value(const Scalars& s, const std::string& name, double fallback = NAN) {
  for (const auto& x : s)
    if (x.name == name) return x.value;
  return fallback;
}
inline bool has_scalar(const Scalars& s, const std::string& name) {
  for (const auto& x : s)
    if (x.name == name) return true;
  return false;
}
// Sets or appends.
inline void set_scalar(Scalars& s, const std::string& name, double v) {
  for (auto& x : s)
    if (x.name == name) {
      x.value = v;
      return;
    }
  s.push_back({name, v});
}

// One optimizer step as reported to the front ends. `scalars` holds everything recorded for the
// step: loss, lr, grad_norm, tokens_per_s, elapsed_s, the recipe's own (rewards/margins, ...) and,
// on evaluation steps, eval_loss and the recipe's eval_* values.
struct StepMetrics {
  int64_t step = 0, total_steps = 0;  // step counts finished optimizer steps
  double epoch = 0;
  double eta_s = 0;
  // Resident memory the process needs (anonymous + shared; pages of mapped model files, which the
  // kernel can drop, are not counted: common/memory_use.h), now and at its peak (what must fit).
  int64_t rss_bytes = 0;
  int64_t peak_rss_bytes = 0;
  bool paused = false;
  Scalars scalars;
  // Names the recipe suggests plotting beside the loss (DPO: rewards/margins, rewards/accuracies).
  std::vector<std::string> plot_hints;

  double get(const std::string& name, double fallback = NAN) const { return scalar_value(scalars, name, fallback); }
  bool has(const std::string& name) const { return has_scalar(scalars, name); }
  double loss() const { return get("loss"); }
  bool has_eval() const { return has("eval_loss"); }
};

}  // namespace hone
