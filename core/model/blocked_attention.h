// Causal attention over blocks of query rows that keeps nothing of size [heads, T, S] for
// backward: each block's scores and probabilities exist only while that block is computed, and
// backward recomputes them block by block (as FlashAttention does, here with ATen GEMMs on the
// CPU). Keys past a block's last causal position are skipped. Exact against softmax(q k^T) v.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

namespace hone {

// q [B, nh, T, D]; k, v [B, nkv, S, D] with nkv dividing nh (GQA: query head h reads kv head
// h / (nh / nkv), as transformers' repeat_kv arranges them); mask additive [B, 1, T, S] with
// query i at absolute position S - T + i allowed no key past it (the decoder's causal mask).
// softcap > 0: Gemma 2's cap * tanh(scores / cap) before the mask. block_rows 0: about 8 MB of
// scores per block, at most 128 rows. Returns [B, nh, T, D].
// bf16 (fp32 CPU q, k, v): the products q k^T, p v and their backward's run on bf16 operands
// with fp32 accumulation and output (oneDNN's bf16 matmul where the CPU has a bf16 unit, the same
// rounding computed in fp32 elsewhere); softmax, mask and soft-capping stay fp32, and backward
// keeps q, k, v in bf16. The output and the gradients are fp32.
at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, double scale,
                             double softcap, int64_t block_rows = 0, bool bf16 = false);

}  // namespace hone
