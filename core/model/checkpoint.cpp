// Model folder loading and saving. Untrusted input: shard names in the index must be plain file
// names in the folder; every expected tensor must be present once with the exact shape.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/cpu_allocator.h"
#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "common/json_file.h"

namespace hone {

at::ScalarType scalar_type_of(StDtype dt) {
  switch (dt) {
    case StDtype::F32: return at::kFloat;
    case StDtype::F16: return at::kHalf;
    case StDtype::BF16: return at::kBFloat16;
    case StDtype::F64: return at::kDouble;
    case StDtype::I64: return at::kLong;
    case StDtype::I32: return at::kInt;
    case StDtype::I16: return at::kShort;
    case StDtype::I8: return at::kChar;
    case StDtype::U8: return at::kByte;
    case StDtype::BOOL: return at::kBool;
    default: throw Error(std::string("dtype ") + st_dtype_name(dt) + " is not supported");
  }
}

StDtype st_dtype_of(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return StDtype::F32;
    case at::kHalf: return StDtype::F16;
    case at::kBFloat16: return StDtype::BF16;
    case at::kDouble: return StDtype::F64;
    case at::kLong: return StDtype::I64;
    case at::kInt: return StDtype::I32;
    case at::kShort: return StDtype::I16;
    case at::kChar: return StDtype::I8;
    case at::kByte: return StDtype::U8;
    case at::kBool: return StDtype::BOOL;
    default: throw Error("tensor dtype has no safetensors equivalent");
  }
}

at::Tensor tensor_from_bytes(const uint8_t* data, StDtype dt, const std::vector<int64_t>& shape, const std::string& what) {
  at::ScalarType st;
  try {
    st = scalar_type_of(dt);
  } catch (const Error&) {
    throw Error(what + ": dtype " + st_dtype_name(dt) + " cannot be loaded (use F32, F16 or BF16)");
  }
  auto t = at::empty(shape, at::TensorOptions(st));
  if (t.numel()) std::memcpy(t.data_ptr(), data, t.numel() * t.element_size());
  return t;
}

std::vector<std::string> checkpoint_files(const std::string& dir_or_ref) {
  const std::string dir = resolve_model_dir(dir_or_ref);
  if (!is_directory(dir)) throw file_error(dir, "model folder not found");
  const std::string index = join_path(dir, "model.safetensors.index.json");
  const std::string single = join_path(dir, "model.safetensors");
  if (file_exists(index)) {
    nlohmann::json j = read_json_file(index);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw file_error(index, "missing \"weight_map\" object");
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw file_error(index, "weight_map entry for '" + it.key() + "' is not a file name");
      std::string f = it.value();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        throw file_error(index, "weight_map names '" + f + "', which is not a plain file name in the folder");
      shards.insert(f);
    }
    std::vector<std::string> out;
    for (const auto& s : shards) {
      std::string p = join_path(dir, s);
      if (!file_exists(p)) throw file_error(p, "shard listed in model.safetensors.index.json is missing");
      out.push_back(p);
    }
    return out;
  }
  if (file_exists(single)) return {single};
  for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin", "consolidated.00.pth"}) {
    if (file_exists(join_path(dir, pickle)))
      throw file_error(join_path(dir, pickle),
                       "pickled PyTorch checkpoints are never loaded (unpickling runs arbitrary code); convert it to "
                       "safetensors first, e.g. in Python: safetensors.torch.save_file(torch.load(path, weights_only=True), "
                       "'model.safetensors')");
  }
  throw file_error(dir, "no model.safetensors or model.safetensors.index.json in the folder");
}

LoadedModel load_model(const std::string& dir_or_ref, const LoadOptions& opt) {
  const std::string dir = resolve_model_dir(dir_or_ref);
  auto t0 = std::chrono::steady_clock::now();
  LoadedModel lm;
  lm.dir = dir;
  lm.config = load_model_config(dir);
  auto files = checkpoint_files(dir);
  // Open every header first: a config that implies far more parameters than the files hold is
  // refused before anything is allocated (untrusted folders must not trigger huge allocations).
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  int64_t file_params = 0;
  for (const auto& f : files) {
    shards.push_back(std::make_unique<SafetensorsFile>(f));
    for (const auto& t : shards.back()->tensors())
      if (!text_model_tensor_name(lm.config, t.name).empty()) file_params += t.numel();
  }
  const int64_t want_params = lm.config.parameter_count();
  if (want_params > 2 * file_params + 100000000)
    throw file_error(join_path(dir, "config.json"), "implies " + std::to_string(want_params) +
                                                        " parameters but the safetensors files hold only " +
                                                        std::to_string(file_params) + " (wrong config or incomplete checkpoint)");
  lm.model = CausalLM(lm.config);
  if (opt.base_bf16) {
    for (auto& p : lm.model->parameters()) p.set_requires_grad(false);
    store_base_bf16(lm.model, /*keep_values=*/false);  // every tensor is loaded below (or refused as missing)
  }

  std::map<std::string, at::Tensor> params;
  for (auto& p : lm.model->named_parameters()) params[p.key()] = p.value();
  std::map<std::string, LinearImpl*> to_quantize;  // "<layer>.weight" -> its layer (base_nf4)
  if (opt.base_nf4)
    for (auto& m : lm.model->named_modules())
      if (auto* l = dynamic_cast<LinearImpl*>(m.value().get()); l && m.key() != "lm_head") to_quantize[m.key() + ".weight"] = l;
  std::set<std::string> loaded;
  std::map<StDtype, int64_t> dtype_bytes;
  at::NoGradGuard ng;
  for (const auto& shard : shards) {
    const SafetensorsFile& st = *shard;
    const std::string& f = st.path();
    for (const auto& info : st.tensors()) {
      // A multimodal checkpoint's language model under its own prefix; its vision tower is skipped
      // here, before a byte of it is read.
      const std::string name = text_model_tensor_name(lm.config, info.name);
      if (name.empty()) continue;
      if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;  // recomputed from the config
      if (name == "lm_head.weight" && lm.config.tie_word_embeddings) continue;  // tied: the embedding is the head
      auto it = params.find(name);
      if (it == params.end())
        throw file_error(f, "tensor '" + name + "' is not part of a " + lm.config.model_type +
                                " model with this config.json (wrong architecture or config?)");
      if (!loaded.insert(name).second) throw file_error(f, "tensor '" + name + "' appears in more than one shard");
      auto& p = it->second;
      std::vector<int64_t> want(p.sizes().begin(), p.sizes().end());
      if (info.shape != want) {
        auto fmt = [](const std::vector<int64_t>& s) {
          std::string r = "[";
          for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
          return r + "]";
        };
        throw file_error(f, "tensor '" + name + "' has shape " + fmt(info.shape) + " but config.json implies " + fmt(want));
      }
      {
        auto t = tensor_from_bytes(st.data(info), info.dtype, info.shape, f + ": tensor '" + name + "'");
        st.release(info);  // the file's pages would otherwise stay resident beside the weights made from them
        p.copy_(t);        // converts as it copies: no full-size temporary in p's dtype (0.93 GB for a 1.5B embedding)
      }
      if (auto q = to_quantize.find(name); q != to_quantize.end()) {
        p = at::Tensor();  // this map's reference; the layer drops its own
        q->second->quantize_nf4();
        // The fp32 weight just freed would stay resident in the allocator's cache: the next layer's
        // weight is another block, allocated when the model was built, so nothing reuses it and the
        // cache filled to its bound (with the file's pages: a 6.9 GB peak loading the 1.5B shape
        // for QLoRA, which then trained at 2.5 GB).
        trim_cpu_allocator();
      }
      lm.file_dtypes[name] = info.dtype;
      dtype_bytes[info.dtype] += static_cast<int64_t>(info.end - info.begin);
    }
  }
  for (const auto& kv : params) {
    if (!loaded.count(kv.first))
      throw file_error(dir, "tensor '" + kv.first + "' is missing from the checkpoint");
  }
  int64_t best = -1;
  for (const auto& kv : dtype_bytes)
    if (kv.second > best) {
      best = kv.second;
      lm.dominant_dtype = kv.first;
    }
  if (opt.device != at::kCPU || opt.dtype != at::kFloat) lm.model->to(opt.device, opt.dtype);
  lm.model->inv_freq = lm.model->inv_freq.to(opt.device);
  lm.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return lm;
}

void save_model(CausalLM& model, const std::string& dir, const SaveOptions& opt) {
  ::mkdir(dir.c_str(), 0755);
  if (!is_directory(dir)) throw file_error(dir, "cannot create folder");
  at::NoGradGuard ng;
  struct Item {
    std::string name;
    at::Tensor t;  // contiguous CPU tensor in its storage dtype
    StDtype dt;
  };
  std::vector<Item> items;
  StDtype dom = opt.default_dtype;
  std::map<StDtype, int64_t> count;
  for (auto& p : model->named_parameters()) {
    if (p.key().find(".lora_") != std::string::npos) continue;  // adapters are saved as PEFT files
    StDtype dt = opt.default_dtype;
    auto it = opt.dtypes.find(p.key());
    if (it != opt.dtypes.end()) dt = it->second;
    auto t = p.value().detach().to(at::kCPU).to(scalar_type_of(dt)).contiguous();
    count[dt] += t.numel();
    items.push_back({p.key(), t, dt});
  }
  int64_t best = -1;
  for (auto& kv : count)
    if (kv.second > best) best = kv.second, dom = kv.first;

  // Greedy sharding in parameter order, as transformers does.
  std::vector<std::vector<size_t>> shards(1);
  uint64_t cur = 0, total = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    uint64_t n = items[i].t.numel() * items[i].t.element_size();
    if (cur > 0 && cur + n > opt.max_shard_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(i);
    cur += n;
    total += n;
  }
  auto write_shard = [&](const std::vector<size_t>& idx, const std::string& path) {
    std::vector<StWriteEntry> e;
    for (size_t i : idx) {
      auto& it = items[i];
      e.push_back({it.name, it.dt, std::vector<int64_t>(it.t.sizes().begin(), it.t.sizes().end()), it.t.data_ptr(),
                   static_cast<size_t>(it.t.numel() * it.t.element_size())});
    }
    write_safetensors(path, e);
  };
  if (shards.size() == 1) {
    write_shard(shards[0], join_path(dir, "model.safetensors"));
  } else {
    nlohmann::json wm = nlohmann::json::object();
    char name[64];
    for (size_t s = 0; s < shards.size(); ++s) {
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      write_shard(shards[s], join_path(dir, name));
      for (size_t i : shards[s]) wm[items[i].name] = name;
    }
    nlohmann::json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", wm}};
    write_file_atomic(join_path(dir, "model.safetensors.index.json"), idx.dump(2) + "\n");
  }
  nlohmann::json cfg = model->config.raw;
  const char* dtname = dom == StDtype::BF16 ? "bfloat16" : dom == StDtype::F16 ? "float16" : "float32";
  if (!cfg.contains("dtype")) cfg["torch_dtype"] = dtname;
  write_file_atomic(join_path(dir, "config.json"), cfg.dump(2) + "\n");
}

}  // namespace hone
