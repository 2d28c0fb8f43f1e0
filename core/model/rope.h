// Rotary position embedding tables (rotate-half convention of Hugging Face checkpoints).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include "model/config.h"

namespace hone {

// inv_freq [head_dim/2] in fp32, with default / linear / llama3 / longrope scaling applied
// (longrope: the short factors, or the long ones with long_factors).
at::Tensor rope_inv_freq(const ModelConfig& c, bool long_factors = false);
// cos, sin [B, T, head_dim] in fp32 for integer positions [B, T].
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& positions);
// x [B, H, T, D], cos/sin [B, T, D]: x*cos + rotate_half(x)*sin.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace hone
