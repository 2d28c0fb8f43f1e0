// Process-wide runtime set-up and facts: intra-op threads, BLAS in use, device, versions.
#pragma once
#include <string>

namespace hone {

struct SystemInfo {
  std::string device;           // "cpu" or "cuda:0 (<name>)"
  bool cuda = false;
  std::string libtorch_version;
  std::string blas;             // path of the BLAS library mapped into the process
  bool blas_is_reference = false;
  int threads = 1;       // libtorch intra-op threads
  int blas_threads = 0;  // OpenBLAS's own pool (0: unknown)
  int cores = 1;
  double gemm_gflops = 0;       // measured fp32 GEMM rate (0 if not measured)
};

// Sets the intra-op thread count: HONE_THREADS, else 1 with OpenBLAS-pthread (it threads GEMMs
// itself) and all cores with other BLAS libraries. Call once at start-up.
void init_runtime(int threads = 0);
SystemInfo system_info(bool measure_gemm);
// Measures fp32 GEMM GFLOP/s with an n x n matmul on the CPU.
double measure_gemm_gflops(int n = 512, int reps = 8);
// A warning line when BLAS is Debian's slow reference build, else empty.
std::string blas_warning(const SystemInfo& s);

}  // namespace hone
