// Dropout whose mask is a function of a 64-bit seed and the element's index, so that backward
// (and a recompute) can make the mask again instead of keeping it. LoRA's dropout on an adapter's
// input kept, per adapted layer, the dropped copy of the input and the mask (two [T, in] tensors):
// about 42 MB a layer at T 512 on the Qwen2.5-0.5B shape, 1 GB over 24 layers, with the default
// lora.dropout of 0.05. With the seed, the adapter keeps only the input it already had.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace hone {

// The generator dropout draws from for activations on x's device (CPU or that CUDA device); a
// checkpointed layer saves and restores its state so that the recompute repeats the forward's masks.
at::Generator dropout_generator(const at::Tensor& x);

// A fresh seed from dropout_generator(x); x on the CPU.
uint64_t draw_dropout_seed(const at::Tensor& x);

// Whether the seeded kernels run on x: fp32 on the CPU. Elsewhere callers keep at::dropout.
bool seeded_dropout_applies(const at::Tensor& x);

// x * keep / (1 - p) with keep = 1 where hash(seed, i) >= p * 2^32 for the element at row-major
// index i of x: each element kept with probability 1 - p, independently of the others and of
// other seeds. Returns a new contiguous tensor; the _ form scales a contiguous x in place.
at::Tensor seeded_dropout(const at::Tensor& x, uint64_t seed, double p);
void seeded_dropout_(at::Tensor& x, uint64_t seed, double p);

// The keep mask itself (fp32 0/1) of the elements first .. first + numel - 1, for tests and references.
at::Tensor seeded_dropout_mask(int64_t numel, uint64_t seed, double p, uint64_t first = 0);

// Whether element i is kept: the definition, one element at a time (the kernels' reference).
bool seeded_dropout_keeps(uint64_t seed, uint64_t i, double p);

}  // namespace hone
