// Runtime set-up. Debian's libtorch runs single-threaded unless told (platform-notes §2) and is
// 40x slower on the reference BLAS (§1), so both are set and reported explicitly.
#include "common/runtime.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace hone {

void init_runtime(int threads) {
  if (threads <= 0) {
    if (const char* e = std::getenv("HONE_THREADS")) threads = std::atoi(e);
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
}

double measure_gemm_gflops(int n, int reps) {
  at::NoGradGuard ng;
  auto a = at::randn({n, n}), b = at::randn({n, n});
  auto c = at::matmul(a, b);  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) c = at::matmul(a, b);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * n * n * n * reps / s / 1e9;
}

SystemInfo system_info(bool measure_gemm) {
  SystemInfo s;
  s.cuda = torch::cuda::is_available();
  s.device = s.cuda ? "cuda:0" : "cpu";
  s.libtorch_version = TORCH_VERSION;
  s.threads = at::get_num_threads();
  s.cores = static_cast<int>(std::thread::hardware_concurrency());
  // The BLAS that libtorch actually resolved: read it from our own memory map.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if (path.find("libopenblas") != std::string::npos || path.find("openblas") != std::string::npos ||
        path.find("libblas.so") != std::string::npos || path.find("libmkl") != std::string::npos ||
        path.find("libblis") != std::string::npos) {
      s.blas = path;
      if (path.find("openblas") != std::string::npos || path.find("mkl") != std::string::npos ||
          path.find("blis") != std::string::npos)
        break;
    }
  }
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
