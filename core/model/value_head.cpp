// PPO's value head (see value_head.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/value_head.h"

#include "common/error.h"
#include "common/files.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

namespace hone {

namespace {

struct SummaryImpl : torch::nn::Module {
  explicit SummaryImpl(int64_t hidden) {
    weight = register_parameter("weight", at::zeros({1, hidden}, at::kFloat));
    bias = register_parameter("bias", at::zeros({1}, at::kFloat));
  }
  at::Tensor weight, bias;  // [1, H], [1]
};
TORCH_MODULE(Summary);

struct ValueHeadImpl : torch::nn::Module {
  explicit ValueHeadImpl(int64_t hidden) { summary = register_module("summary", Summary(hidden)); }
  Summary summary{nullptr};
};
TORCH_MODULE(ValueHead);

ValueHeadImpl* head_of(CausalLM& m) {
  for (auto& c : m->named_children())
    if (c.key() == "v_head") return c.value()->as<ValueHeadImpl>();
  return nullptr;
}

ValueHeadImpl& need(CausalLM& m) {
  ValueHeadImpl* h = head_of(m);
  if (!h) throw Error("the model has no value head");
  return *h;
}

}  // namespace

void attach_value_head(CausalLM& m) {
  if (has_value_head(m)) return;
  ValueHead h(m->config.hidden_size);
  h->to(m->output_weight().device());
  m->register_module("v_head", h);
}

bool has_value_head(CausalLM& m) { return head_of(m) != nullptr; }

at::Tensor value_of_hidden(CausalLM& m, const at::Tensor& h) {
  auto& s = *need(m).summary;
  return at::linear(h.to(at::kFloat), s.weight, s.bias).squeeze(-1);  // [...]
}

bool is_value_model_tensor(const std::string& name) {
  return name.rfind("v_head.", 0) == 0 || name.find(".critic_A.") != std::string::npos ||
         name.find(".critic_B.") != std::string::npos;
}

void save_value_head(CausalLM& m, const std::string& adapter_dir) {
  need(m);
  std::vector<at::Tensor> keep;
  std::vector<StWriteEntry> entries;
  for (auto& p : m->named_parameters()) {
    if (!is_value_model_tensor(p.key())) continue;
    auto c32 = p.value().detach().to(at::kCPU, at::kFloat).contiguous();
    keep.push_back(c32);
    entries.push_back({p.key(), StDtype::F32, std::vector<int64_t>(c32.sizes().begin(), c32.sizes().end()), c32.data_ptr(),
                       static_cast<size_t>(c32.numel() * 4)});
  }
  write_safetensors(join_path(adapter_dir, kValueHeadFile), entries);
}

void load_value_head(CausalLM& m, const std::string& adapter_dir) {
  const std::string path = join_path(adapter_dir, kValueHeadFile);
  if (!file_exists(path)) throw file_error(path, "not found: this adapter has no value head");
  need(m);
  SafetensorsFile f(path);
  at::NoGradGuard ng;
  for (auto& p : m->named_parameters()) {
    if (!is_value_model_tensor(p.key())) continue;
    const std::string& name = p.key();
    at::Tensor dst = p.value();
    const StTensorInfo* t = f.find(name);
    if (!t) throw file_error(path, "lacks tensor '" + name + "'");
    if (t->shape != std::vector<int64_t>(dst.sizes().begin(), dst.sizes().end()))
      throw file_error(path, "tensor '" + name + "' has another shape than this model's value model");
    dst.copy_(tensor_from_bytes(f.data(*t), t->dtype, t->shape, path + ": tensor '" + name + "'"));
  }
}

}  // namespace hone
