// Hugging Face model folders: config.json + model.safetensors (or shards + index).
// Loading validates every tensor's name, shape and dtype; saving writes the same layout back.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <map>
#include <string>

#include "model/decoder.h"
#include "model/safetensors.h"

namespace hone {

struct LoadOptions {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;  // compute dtype: fp32 on CPU, bf16 on CUDA
  // Load the base's dense weights straight into bf16 storage (store_base_bf16), so that the fp32
  // copy never exists at once (a 0.5B model's would be 2 GB).
  bool base_bf16 = false;
  // QLoRA: quantize each decoder linear layer to NF4 as soon as its weight is read, so that the
  // fp32 model never exists at once (a 1.5B model's would be 6.2 GB).
  bool base_nf4 = false;
};

struct LoadedModel {
  ModelConfig config;
  CausalLM model{nullptr};
  std::string dir;
  std::map<std::string, StDtype> file_dtypes;  // per tensor, as stored (used to save back exactly)
  StDtype dominant_dtype = StDtype::F32;
  double load_seconds = 0;
};

// Lists the safetensors files of a model folder; refuses pickled checkpoints with a clear message.
std::vector<std::string> checkpoint_files(const std::string& dir);
LoadedModel load_model(const std::string& dir, const LoadOptions& opt = {});

struct SaveOptions {
  // Storage dtype per tensor; empty -> file_dtypes of the loaded model, else F32.
  std::map<std::string, StDtype> dtypes;
  StDtype default_dtype = StDtype::F32;
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;  // transformers' default "5GB"
};
// Writes config.json and model.safetensors (or shards + index) into dir, each file atomically.
void save_model(CausalLM& model, const std::string& dir, const SaveOptions& opt = {});

// Raw bytes <-> tensors in the safetensors dtypes Hone computes with (F32, F16, BF16).
at::Tensor tensor_from_bytes(const uint8_t* data, StDtype dt, const std::vector<int64_t>& shape, const std::string& what);
at::ScalarType scalar_type_of(StDtype dt);
StDtype st_dtype_of(at::ScalarType t);

}  // namespace hone
