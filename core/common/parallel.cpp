// libgomp parallel regions for Hone's kernels (see parallel.h). Built with -fopenmp, no torch.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>

namespace hone {

void parallel_ranges(int64_t begin, int64_t end, int64_t grain, int threads, const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  const int64_t n = end - begin;
  const int64_t most = grain > 0 ? (n + grain - 1) / grain : n;
  if (threads <= 1 || most <= 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  // The team size is set on this thread rather than with a num_threads clause: changing a team's
  // size per region makes libgomp start and stop pool threads (ATen avoids it for the same reason).
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
  std::atomic_flag failed = ATOMIC_FLAG_INIT;
  std::exception_ptr error;
#pragma omp parallel
  {
    const int64_t tasks = std::min<int64_t>(omp_get_num_threads(), most);
    const int64_t chunk = (n + tasks - 1) / tasks;
    const int64_t lo = begin + omp_get_thread_num() * chunk;
    if (omp_get_thread_num() < tasks && lo < end) {
      try {
        f(lo, std::min(end, lo + chunk));
      } catch (...) {
        if (!failed.test_and_set()) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace hone
