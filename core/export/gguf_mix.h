// The GGUF export's dtypes ("schemes"): one type for every matrix (f32, f16, bf16, q8_0) or one of
// llama.cpp's K-quant mixtures (q4_k_m, q5_k_m, q6_k), where llama-quantize's per-tensor rules give
// some tensors more bits (the output head, half of the attn_v and ffn_down layers) and rows that
// are not whole 256-blocks fall back to 32-blocks (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then
// F16). Plain functions of names and shapes, so a file's layout can be predicted without a model.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "export/gguf.h"
#include "model/config.h"

namespace hone {

struct GgufScheme {
  std::string name;         // as --dtype spells it
  GgmlType base = GgmlType::F16;  // the type of most matrices
  uint32_t file_type = 1;   // general.file_type, llama.cpp's numbering (q4_k_m 15, q5_k_m 17, q6_k 18)
  bool k_mixture = false;   // the per-tensor rules apply
};

// Every scheme, the default (f16) first.
std::vector<std::string> gguf_scheme_names();
bool gguf_scheme_from_name(const std::string& name, GgufScheme* out);

// The type of one tensor under `scheme`: `name` is llama.cpp's ("blk.3.attn_v.weight"), `shape`
// PyTorch order (outermost first), `n_layers` the model's blocks, `has_output` false where the
// token embedding doubles as the output head (tied), which then gets the head's type.
// Tensors of one dimension (norms, biases, RoPE factors) stay f32.
GgmlType gguf_tensor_type(const GgufScheme& scheme, const std::string& name, const std::vector<int64_t>& shape,
                          int n_layers, bool has_output);

// Bytes the model's tensors take in a GGUF of `dtype` (metadata and padding aside), from the
// config alone: llama.cpp's tensor names and shapes, each typed as the export types it. For size
// estimates before anything is loaded (the Export page).
uint64_t gguf_model_bytes(const ModelConfig& c, const std::string& dtype);

}  // namespace hone
