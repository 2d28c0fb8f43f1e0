// AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)   (torch.optim.AdamW, non-amsgrad).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/adamw.h"
#include <ATen/record_function.h>

#include <cmath>
#include <map>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

namespace hone {

bool decays(const std::string& n) {
  return n.find("norm") == std::string::npos && !(n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0);
}

AdamW::AdamW(std::vector<NamedParam> params, AdamWConfig cfg) : params_(std::move(params)), cfg_(cfg) {
  for (auto& p : params_) {
    m_.push_back(at::zeros_like(p.param, at::MemoryFormat::Contiguous));
    v_.push_back(at::zeros_like(p.param, at::MemoryFormat::Contiguous));
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.param.grad().defined()) p.param.mutable_grad() = at::Tensor();
}

double AdamW::clip_grad_norm(double max_norm) {
  RECORD_FUNCTION("hone::optimizer", std::vector<c10::IValue>());
  at::NoGradGuard ng;
  double sq = 0;
  for (auto& p : params_)
    if (p.param.grad().defined()) sq += p.param.grad().to(at::kFloat).pow(2).sum().item<double>();
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm && std::isfinite(norm)) {
    const double s = max_norm / (norm + 1e-6);
    for (auto& p : params_)
      if (p.param.grad().defined()) p.param.grad().mul_(s);
  }
  return norm;
}

void AdamW::step(double lr) {
  RECORD_FUNCTION("hone::optimizer", std::vector<c10::IValue>());
  at::NoGradGuard ng;
  ++t_;
  const double bc1 = 1 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1 - std::pow(cfg_.beta2, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].param;
    if (!p.grad().defined()) continue;
    const auto& g = p.grad();
    if (params_[i].decay && cfg_.weight_decay != 0) p.mul_(1 - lr * cfg_.weight_decay);
    m_[i].mul_(cfg_.beta1).add_(g, 1 - cfg_.beta1);
    v_[i].mul_(cfg_.beta2).addcmul_(g, g, 1 - cfg_.beta2);
    auto denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(cfg_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

int64_t AdamW::state_bytes() const {
  int64_t n = 0;
  for (size_t i = 0; i < m_.size(); ++i) n += (m_[i].numel() + v_[i].numel()) * m_[i].element_size();
  return n;
}

AdamW::Snapshot AdamW::snapshot() const {
  at::NoGradGuard ng;
  Snapshot s;
  s.t = t_;
  for (size_t i = 0; i < params_.size(); ++i) {
    s.params.push_back(params_[i].param.detach().clone());
    s.m.push_back(m_[i].clone());
    s.v.push_back(v_[i].clone());
  }
  return s;
}

void AdamW::restore(const Snapshot& s) {
  at::NoGradGuard ng;
  t_ = s.t;
  for (size_t i = 0; i < params_.size(); ++i) {
    params_[i].param.detach().copy_(s.params[i]);
    m_[i].copy_(s.m[i]);
    v_[i].copy_(s.v[i]);
  }
}

void AdamW::save(const std::string& path) const {
  std::vector<at::Tensor> keep;
  std::vector<StWriteEntry> e;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [suffix, t] : {std::make_pair(".exp_avg", m_[i]), std::make_pair(".exp_avg_sq", v_[i])}) {
      auto c = t.detach().to(at::kCPU).contiguous();
      keep.push_back(c);
      e.push_back({params_[i].name + suffix, st_dtype_of(c.scalar_type()), std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
                   c.data_ptr(), static_cast<size_t>(c.numel() * c.element_size())});
    }
  }
  write_safetensors(path, e, {{"format", "pt"}, {"step", std::to_string(t_)}});
}

void AdamW::load(const std::string& path) {
  SafetensorsFile st(path);
  auto it = st.metadata().find("step");
  if (it == st.metadata().end()) throw file_error(path, "optimizer state has no step count");
  t_ = std::stoll(it->second);
  at::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [suffix, dst] : {std::make_pair(".exp_avg", &m_[i]), std::make_pair(".exp_avg_sq", &v_[i])}) {
      const auto* info = st.find(params_[i].name + suffix);
      if (!info) throw file_error(path, "optimizer state lacks '" + params_[i].name + suffix + "'");
      auto t = tensor_from_bytes(st.data(*info), info->dtype, info->shape, path);
      if (t.sizes() != dst->sizes()) throw file_error(path, "optimizer state '" + params_[i].name + suffix + "' has the wrong shape");
      dst->copy_(t);
    }
  }
}

}  // namespace hone
