// Runtime set-up. Debian's libtorch runs single-threaded unless told (platform-notes §2) and is
// 40x slower on the reference BLAS (§1), so both are set and reported explicitly.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/runtime.h"

#include "common/cpu_allocator.h"
#include "common/parallel.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>
#ifdef HONE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

namespace hone {

namespace {
std::string mapped_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line, found;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if (path.find("openblas") != std::string::npos || path.find("libmkl") != std::string::npos ||
        path.find("libblis") != std::string::npos)
      return path;
    if (path.find("libblas.so") != std::string::npos) found = path;
  }
  return found;
}
using corename_fn = char* (*)();

std::string openblas_core() {
  auto f = reinterpret_cast<corename_fn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* c = f ? f() : nullptr;
  return c ? std::string(c) : std::string();
}

}  // namespace

std::string preferred_blas_kernel(const std::string& core) {
  std::string lc;
  for (char ch : core) lc += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  // OpenBLAS's pre-AVX2 x86 kernel sets: what it falls back to for a CPU model it does not know.
  static const char* kGeneric[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "katmai", "coppermine",
                                   "northwood", "banias", "atom", "unknown", "generic"};
  bool generic = false;
  for (const char* g : kGeneric) generic = generic || lc == g;
  if (!generic) return {};
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the wide registers (XGETBV).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return {};
}

void tune_blas_kernel(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or our own after the re-exec
  const std::string core = openblas_core();
  if (core.empty()) return;
  const std::string want = preferred_blas_kernel(core);
  if (want.empty()) return;
  ::setenv("OPENBLAS_CORETYPE", want.c_str(), 1);
  ::execv("/proc/self/exe", argv);
  ::unsetenv("OPENBLAS_CORETYPE");  // exec failed (no /proc): carry on with the slow kernel
}

void init_runtime(int threads) {
  install_cpu_allocator();  // before the first tensor, so that every large one is returned when freed
  if (threads <= 0) {
    if (const char* e = std::getenv("HONE_THREADS")) threads = std::atoi(e);
  }
  if (threads <= 0) {
    // OpenBLAS's pthread build runs every GEMM on its own pool of all cores. Adding libtorch's
    // OpenMP threads on top oversubscribes the cores: measured on 2 cores, LoRA training ran at
    // 335 tokens/s with 2 intra-op threads and 820 with 1. So GEMMs get the cores and the
    // element-wise ops one thread; any other BLAS gets all cores for intra-op work.
    // With OpenBLAS's OpenMP build both share libgomp's pool: measured 1216 tokens/s with 2 threads
    // against 982 for the pthread build with 1.
    threads = mapped_blas().find("openblas-pthread") != std::string::npos ? 1 : static_cast<int>(std::thread::hardware_concurrency());
    // Several training processes on one machine (torchrun, srun, hone-cli launch) share its
    // cores: each takes its part, as torchrun's OMP_NUM_THREADS=1 default means to, without
    // leaving cores idle when there are more cores than processes.
    const char* local = std::getenv("LOCAL_WORLD_SIZE");
    if (!local) local = std::getenv("SLURM_NTASKS_PER_NODE");
    if (const int n = local ? std::atoi(local) : 1; n > 1) {
      threads = std::max(1, threads / n);
      // OpenBLAS's pthread build keeps a pool of its own, of all cores unless told.
      using set_fn = void (*)(int);
      if (auto f = reinterpret_cast<set_fn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); f && !std::getenv("OPENBLAS_NUM_THREADS"))
        f(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / n));
    }
  }
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
}

int kernel_threads() { return at::get_num_threads(); }

int other_runnable_tasks() {
  std::ifstream st("/proc/stat");
  int running = -1;
  for (std::string line; std::getline(st, line);)
    if (line.rfind("procs_running ", 0) == 0) running = std::atoi(line.c_str() + 14);
  if (running < 0) return -1;
  int ours = 0;
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream f(t.path() / "stat");
    std::string s;
    std::getline(f, s);
    const auto close = s.rfind(')');  // the state follows the command name, which may hold spaces
    if (close != std::string::npos && close + 2 < s.size() && s[close + 2] == 'R') ++ours;
  }
  return std::max(0, running - ours);
}

ThreadGovernor::ThreadGovernor() : full_(at::get_num_threads()), current_(full_) {
  const char* e = std::getenv("HONE_ADAPT_THREADS");
  on_ = full_ > 1 && !(e && std::string(e) == "0");
}

int ThreadGovernor::tick() {
  if (!on_) return current_;
  // The fewest of several readings: this process's OpenMP workers change between spinning and
  // sleeping between the two files' reads, which alone made one reading in a few count a phantom
  // other task (the quiet demo trained at 1 thread: 130 s instead of 81). A busy process stays.
  int others = -1;
  for (int i = 0; i < 5; ++i) {
    const int o = other_runnable_tasks();
    if (o >= 0) others = others < 0 ? o : std::min(others, o);
  }
  if (others < 0) return current_;
  const int want = std::max(1, std::min(full_, static_cast<int>(std::thread::hardware_concurrency()) - others));
  if (want == current_) {
    pending_ = -1;
  } else if (want == pending_) {  // two readings in a row: a spin-waiting thread is not a trend
    current_ = want;
    pending_ = -1;
    at::set_num_threads(current_);
  } else {
    pending_ = want;
  }
  return current_;
}

double measure_cuda_gemm_gflops(bool bf16) {
  at::NoGradGuard ng;
  const auto o = at::TensorOptions(at::Device(at::kCUDA, 0)).dtype(bf16 ? at::kBFloat16 : at::kFloat);
  const int64_t n = 4096;
  auto a = at::randn({n, n}, o), b = at::randn({n, n}, o);
  auto c = at::matmul(a, b);
  torch::cuda::synchronize();
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) at::mm_out(c, a, b);
    torch::cuda::synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n * 10 / s / 1e9);
  }
  return best;
}

int64_t cuda_peak_memory_bytes() {
#ifdef HONE_WITH_CUDA
  // Entry 0 of a stat array is the aggregate over pool kinds (the same in every libtorch since 1.8).
  return c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].peak;
#else
  return -1;
#endif
}

double measure_gemm_gflops(int n, int reps) {
  at::NoGradGuard ng;
  auto a = at::randn({n, n}), b = at::randn({n, n});
  auto c = at::matmul(a, b);  // warm-up: wakes the thread pool and faults the output in
  // Best of 5 rounds: a single round read 157-196 GFLOP/s on a machine whose GEMM sustains 300,
  // and an MFU above 1 against a too-low peak is meaningless.
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) at::mm_out(c, a, b);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n * reps / s / 1e9);
  }
  return best;
}

SystemInfo system_info(bool measure_gemm) {
  SystemInfo s;
  s.cuda = torch::cuda::is_available();
  s.device = s.cuda ? "cuda:0" : "cpu";
  s.libtorch_version = TORCH_VERSION;
  s.threads = at::get_num_threads();
  s.cores = static_cast<int>(std::thread::hardware_concurrency());
  s.blas = mapped_blas();  // the BLAS libtorch actually resolved, read from our own memory map
  s.blas_core = openblas_core();
  using get_fn = int (*)();
  if (auto f = reinterpret_cast<get_fn>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) s.blas_threads = f();
  s.blas_is_reference = !s.blas.empty() && s.blas.find("openblas") == std::string::npos &&
                        s.blas.find("mkl") == std::string::npos && s.blas.find("blis") == std::string::npos;
  if (measure_gemm) s.gemm_gflops = measure_gemm_gflops();
  return s;
}

std::string blas_warning(const SystemInfo& s) {
  if (s.blas_is_reference)
    return "warning: libtorch is using the slow reference BLAS (" + s.blas +
           "); install libopenblas0-pthread for ~40x faster training (installer/install-deps.sh does)";
  if (s.gemm_gflops > 0 && s.gemm_gflops < 10)
    return "warning: fp32 GEMM runs at only " + std::to_string(static_cast<int>(s.gemm_gflops)) + " GFLOP/s";
  return {};
}

}  // namespace hone
