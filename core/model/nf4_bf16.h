// QLoRA's frozen NF4 layer computing in bf16 (base_dtype "bf16"): the 4-bit weight is dequantized
// to bf16 for each GEMM, as bitsandbytes does with a bf16 compute dtype, and the product runs on the
// CPU's bf16 unit with fp32 accumulation (model/bf16_gemm.h). Nothing but the codes is kept for
// backward, which dequantizes again.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include "model/nf4.h"

namespace hone {

// y = x W^T + bias for x [..., in] fp32; differentiable in x only.
at::Tensor nf4_linear_bf16(const at::Tensor& x, const NF4Weight& q, const at::Tensor& bias);

}  // namespace hone
