// Splitting a loop over the cores, for Hone's own CPU kernels (fused norms, RoPE, softmax, the
// few-row GEMMs). at::parallel_for runs its loop in parallel only in a translation unit built with
// -fopenmp (ATen/ParallelOpenMP.h defines INTRA_OP_PARALLEL from _OPENMP), which Hone's are not:
// there it ran every kernel on one core. This one is built with -fopenmp once (parallel.cpp) and
// uses libgomp's pool, the pool oneDNN's and OpenBLAS's GEMMs run on.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>

namespace hone {

// f(lo, hi) over [begin, end) in at most `threads` contiguous ranges of at least `grain` items
// (ATen's split); inline when one range suffices or when already inside a parallel region. An
// exception from any range is rethrown here after all have ended.
void parallel_ranges(int64_t begin, int64_t end, int64_t grain, int threads, const std::function<void(int64_t, int64_t)>& f);

// The threads Hone's work runs on now: at::get_num_threads(), as init_runtime and the
// ThreadGovernor set it (common/runtime.cpp).
int kernel_threads();

// parallel_ranges with kernel_threads().
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  parallel_ranges(begin, end, grain, kernel_threads(), f);
}

}  // namespace hone
