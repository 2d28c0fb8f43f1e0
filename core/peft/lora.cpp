// LoRA attachment and PEFT adapter files. PEFT keys: "base_model.model.<module>.lora_A.weight"
// [r, in] and "...lora_B.weight" [out, r]; our module names are already the HF ones.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "peft/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/reward_head.h"
#include "model/value_head.h"

namespace hone {
namespace {

const std::string kPrefix = "base_model.model.";

std::string leaf(const std::string& name) {
  auto d = name.rfind('.');
  return d == std::string::npos ? name : name.substr(d + 1);
}

template <typename F>
void for_each_linear(CausalLM& m, F&& f) {
  for (auto& item : m->named_modules()) {
    if (item.key() == "lm_head") continue;
    if (auto* lin = dynamic_cast<LinearImpl*>(item.value().get())) f(item.key(), *lin);
  }
}

}  // namespace

int attach_lora(CausalLM& m, const LoraConfig& c, uint64_t seed) {
  auto targets = expand_lora_targets(c.targets);
  std::set<std::string> want(targets.begin(), targets.end());
  // On Phi-3's fused projections a target of one part adapts the fused layer (PEFT's default for
  // phi3 is qkv_proj, where Llama's is q_proj and v_proj).
  if (want.count("q_proj") || want.count("k_proj") || want.count("v_proj")) want.insert("qkv_proj");
  if (want.count("gate_proj") || want.count("up_proj")) want.insert("gate_up_proj");
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  int n = 0;
  for_each_linear(m, [&](const std::string& name, LinearImpl& lin) {
    if (!want.count(leaf(name))) return;
    lin.add_lora(c.r, c.alpha, c.dropout, c.rslora, gen);
    ++n;
  });
  if (n == 0) throw Error("no layer matched the LoRA targets");
  return n;
}

void set_lora_enabled(CausalLM& m, bool enabled) {
  for_each_linear(m, [&](const std::string&, LinearImpl& l) { l.lora_enabled = enabled; });
}
void set_lora_dropout(CausalLM& m, double p) {
  for_each_linear(m, [&](const std::string&, LinearImpl& l) { l.lora_dropout = p; });
}
int attach_critic_lora(CausalLM& m) {
  int n = 0;
  for_each_linear(m, [&](const std::string&, LinearImpl& l) {
    if (!l.has_lora()) return;
    l.add_critic_lora();
    ++n;
  });
  if (n == 0) throw Error("a critic adapter needs LoRA adapters on the model");
  return n;
}
void set_critic_active(CausalLM& m, bool on) {
  for_each_linear(m, [&](const std::string&, LinearImpl& l) { l.use_critic = on; });
}
void merge_lora(CausalLM& m) {
  for_each_linear(m, [&](const std::string&, LinearImpl& l) { l.merge_lora(); });
}
void unmerge_lora(CausalLM& m) {
  for_each_linear(m, [&](const std::string&, LinearImpl& l) { l.unmerge_lora(); });
}

int64_t quantize_base_nf4(CausalLM& m) {
  int64_t bytes = 0;
  for_each_linear(m, [&](const std::string&, LinearImpl& l) {
    l.quantize_nf4();
    bytes += l.nf4().bytes();
  });
  return bytes;
}

int64_t count_parameters(CausalLM& m, bool trainable_only) {
  int64_t n = 0;
  for (auto& p : m->parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

void save_peft_adapter(CausalLM& m, const LoraConfig& c, const std::string& base_model, const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  std::vector<at::Tensor> keep;
  std::vector<StWriteEntry> entries;
  std::vector<std::string> modules;
  for_each_linear(m, [&](const std::string& name, LinearImpl& l) {
    if (!l.has_lora()) return;
    if (l.lora_merged) throw Error("unmerge the adapter before saving it");
    modules.push_back(leaf(name));
    for (auto [suffix, t] : {std::make_pair(".lora_A.weight", l.lora_A->weight), std::make_pair(".lora_B.weight", l.lora_B->weight)}) {
      auto c32 = t.detach().to(at::kCPU, at::kFloat).contiguous();
      keep.push_back(c32);
      entries.push_back({kPrefix + name + suffix, StDtype::F32, std::vector<int64_t>(c32.sizes().begin(), c32.sizes().end()),
                         c32.data_ptr(), static_cast<size_t>(c32.numel() * 4)});
    }
  });
  if (entries.empty()) throw Error("the model has no LoRA adapter to save");
  // A reward model's score head trains in full beside the adapters: saved as PEFT saves
  // modules_to_save, under the module's own name, with task_type SEQ_CLS.
  bool score = false;
  for (auto& p : m->named_parameters()) {
    if (p.key() != "score.weight") continue;
    auto c32 = p.value().detach().to(at::kCPU, at::kFloat).contiguous();
    keep.push_back(c32);
    entries.push_back({kPrefix + p.key(), StDtype::F32, std::vector<int64_t>(c32.sizes().begin(), c32.sizes().end()),
                       c32.data_ptr(), static_cast<size_t>(c32.numel() * 4)});
    score = true;
  }
  std::set<std::string> uniq(modules.begin(), modules.end());
  nlohmann::json cfg = {{"peft_type", "LORA"},
                        {"task_type", score ? "SEQ_CLS" : "CAUSAL_LM"},
                        {"base_model_name_or_path", base_model},
                        {"r", c.r},
                        {"lora_alpha", c.alpha},
                        {"lora_dropout", c.dropout},
                        {"target_modules", std::vector<std::string>(uniq.begin(), uniq.end())},
                        {"bias", "none"},
                        {"fan_in_fan_out", false},
                        {"use_rslora", c.rslora},
                        {"use_dora", false},
                        {"modules_to_save", score ? nlohmann::json::array({"score"}) : nlohmann::json(nullptr)},
                        {"init_lora_weights", true},
                        {"inference_mode", true},
                        {"rank_pattern", nlohmann::json::object()},
                        {"alpha_pattern", nlohmann::json::object()}};
  write_safetensors(join_path(dir, "adapter_model.safetensors"), entries);
  write_file_atomic(join_path(dir, "adapter_config.json"), cfg.dump(2) + "\n");
  // A PPO policy's value head is a training aid, kept beside the adapter (as TRL keeps v_head
  // apart from a PEFT model) so that loading the adapter anywhere gives the policy alone.
  if (has_value_head(m)) save_value_head(m, dir);
}

LoraConfig load_peft_adapter(CausalLM& m, const std::string& dir) {
  const std::string cpath = join_path(dir, "adapter_config.json");
  if (!file_exists(cpath)) throw file_error(cpath, "not found (an adapter folder needs adapter_config.json)");
  LoraConfig c = parse_peft_adapter_config(read_json_file(cpath), cpath);
  const std::string wpath = join_path(dir, "adapter_model.safetensors");
  if (!file_exists(wpath)) {
    if (file_exists(join_path(dir, "adapter_model.bin")))
      throw file_error(join_path(dir, "adapter_model.bin"), "pickled adapters are never loaded; save it as safetensors");
    throw file_error(wpath, "not found");
  }
  SafetensorsFile st(wpath);
  std::map<std::string, LinearImpl*> lins;
  for_each_linear(m, [&](const std::string& name, LinearImpl& l) { lins[name] = &l; });
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  std::set<std::string> targets;
  at::NoGradGuard ng;
  for (const auto& t : st.tensors()) {
    std::string key = t.name;
    if (key.compare(0, kPrefix.size(), kPrefix) == 0) key = key.substr(kPrefix.size());
    if (key == "score.weight" || key == "score.modules_to_save.weight") {  // a reward model's head
      if (t.shape != std::vector<int64_t>{1, m->config.hidden_size})
        throw file_error(wpath, "tensor '" + t.name + "' must be [1, hidden_size] (a reward model's score head)");
      attach_score_head(m, 0);
      score_weight(m).copy_(tensor_from_bytes(st.data(t), t.dtype, t.shape, wpath + ": tensor '" + t.name + "'"));
      continue;
    }
    std::string which;
    for (const char* s : {".lora_A.weight", ".lora_B.weight"}) {
      const std::string suf = s;
      if (key.size() > suf.size() && key.compare(key.size() - suf.size(), suf.size(), suf) == 0) {
        which = suf;
        key = key.substr(0, key.size() - suf.size());
      }
    }
    if (which.empty()) throw file_error(wpath, "tensor '" + t.name + "' is not a LoRA A/B matrix");
    auto it = lins.find(key);
    if (it == lins.end()) throw file_error(wpath, "tensor '" + t.name + "' names a module this model does not have");
    LinearImpl& l = *it->second;
    const bool is_a = which == ".lora_A.weight";
    if (t.shape.size() != 2) throw file_error(wpath, "tensor '" + t.name + "' is not a matrix");
    const int64_t r = is_a ? t.shape[0] : t.shape[1];
    if ((is_a && t.shape[1] != l.in_features) || (!is_a && t.shape[0] != l.out_features))
      throw file_error(wpath, "tensor '" + t.name + "' does not fit the layer's shape");
    if (!l.has_lora()) l.add_lora(r, c.alpha, c.dropout, c.rslora, gen);
    if (l.lora_rank() != r) throw file_error(wpath, "tensor '" + t.name + "' has rank " + std::to_string(r) + ", its pair has another");
    auto src = tensor_from_bytes(st.data(t), t.dtype, t.shape, wpath + ": tensor '" + t.name + "'");
    auto& dst = is_a ? l.lora_A->weight : l.lora_B->weight;
    dst.copy_(src.to(dst.scalar_type()));
    targets.insert(leaf(key));
  }
  c.targets.assign(targets.begin(), targets.end());
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  for_each_linear(m, [&](const std::string&, LinearImpl& l) {
    if (l.has_lora()) {
      l.lora_A->weight.set_requires_grad(true);
      l.lora_B->weight.set_requires_grad(true);
    }
  });
  if (has_score_head(m)) score_weight(m).set_requires_grad(true);
  return c;
}

}  // namespace hone
