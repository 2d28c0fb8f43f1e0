// Process-wide runtime set-up and facts: intra-op threads, BLAS in use, device, versions.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>

namespace hone {

struct SystemInfo {
  std::string device;           // "cpu" or "cuda:0 (<name>)"
  bool cuda = false;
  std::string libtorch_version;
  std::string blas;             // path of the BLAS library mapped into the process
  std::string blas_core;        // OpenBLAS's kernel set ("SkylakeX", "Haswell", ...; empty if not OpenBLAS)
  bool blas_is_reference = false;
  int threads = 1;       // libtorch intra-op threads
  int blas_threads = 0;  // OpenBLAS's own pool (0: unknown)
  int cores = 1;
  double gemm_gflops = 0;       // measured fp32 GEMM rate (0 if not measured)
};

// Call first thing in main(), before any other work. Debian's OpenBLAS (0.3.21) does not know
// CPUs newer than its release and falls back to its generic SSE3 kernels ("Prescott"): measured on
// an AVX-512 Xeon (family 6, model 207), fp32 GEMM ran at 62 GFLOP/s instead of 297. OpenBLAS
// reads OPENBLAS_CORETYPE only when it loads, so when it chose a generic kernel on a CPU with
// AVX-512 or AVX2 this sets the variable and re-executes the program (same pid, same argv).
// Does nothing when OPENBLAS_CORETYPE is already set, the BLAS is not OpenBLAS, or exec fails.
void tune_blas_kernel(char** argv);
// The kernel set tune_blas_kernel would choose for this CPU, or "" when OpenBLAS's own choice
// stands (exposed for tests).
std::string preferred_blas_kernel(const std::string& openblas_core);

// Sets the intra-op thread count: HONE_THREADS, else 1 with OpenBLAS-pthread (it threads GEMMs
// on its own pool, which would fight libtorch's OpenMP threads) and all cores otherwise; with
// OpenBLAS's OpenMP build (linked by default, see CMakeLists.txt) GEMMs and element-wise ops share
// one pool. Call once at start-up.
void init_runtime(int threads = 0);
SystemInfo system_info(bool measure_gemm);
// Measures fp32 GEMM GFLOP/s with an n x n matmul on the CPU.
double measure_gemm_gflops(int n = 512, int reps = 8);
// The same on CUDA device 0 (4096-square GEMMs in fp32 or bf16, synchronised), for MFU on a GPU.
double measure_cuda_gemm_gflops(bool bf16);
// The CUDA caching allocator's peak of allocated bytes on device 0 since the process started;
// -1 in a build without CUDA.
int64_t cuda_peak_memory_bytes();
// Shares the cores with other busy processes. An OpenMP team larger than the cores left to it
// stalls at every barrier while a member waits for a core (measured on 2 cores beside one busy
// process: 830 tokens/s quiet, 207 with 2 threads, 395 with 1). Called between steps, tick()
// counts the runnable tasks of other processes (/proc/stat procs_running less this process's
// running threads) and, after two readings that agree, sets libtorch's threads to the cores they
// leave (at least 1), and back to the full count when they are gone. HONE_ADAPT_THREADS=0 turns
// it off; it does nothing when the process started with 1 thread.
class ThreadGovernor {
 public:
  ThreadGovernor();
  int tick();  // the intra-op thread count now
  int threads() const { return current_; }

 private:
  int full_ = 1, current_ = 1, pending_ = -1;
  bool on_ = false;
};
// Runnable tasks on the machine that are not this process's threads (-1 when /proc is unreadable).
int other_runnable_tasks();

// A warning line when BLAS is Debian's slow reference build, else empty.
std::string blas_warning(const SystemInfo& s);

}  // namespace hone
