// RoPE: inv_freq = 1/theta^(2i/d); llama3 scaling per hf-compat.md §2; computed in fp32 like
// transformers so that NLL matches to 1e-4.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/rope.h"

#include <cmath>

namespace hone {

at::Tensor rope_inv_freq(const ModelConfig& c, bool long_factors) {
  const int64_t d = c.head_dim;
  auto idx = at::arange(0, d, 2, at::kLong).to(at::kFloat) / static_cast<float>(d);
  auto inv = 1.0 / at::pow(static_cast<float>(c.rope_theta), idx);  // [d/2]
  inv = inv.to(at::kFloat);
  if (c.rope.type == "linear") {
    inv = inv / static_cast<float>(c.rope.factor);
  } else if (c.rope.type == "llama3") {
    const double factor = c.rope.factor, low = c.rope.low_freq_factor, high = c.rope.high_freq_factor;
    const double orig = static_cast<double>(c.rope.original_max_position_embeddings);
    const double low_wavelen = orig / low, high_wavelen = orig / high;
    auto wavelen = 2 * M_PI / inv;
    auto scaled = at::where(wavelen > low_wavelen, inv / factor, inv);
    auto smooth = (orig / wavelen - low) / (high - low);
    auto smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv = at::where(medium, smoothed, scaled).to(at::kFloat);
  } else if (c.rope.type == "longrope") {
    // transformers: inv_freq = 1 / (ext_factor * base^(2i/d)), the divisors per frequency.
    const auto& f = long_factors ? c.rope.long_factor : c.rope.short_factor;
    auto ext = at::tensor(std::vector<float>(f.begin(), f.end()), at::kFloat);
    inv = (1.0 / (ext * at::pow(static_cast<float>(c.rope_theta), idx))).to(at::kFloat);
  }
  return inv;
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& positions) {
  auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.to(positions.device()).view({1, 1, -1});  // [B,T,d/2]
  auto emb = at::cat({freqs, freqs}, -1);                                                                   // [B,T,d]
  return {emb.cos(), emb.sin()};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = at::cat({-x2, x1}, -1);
  auto c = cos.unsqueeze(1).to(x.scalar_type());  // [B,1,T,D]
  auto s = sin.unsqueeze(1).to(x.scalar_type());
  return x * c + rotated * s;
}

}  // namespace hone
