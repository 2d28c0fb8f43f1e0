// A CausalLM to and from GGUF as llama.cpp's loaders expect it (hf-compat.md §8): tensor names,
// the interleaved Q/K row order of arch "llama", Gemma's norms stored as 1 + w, llama3 RoPE
// factors; the LoRA adapter GGUF (alpha folded so that llama.cpp's alpha/r is the trained scale);
// and the reverse direction, which the export check uses to reload what was written.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <map>
#include <string>
#include <vector>

#include "export/gguf.h"
#include "export/gguf_vocab.h"
#include "model/arch.h"
#include "model/checkpoint.h"

namespace hone {

struct GgufModelResult {
  GgufVocabInfo vocab;
  uint64_t bytes = 0;
  std::vector<std::string> notes;
  std::map<std::string, int> tensor_types;  // type name -> tensors written as it
};

// Importance of each input column of a linear layer (Hugging Face parameter name, e.g.
// "model.layers.0.mlp.down_proj.weight"; "lm_head.weight" for the head, tied or not): the mean
// squared activation that reaches it (export calibration).
using GgufImportance = std::map<std::string, std::vector<float>>;

// `m` must be dense (NF4 dequantized, adapters merged or absent). `dtype` is a scheme of
// gguf_mix.h: tensors of 2 dimensions get its types (q8_0 where rows are whole blocks, else f16;
// the K-quant mixtures by llama.cpp's rules); norms and biases stay f32. `importance` (optional)
// weights the quantized types' error search per input column.
GgufModelResult write_gguf_model(CausalLM& m, const std::string& tok_dir, const std::string& dtype, const std::string& path,
                                 const std::string& name,
                                 const std::function<void(size_t, size_t)>& progress = nullptr,
                                 const GgufImportance* importance = nullptr);

// The LoRA adapters of `m` (all of one rank and scale) as llama.cpp's adapter GGUF, in f32.
void write_gguf_lora(CausalLM& m, const std::string& path, const std::string& name);

// Reads a model GGUF back into a CausalLM in fp32 (dequantized), undoing every layout change the
// writer makes. Throws naming the file and the tensor or key that does not fit.
LoadedModel load_gguf_model(const std::string& path);
// Attaches the adapters of a LoRA GGUF to `m` (scale alpha/r as llama.cpp applies it).
void apply_gguf_lora(CausalLM& m, const std::string& path);

// llama.cpp's tensor name for a Hugging Face one ("" for names it has no tensor for). The norms of
// Gemma 2/3 (sandwich_norms) map to their own names.
std::string gguf_tensor_name(const std::string& hf_name, const ArchTraits* arch = nullptr);

}  // namespace hone
