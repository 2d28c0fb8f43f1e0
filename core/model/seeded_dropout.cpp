// Seeded dropout: a counter-based mask (two rounds of MurmurHash3's 32-bit finalizer over the
// element's index and the seed), made again wherever it is needed instead of being stored.
#include "model/seeded_dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <string>
#include <mutex>

#include "common/error.h"

namespace hone {

namespace {

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// The first index's hash mixes the seed's low word; a second round mixes its high word and the
// index's high bits, so that seeds differing only in their high half give unrelated masks.
inline uint32_t element_hash(uint64_t seed, uint64_t i) {
  const uint32_t h = fmix32(static_cast<uint32_t>(i) * 0x9e3779b1u + static_cast<uint32_t>(seed));
  return fmix32(h ^ static_cast<uint32_t>(seed >> 32) ^ (static_cast<uint32_t>(i >> 32) * 0x7feb352du));
}

uint32_t threshold(double p) {
  if (!(p >= 0.0 && p < 1.0)) throw Error("dropout probability must be in [0, 1), got " + std::to_string(p));
  return static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
}

}  // namespace

at::Generator dropout_generator(const at::Tensor& x) {
  if (x.is_cuda()) return at::globalContext().defaultGenerator(x.device());
  return at::detail::getDefaultCPUGenerator();
}

uint64_t draw_dropout_seed(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu(), "draw_dropout_seed: the seeded masks are made on the CPU");
  auto gen = dropout_generator(x);
  std::lock_guard<std::mutex> lk(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

bool seeded_dropout_applies(const at::Tensor& x) { return x.device().is_cpu() && x.scalar_type() == at::kFloat; }

void seeded_dropout_(at::Tensor& x, uint64_t seed, double p) {
  TORCH_CHECK(seeded_dropout_applies(x) && x.is_contiguous(), "seeded_dropout_: a contiguous fp32 CPU tensor expected");
  if (p == 0) return;
  const uint32_t t = threshold(p);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  float* d = x.data_ptr<float>();
  at::parallel_for(0, x.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) d[i] = element_hash(seed, static_cast<uint64_t>(i)) >= t ? d[i] * scale : 0.0f;
  });
}

at::Tensor seeded_dropout(const at::Tensor& x, uint64_t seed, double p) {
  TORCH_CHECK(seeded_dropout_applies(x), "seeded_dropout: an fp32 CPU tensor expected");
  at::Tensor out = x.contiguous().clone();
  seeded_dropout_(out, seed, p);
  return out;
}

at::Tensor seeded_dropout_mask(int64_t numel, uint64_t seed, double p) {
  const uint32_t t = threshold(p);
  at::Tensor m = at::empty({numel}, at::kFloat);
  float* d = m.data_ptr<float>();
  at::parallel_for(0, numel, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) d[i] = element_hash(seed, static_cast<uint64_t>(i)) >= t ? 1.0f : 0.0f;
  });
  return m;
}

}  // namespace hone
