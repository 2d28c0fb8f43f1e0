// bf16-weight GEMMs with fp32 output through oneDNN's matmul primitive (see bf16_gemm.h).
// ATen's own bf16 matmul writes a bf16 result (3e-3 relative error against fp32 arithmetic on the
// same rounded operands, measured); oneDNN's bf16 x bf16 -> f32 matmul is 4e-7, at the same speed.
#include "model/bf16_gemm.h"

#include "common/error.h"

#include <torch/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>

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
  // Primitives are built for a shape, the weight's strides and the thread count they will run
  // with (oneDNN plans its partitioning at creation); training sees a handful of shapes.
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int>;  // M K N sa sb0 sb1 threads
  struct Entry {
    dnnl::matmul prim;
    dnnl::memory::desc src, wei, dst;
  };
  std::map<Key, Entry> cache;
};

Dnnl& dnnl_state() {
  static Dnnl d;
  return d;
}

bool cpu_has_bf16_gemm() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

// c [M, N] fp32 contiguous = a [M, K] bf16 (row stride sa) x b [K, N] bf16 (strides sb0, sb1).
void dnnl_mm(const at::Tensor& a, const at::Tensor& b, at::Tensor& c) {
  using dt = dnnl::memory::data_type;
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  const int threads = at::get_num_threads();
  // oneDNN's OpenMP runtime reads this thread's team size; a worker thread's may differ from
  // libtorch's setting (the thread governor changes it between steps).
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
  Dnnl& d = dnnl_state();
  const Dnnl::Key key{M, K, N, a.stride(0), b.stride(0), b.stride(1), threads};
  Dnnl::Entry e;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    auto it = d.cache.find(key);
    if (it == d.cache.end()) {
      if (d.cache.size() > 256) d.cache.clear();  // shapes that come and go (generation lengths)
      Dnnl::Entry n;
      n.src = dnnl::memory::desc({M, K}, dt::bf16, dnnl::memory::dims{a.stride(0), 1});
      n.wei = dnnl::memory::desc({K, N}, dt::bf16, dnnl::memory::dims{b.stride(0), b.stride(1)});
      n.dst = dnnl::memory::desc({M, N}, dt::f32, dnnl::memory::dims{N, 1});
      n.prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(n.src, n.wei, n.dst), d.eng));
      it = d.cache.emplace(key, std::move(n)).first;
    }
    e = it->second;
  }
  dnnl::memory ms(e.src, d.eng, a.data_ptr());
  dnnl::memory mw(e.wei, d.eng, b.data_ptr());
  dnnl::memory md(e.dst, d.eng, c.data_ptr());
  dnnl::stream s(d.eng);
  e.prim.execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}});
  s.wait();
}

}  // namespace
#endif

bool bf16_gemm_fast() {
#ifdef HONE_WITH_DNNL
  static const bool fast = cpu_has_bf16_gemm();
  return fast;
#else
  return false;
#endif
}

std::string bf16_gemm_describe() {
#ifdef HONE_WITH_DNNL
  const auto isa = dnnl::get_effective_cpu_isa();
  const char* name = isa == dnnl::cpu_isa::avx512_core_amx    ? "avx512_core_amx"
                     : isa == dnnl::cpu_isa::avx512_core_bf16 ? "avx512_core_bf16"
                                                               : nullptr;
  return name ? std::string("oneDNN ") + name : "oneDNN, but this CPU has no bf16 matrix instructions (bf16 weights are widened per GEMM)";
#else
  return "built without oneDNN (bf16 weights are widened per GEMM)";
#endif
}

void mm_bf16_f32_out(at::Tensor& c, const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "mm_bf16_f32: [M, K] x [K, N] expected");
  TORCH_CHECK(b.scalar_type() == at::kBFloat16, "mm_bf16_f32: the weight must be bf16");
  TORCH_CHECK(c.scalar_type() == at::kFloat && c.is_contiguous() && c.size(0) == a.size(0) && c.size(1) == b.size(1),
              "mm_bf16_f32: the output must be a contiguous fp32 [M, N]");
  if (!a.device().is_cpu()) {
    c.copy_(at::mm(a.to(at::kBFloat16), b));
    return;
  }
#ifdef HONE_WITH_DNNL
  if (bf16_gemm_fast() && a.size(0) > 0 && a.size(1) > 0 && b.size(1) > 0) {
    at::Tensor ab = a.to(at::kBFloat16);
    if (ab.stride(1) != 1 || ab.stride(0) < std::max<int64_t>(1, ab.size(1))) ab = ab.contiguous();
    at::Tensor bb = b;
    // oneDNN takes any plain 2-D strides; a broadcast or overlapping view is made dense first.
    if (!((bb.stride(1) == 1 && bb.stride(0) >= bb.size(1)) || (bb.stride(0) == 1 && bb.stride(1) >= bb.size(0)))) bb = bb.contiguous();
    dnnl_mm(ab, bb, c);
    return;
  }
#endif
  // No bf16 unit: round the activation as the fast path does, compute in fp32. The weight is
  // widened a slice at a time once its fp32 copy would pass 32 MB: widening Qwen2.5-0.5B's tied
  // head whole took 545 MB per call, more than the bf16 storage saved.
  const at::Tensor ar = a.to(at::kBFloat16).to(at::kFloat);
  const int64_t K = b.size(0), N = b.size(1);
  constexpr int64_t kSlice = (32LL << 20) / 4;  // fp32 elements
  if (K * N <= kSlice) {
    at::mm_out(c, ar, b.to(at::kFloat));
  } else if (N >= K) {  // column slices, each [M, n] product copied into place
    const int64_t n = std::max<int64_t>(1, kSlice / K);
    for (int64_t s = 0; s < N; s += n) {
      const int64_t w = std::min(n, N - s);
      c.narrow(1, s, w).copy_(at::mm(ar, b.narrow(1, s, w).to(at::kFloat)));
    }
  } else {  // row slices of the weight accumulate into c
    const int64_t k = std::max<int64_t>(1, kSlice / N);
    c.zero_();
    for (int64_t s = 0; s < K; s += k) {
      const int64_t w = std::min(k, K - s);
      c.addmm_(ar.narrow(1, s, w), b.narrow(0, s, w).to(at::kFloat));
    }
  }
}

at::Tensor mm_bf16_f32(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor c = at::empty({a.size(0), b.size(1)}, a.options().dtype(at::kFloat));
  mm_bf16_f32_out(c, a, b);
  return c;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FrozenBf16LinearFn : public torch::autograd::Function<FrozenBf16LinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
    auto x2 = x.reshape({-1, x.size(-1)});                                    // [M, K]
    auto y = mm_bf16_f32(x2, w.t());                                          // [M, N]
    if (bias.numel() > 0) y.add_(bias.to(at::kFloat));
    ctx->save_for_backward({w});
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    auto sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor w = ctx->get_saved_variables()[0];
    const auto xs = ctx->saved_data["x_sizes"].toIntVector();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    auto g2 = grads[0].reshape({-1, w.size(0)});                             // [M, N]
    return {mm_bf16_f32(g2, w).view(xs), at::Tensor(), at::Tensor()};         // [M, K]
  }
};

}  // namespace

at::Tensor frozen_bf16_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  TORCH_CHECK(!w.requires_grad() && (!bias.defined() || !bias.requires_grad()),
              "a bf16-stored weight must be frozen (base_dtype bf16 is for LoRA and QLoRA)");
  if (!x.requires_grad() || !at::GradMode::is_enabled()) {
    at::NoGradGuard ng;
    auto y = mm_bf16_f32(x.reshape({-1, x.size(-1)}), w.t());
    if (bias.defined()) y.add_(bias.to(at::kFloat));
    auto sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }
  // apply() reads every tensor argument's device: "no bias" travels as an empty tensor.
  return FrozenBf16LinearFn::apply(x, w, bias.defined() ? bias : at::empty({0}, x.options()));
}

BaseDtypeChoice resolve_base_dtype(const std::string& requested, const std::string& method, bool cuda, int64_t base_fp32_bytes) {
  char buf[32];  // small test and demo models would read "0 MB"
  if (base_fp32_bytes < (10LL << 20)) std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(base_fp32_bytes) / (1 << 20));
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(base_fp32_bytes >> 20));
  const std::string mb = std::string(buf) + " MB in fp32";
  if (method == "full") {
    if (requested == "bf16") throw Error("base_dtype bf16 needs a frozen base (lora or qlora), not full fine-tuning");
    return {false, "f32 (full fine-tuning trains every weight)"};
  }
  if (requested == "f32") return {false, "f32 (as configured)"};
  if (requested == "bf16") return {true, "bf16 (as configured; GEMMs: " + bf16_gemm_describe() + ")"};
  if (cuda) return {false, "f32 storage (auto: on CUDA autocast runs the GEMMs in bf16)"};
  if (!bf16_gemm_fast()) return {false, "f32 (auto: " + bf16_gemm_describe() + ")"};
  if (base_fp32_bytes < (256LL << 20)) return {false, "f32 (auto: the base is only " + mb + ")"};
  return {true, "bf16 (auto: " + bf16_gemm_describe() + ", base " + mb + ")"};
}

double measure_bf16_gemm_gflops(int64_t n, int reps) {
  at::NoGradGuard ng;
  auto a = at::randn({n, n}), b = at::randn({n, n}).to(at::kBFloat16);
  auto c = mm_bf16_f32(a, b);  // warm-up (and the primitive's creation)
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) c = mm_bf16_f32(a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(n * n * n) * reps / s / 1e9);
  }
  return best;
}

}  // namespace hone
