// Export calibration (see calibrate.h): every linear layer's input observed through
// LinearImpl::observe, the head's through the final hidden states.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/calibrate.h"

#include <ATen/ATen.h>

#include <map>

#include "common/error.h"
#include "model/linear.h"

namespace hone {

namespace {

struct Sums {
  at::Tensor sq;  // [in] fp64: sum over tokens of x^2
  int64_t tokens = 0;
  void add(const at::Tensor& x) {
    const at::Tensor x2 = x.detach().reshape({-1, x.size(-1)}).to(at::kDouble);  // [N, in]
    at::Tensor s = (x2 * x2).sum(0);
    sq = sq.defined() ? sq + s : s;
    tokens += x2.size(0);
  }
};

}  // namespace

GgufImportance gather_importance(CausalLM& m, const std::vector<std::vector<int64_t>>& inputs,
                                 const std::function<void(size_t, size_t)>& progress) {
  if (inputs.empty()) throw Error("calibration: no sequences to calibrate on");
  std::map<std::string, Sums> sums;
  std::vector<LinearImpl*> observed;
  // The observers are removed however this returns: a model left observing would slow every later
  // forward pass and keep growing these sums.
  struct Unobserve {
    std::vector<LinearImpl*>* layers;
    ~Unobserve() {
      for (auto* l : *layers) l->observe = nullptr;
    }
  } unobserve{&observed};
  for (auto& kv : m->named_modules()) {
    auto* l = kv.value()->as<LinearImpl>();
    if (!l || kv.key().find("lora_") != std::string::npos || kv.key().find("critic_") != std::string::npos) continue;
    Sums* s = &sums[kv.key() + ".weight"];
    l->observe = [s](const at::Tensor& x) { s->add(x); };
    observed.push_back(l);
  }
  at::NoGradGuard ng;
  m->eval();
  const at::Device dev = m->output_weight().device();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor ids = at::tensor(inputs[i], at::kLong).to(dev).unsqueeze(0);  // [1, T]
    sums["lm_head.weight"].add(m->hidden(ids).to(at::kFloat));                     // [1, T, H]
    if (progress) progress(i + 1, inputs.size());
  }
  GgufImportance out;
  for (auto& [name, s] : sums) {
    if (!s.sq.defined() || s.tokens == 0) continue;
    at::Tensor mean = (s.sq / static_cast<double>(s.tokens)).to(at::kFloat).contiguous();  // [in]
    mean = mean + 0.01 * mean.mean();
    out[name] = std::vector<float>(mean.data_ptr<float>(), mean.data_ptr<float>() + mean.numel());
  }
  return out;
}

}  // namespace hone
