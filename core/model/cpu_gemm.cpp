// oneDNN matmul for fp32 and bf16-operand GEMMs with fp32 output (see cpu_gemm.h). ATen's own
// bf16 matmul writes a bf16 result (3e-3 relative error against fp32 arithmetic on the same
// rounded operands, measured); oneDNN's bf16 x bf16 -> f32 matmul is 4e-7.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_gemm.h"

#include "model/fused_cpu.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>
#include <mutex>
#include <tuple>
#include <unordered_map>

#ifdef HONE_WITH_DNNL
#include <omp.h>

#include <dnnl.hpp>
#endif

namespace hone {

#ifdef HONE_WITH_DNNL
namespace {

struct Dnnl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  std::mutex mu;
  // Primitives are built for the shapes, strides and types of the operands, the thread count they
  // will run with (oneDNN plans its partitioning at creation), alpha and accumulation; training
  // sees a few dozen of them. The key lists all of these.
  using Key = std::vector<int64_t>;
  // Each primitive takes its scratch memory from the caller (scratchpad_mode::user). In the
  // default library mode Debian's oneDNN 2.6 (built without DNNL_ENABLE_CONCURRENT_EXEC) shares
  // one scratchpad between all primitives: two threads running GEMMs at once (a training job
  // beside the playground's generation, the Train page's rate measurement) overwrote each other's
  // packed operands, giving wrong products and, in the GUI test, a crash (measured: 26-71 of 600
  // products wrong with 2-4 threads, none with one).
  struct Entry {
    dnnl::matmul prim;
    dnnl::memory::desc src, wei, dst, scratch;
  };
  std::map<Key, Entry> cache;
};

Dnnl& dnnl_state() {
  static Dnnl d;
  return d;
}

dnnl::cpu_isa isa() {
  static const dnnl::cpu_isa i = dnnl::get_effective_cpu_isa();
  return i;
}

// oneDNN's fp32 matmul beats Debian's OpenBLAS from AVX2 up. Measured on 2 cores, Qwen2.5-0.5B's
// shape, LoRA r16, seq 512: Zen 4 (AVX-512) 100-107 against 54-57 tokens/s; Zen 3 (AVX2 only) 43.8
// against 34.4, and the attention block products 0.70 against 1.85 s of the step.
bool isa_at_least_avx2() {
  const auto i = isa();
  return i == dnnl::cpu_isa::avx2 || i == dnnl::cpu_isa::avx2_vnni || i == dnnl::cpu_isa::avx512_core ||
         i == dnnl::cpu_isa::avx512_core_vnni || i == dnnl::cpu_isa::avx512_core_bf16 || i == dnnl::cpu_isa::avx512_core_amx;
}

// A plain 2-D stride pair oneDNN takes as is: one unit stride, the other spanning the rows.
bool plain(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  return (s1 == 1 && s0 >= std::max<int64_t>(1, cols)) || (s0 == 1 && s1 >= std::max<int64_t>(1, rows));
}

dnnl::memory::desc desc_of(const at::Tensor& t, dnnl::memory::data_type type) {
  dnnl::memory::dims dims(t.sizes().begin(), t.sizes().end()), strides(t.strides().begin(), t.strides().end());
  // A batch dimension of size 1 (broadcast, or just 1) gets the stride of a dense layout: its
  // stride is never used, and oneDNN rejects some values a view can carry.
  for (int64_t d = t.dim() - 3; d >= 0; --d)
    if (dims[d] == 1) strides[d] = std::max<int64_t>(1, dims[d + 1] * strides[d + 1]);
  return dnnl::memory::desc(dims, type, strides);
}

// c [..., M, N] fp32 (unit column stride) = alpha * a [..., M, K] x b [..., K, N] (+ c). 2 to 4
// dimensions, b's batch dimensions equal to a's or 1 (broadcast); a and b already of the types
// given (fp32 or bf16, both bf16 when either is), with plain strides in their last two.
void dnnl_matmul(const at::Tensor& a, const at::Tensor& b, at::Tensor& c, double alpha, bool accumulate) {
  using dt = dnnl::memory::data_type;
  const int threads = at::get_num_threads();
  // oneDNN's OpenMP runtime reads this thread's team size; a worker thread's may differ from
  // libtorch's setting (the thread governor changes it between steps).
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
  Dnnl& d = dnnl_state();
  const bool a16 = a.scalar_type() == at::kBFloat16, b16 = b.scalar_type() == at::kBFloat16;
  Dnnl::Key key{a.dim(), a16, b16, threads, accumulate};
  double al = alpha;
  int64_t bits;
  std::memcpy(&bits, &al, sizeof bits);
  key.push_back(bits);
  for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&a, &b, &c}) {
    key.insert(key.end(), t->sizes().begin(), t->sizes().end());
    key.insert(key.end(), t->strides().begin(), t->strides().end());
  }
  Dnnl::Entry e;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    auto it = d.cache.find(key);
    if (it == d.cache.end()) {
      if (d.cache.size() > 512) d.cache.clear();  // shapes that come and go (generation lengths)
      Dnnl::Entry n;
      n.src = desc_of(a, a16 ? dt::bf16 : dt::f32);
      n.wei = desc_of(b, b16 ? dt::bf16 : dt::f32);
      n.dst = desc_of(c, dt::f32);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (alpha != 1.0) attr.set_output_scales(0, {static_cast<float>(alpha)});
      if (accumulate) {
        dnnl::post_ops po;
        po.append_sum(1.0f);
        attr.set_post_ops(po);
      }
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(n.src, n.wei, n.dst), attr, d.eng);
      n.scratch = pd.scratchpad_desc();
      n.prim = dnnl::matmul(pd);
      it = d.cache.emplace(std::move(key), std::move(n)).first;
    }
    e = it->second;
  }
  dnnl::memory ms(e.src, d.eng, a.data_ptr());
  dnnl::memory mw(e.wei, d.eng, b.data_ptr());
  dnnl::memory md(e.dst, d.eng, c.data_ptr());
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
  at::Tensor scratch;  // this call's own, from the caching allocator
  if (const size_t bytes = e.scratch.get_size()) {
    scratch = at::empty({static_cast<int64_t>(bytes)}, at::TensorOptions(at::kByte));
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(e.scratch, d.eng, scratch.data_ptr()));
  }
  dnnl::stream s(d.eng);
  e.prim.execute(s, args);
  s.wait();
}

// x in bf16, through Hone's rounding kernel where x (or its transpose) is contiguous fp32.
at::Tensor to_bf16(const at::Tensor& x) {
  if (x.scalar_type() == at::kFloat && x.device().is_cpu()) {
    if (x.is_contiguous()) return fused_to_bf16(x);
    if (x.dim() == 2 && x.t().is_contiguous()) return fused_to_bf16(x.t()).t();
  }
  return x.to(at::kBFloat16);
}

// The operand as oneDNN takes it: of type t, with plain strides (a copy only where needed).
at::Tensor operand(const at::Tensor& x, at::ScalarType t) {
  at::Tensor y = x.scalar_type() == t ? x : t == at::kBFloat16 ? to_bf16(x) : x.to(t);
  const int64_t d = y.dim();
  bool ok = plain(y.size(d - 2), y.size(d - 1), y.stride(d - 2), y.stride(d - 1));
  for (int64_t i = 0; ok && i < d - 2; ++i) ok = y.size(i) == 1 || y.stride(i) > 0;  // no expanded batch
  return ok ? y : y.contiguous();
}

}  // namespace
#endif

bool onednn_f32_gemm() {
#ifdef HONE_WITH_DNNL
  static const bool on = [] {
    const char* env = std::getenv("HONE_GEMM");
    if (env && std::strcmp(env, "aten") == 0) return false;
    return isa_at_least_avx2();
  }();
  return on;
#else
  return false;
#endif
}

bool onednn_bf16_gemm() {
#ifdef HONE_WITH_DNNL
  static const bool on = isa() == dnnl::cpu_isa::avx512_core_bf16 || isa() == dnnl::cpu_isa::avx512_core_amx;
  return on;
#else
  return false;
#endif
}

bool bf16_widened_at_f32_speed() {
#ifdef HONE_WITH_DNNL
  static const bool on = onednn_f32_gemm() && (isa() == dnnl::cpu_isa::avx512_core || isa() == dnnl::cpu_isa::avx512_core_vnni);
  return on;
#else
  return false;
#endif
}

std::string cpu_gemm_describe() {
#ifdef HONE_WITH_DNNL
  const auto i = isa();
  const std::string name = i == dnnl::cpu_isa::avx512_core_amx    ? "avx512_core_amx"
                           : i == dnnl::cpu_isa::avx512_core_bf16 ? "avx512_core_bf16"
                           : i == dnnl::cpu_isa::avx512_core_vnni ? "avx512_core_vnni"
                           : i == dnnl::cpu_isa::avx512_core      ? "avx512_core"
                           : i == dnnl::cpu_isa::avx2_vnni        ? "avx2_vnni"
                           : i == dnnl::cpu_isa::avx2             ? "avx2"
                                                                  : "below AVX2";
  std::string s = "oneDNN " + name + ": fp32 ";
  s += onednn_f32_gemm() ? "oneDNN" : (isa_at_least_avx2() ? "ATen/BLAS (HONE_GEMM=aten)" : "ATen/BLAS");
  s += ", bf16 ";
  s += onednn_bf16_gemm() ? "oneDNN" : "widened to fp32 per GEMM";
  return s;
#else
  return "built without oneDNN: fp32 ATen/BLAS, bf16 widened to fp32 per GEMM";
#endif
}

namespace {

// The values a bf16 GEMM multiplies, held in fp32: a bf16 tensor widened, an fp32 one rounded to
// bf16 first. Hone's kernels where the tensor or its transpose is contiguous on the CPU: ATen
// 1.13's conversions take 2.3 ns an element. With them and OpenBLAS's GEMMs a bf16 base ran 6%
// behind this path at the Qwen2.5-0.5B shape (Ice Lake, 2 cores, 8 interleaved pairs: 76.3
// against 80.7 tokens/s), which is level with the fp32 base.
at::Tensor bf16_values_f32(const at::Tensor& x) {
  const bool cpu = x.device().is_cpu() && (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kFloat);
  auto widen = [](const at::Tensor& t) {  // t contiguous
    return fused_from_bf16(t.scalar_type() == at::kBFloat16 ? t : fused_to_bf16(t));
  };
  if (cpu && x.is_contiguous()) return widen(x);
  if (cpu && x.dim() == 2 && x.t().is_contiguous()) return widen(x.t()).t();
  if (cpu) return widen(x.contiguous());  // a same-type copy, then the kernels
  return x.to(at::kBFloat16).to(at::kFloat);
}

// c = alpha * p (+ c): the fallbacks' way of applying a plain product p.
void add_product(at::Tensor& c, at::Tensor& p, double alpha, bool accumulate) {
  if (alpha != 1.0) p.mul_(alpha);
  if (accumulate) c.add_(p);
  else c.copy_(p);
}

// c (a view with unit column stride) = alpha * a b (+ c) for fp32 a and b: oneDNN where it runs the
// fp32 GEMMs (the slices below write into c's columns in place), ATen otherwise.
void gemm_f32_into(at::Tensor c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {
#ifdef HONE_WITH_DNNL
  if (a.device().is_cpu() && onednn_f32_gemm()) {
    dnnl_matmul(operand(a, at::kFloat), operand(b, at::kFloat), c, alpha, accumulate);
    return;
  }
#endif
  at::Tensor p = at::mm(a, b);
  add_product(c, p, alpha, accumulate);
}

// No bf16 unit: round the operands as the fast path does, compute in fp32. A bf16 weight is
// widened a slice at a time once its fp32 copy would pass 32 MB: widening Qwen2.5-0.5B's tied
// head whole took 545 MB per call, more than the bf16 storage saved.
void gemm_widened(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {
  const at::Tensor ar = bf16_values_f32(a);
  const int64_t K = b.size(0), N = b.size(1);
  constexpr int64_t kSlice = (32LL << 20) / 4;  // fp32 elements
  if (K * N <= kSlice) {
    gemm_f32_into(c, ar, bf16_values_f32(b), alpha, accumulate);
  } else if (N >= K) {  // column slices, each written into its columns of c
    const int64_t n = std::max<int64_t>(1, kSlice / K);
    for (int64_t s = 0; s < N; s += n) {
      const int64_t w = std::min(n, N - s);
      gemm_f32_into(c.narrow(1, s, w), ar, bf16_values_f32(b.narrow(1, s, w)), alpha, accumulate);
    }
  } else {  // row slices of the weight accumulate into c
    const int64_t k = std::max<int64_t>(1, kSlice / N);
    for (int64_t s = 0; s < K; s += k) {
      const int64_t w = std::min(k, K - s);
      gemm_f32_into(c, ar.narrow(1, s, w), bf16_values_f32(b.narrow(0, s, w)), alpha, accumulate || s > 0);
    }
  }
}

}  // namespace

void gemm_f32_out(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "gemm: [M, K] x [K, N] expected");
  TORCH_CHECK(c.scalar_type() == at::kFloat && c.is_contiguous() && c.size(0) == a.size(0) && c.size(1) == b.size(1),
              "gemm: the output must be a contiguous fp32 [M, N]");
  const bool bf16 = a.scalar_type() == at::kBFloat16 || b.scalar_type() == at::kBFloat16;
  if (a.size(0) == 0 || b.size(1) == 0) return;
#ifdef HONE_WITH_DNNL
  if (a.device().is_cpu() && a.size(1) > 0 && (bf16 ? onednn_bf16_gemm() : onednn_f32_gemm())) {
    const auto t = bf16 ? at::kBFloat16 : at::kFloat;
    dnnl_matmul(operand(a, t), operand(b, t), c, alpha, accumulate);
    return;
  }
#endif
  if (bf16 && a.device().is_cpu() && a.size(1) > 0) {
    gemm_widened(c, a, b, alpha, accumulate);
    return;
  }
  const bool direct = alpha == 1.0 && !accumulate;
  at::Tensor p = direct ? c : at::empty_like(c);  // the plain product
  if (a.size(1) == 0) p.zero_();
  else if (bf16) p.copy_(at::mm(a.to(at::kBFloat16), b.to(at::kBFloat16)));
  else at::mm_out(p, a, b);
  if (!direct) add_product(c, p, alpha, accumulate);
}

void gemm_bf16_widened_out(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0) && a.device().is_cpu(), "gemm: CPU [M, K] x [K, N] expected");
  TORCH_CHECK(c.scalar_type() == at::kFloat && c.is_contiguous() && c.size(0) == a.size(0) && c.size(1) == b.size(1),
              "gemm: the output must be a contiguous fp32 [M, N]");
  if (c.numel() == 0) return;
  if (a.size(1) == 0) {
    if (!accumulate) c.zero_();
    return;
  }
  gemm_widened(c, a, b, alpha, accumulate);
}

at::Tensor gemm_f32(const at::Tensor& a, const at::Tensor& b, double alpha) {
  at::Tensor c = at::empty({a.size(0), b.size(1)}, a.options().dtype(at::kFloat));
  gemm_f32_out(c, a, b, alpha, false);
  return c;
}

bool onednn_f32_applies(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.device().is_cpu() && b.device().is_cpu() &&
         onednn_f32_gemm();
}

at::Tensor matmul_f32(const at::Tensor& a, const at::Tensor& b) {
  if (!onednn_f32_applies(a, b) || b.dim() != 2 || a.dim() < 1) return at::matmul(a, b);
  auto sizes = a.sizes().vec();
  sizes.back() = b.size(1);
  return gemm_f32(a.reshape({-1, a.size(-1)}), b).view(sizes);
}

void matmul_f32_out(at::Tensor c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {
  const int64_t nd = a.dim();
  TORCH_CHECK(nd >= 3 && nd <= 4 && b.dim() == nd && c.dim() == nd && a.size(-1) == b.size(-2) && c.size(-2) == a.size(-2) &&
                  c.size(-1) == b.size(-1),
              "matmul: [.., M, K] x [.., K, N] -> [.., M, N] with 3 or 4 dimensions expected");
  for (int64_t i = 0; i < nd - 2; ++i)
    TORCH_CHECK(c.size(i) == a.size(i) && (b.size(i) == a.size(i) || b.size(i) == 1),
                "matmul: batch dimensions must agree (the second operand's may be 1)");
  const bool bf16 = a.scalar_type() == at::kBFloat16;
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && (bf16 || a.scalar_type() == at::kFloat) && c.scalar_type() == at::kFloat,
              "matmul: fp32 operands, or bf16 operands, and an fp32 output expected");
  TORCH_CHECK(c.stride(-1) == 1 && c.stride(-2) >= c.size(-1), "matmul: the output's rows must have unit stride");
#ifdef HONE_WITH_DNNL
  if (a.device().is_cpu() && (bf16 ? onednn_bf16_gemm() : onednn_f32_gemm()) && c.numel() > 0 && a.size(-1) > 0) {
    const auto t = bf16 ? at::kBFloat16 : at::kFloat;
    dnnl_matmul(operand(a, t), operand(b, t), c, alpha, accumulate);
    return;
  }
#endif
  // bf16 operands without the unit: their values in fp32 arithmetic (what oneDNN's accumulation gives).
  at::Tensor p = bf16 ? at::matmul(a.to(at::kFloat), b.to(at::kFloat)) : at::matmul(a, b);  // broadcasts b's batch dimensions
  add_product(c, p, alpha, accumulate);
}

at::Tensor bmm_f32(const at::Tensor& a, const at::Tensor& b, double alpha) {
  auto sizes = a.sizes().vec();
  sizes.back() = b.size(-1);
  at::Tensor c = at::empty(sizes, a.options().dtype(at::kFloat));
  matmul_f32_out(c, a, b, alpha, false);
  return c;
}

namespace {

// Best of 5 rounds of `reps` n x n products, the second operand fp32 or bf16.
double measure_gemm(int64_t n, int reps, bool bf16) {
  at::NoGradGuard ng;
  auto a = at::randn({n, n}), b = at::randn({n, n});
  if (bf16) b = b.to(at::kBFloat16);
  auto c = gemm_f32(a, b);  // warm-up (and the primitive's creation)
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) gemm_f32_out(c, a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(n * n * n) * reps / s / 1e9);
  }
  return best;
}

}  // namespace

double measure_f32_gemm_gflops(int64_t n, int reps) { return measure_gemm(n, reps, false); }
double measure_bf16_gemm_gflops(int64_t n, int reps) { return measure_gemm(n, reps, true); }

}  // namespace hone
