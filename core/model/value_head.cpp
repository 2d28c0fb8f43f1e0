// PPO's value head (see value_head.h).
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

void save_value_head(CausalLM& m, const std::string& adapter_dir) {
  auto& s = *need(m).summary;
  auto w = s.weight.detach().to(at::kCPU, at::kFloat).contiguous();
  auto b = s.bias.detach().to(at::kCPU, at::kFloat).contiguous();
  write_safetensors(join_path(adapter_dir, kValueHeadFile),
                    {{"v_head.summary.weight", StDtype::F32, {1, w.size(1)}, w.data_ptr(), static_cast<size_t>(w.numel() * 4)},
                     {"v_head.summary.bias", StDtype::F32, {1}, b.data_ptr(), 4}});
}

void load_value_head(CausalLM& m, const std::string& adapter_dir) {
  const std::string path = join_path(adapter_dir, kValueHeadFile);
  if (!file_exists(path)) throw file_error(path, "not found: this adapter has no value head");
  SafetensorsFile f(path);
  auto& s = *need(m).summary;
  at::NoGradGuard ng;
  for (auto [name, dst] : {std::make_pair("v_head.summary.weight", s.weight), std::make_pair("v_head.summary.bias", s.bias)}) {
    const StTensorInfo* t = f.find(name);
    if (!t) throw file_error(path, std::string("lacks tensor '") + name + "'");
    if (t->shape != std::vector<int64_t>(dst.sizes().begin(), dst.sizes().end()))
      throw file_error(path, std::string("tensor '") + name + "' has another shape than this model's value head");
    dst.copy_(tensor_from_bytes(f.data(*t), t->dtype, t->shape, path + ": tensor '" + name + "'"));
  }
}

}  // namespace hone
