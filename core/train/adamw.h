// AdamW (decoupled weight decay, PyTorch semantics) with plain-tensor state that is saved to and
// restored from safetensors, so that a resumed run continues bit for bit.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace hone {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

struct NamedParam {
  std::string name;
  at::Tensor param;
  bool decay;  // false for norms and biases
};

class AdamW {
 public:
  AdamW(std::vector<NamedParam> params, AdamWConfig cfg);
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return t_; }
  const std::vector<NamedParam>& params() const { return params_; }
  // Global L2 norm of the gradients; scales them down to max_norm when above (max_norm <= 0: no clip).
  double clip_grad_norm(double max_norm);
  // An in-memory copy of the moments, step count and parameters, to roll back updates of a step
  // that is interrupted part-way (PPO takes several optimizer updates per step).
  struct Snapshot {
    std::vector<at::Tensor> params, m, v;
    int64_t t = 0;
  };
  Snapshot snapshot() const;
  void restore(const Snapshot& s);
  void save(const std::string& path) const;
  void load(const std::string& path);
  int64_t state_bytes() const;

 private:
  std::vector<NamedParam> params_;
  std::vector<at::Tensor> m_, v_;
  AdamWConfig cfg_;
  int64_t t_ = 0;
};

// Norms and biases get no weight decay (what HF Trainer and TRL do).
bool decays(const std::string& param_name);

}  // namespace hone
