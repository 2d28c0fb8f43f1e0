// libtorch's CPU allocator replaced by one that returns large tensors' memory to the system.
//
// glibc serves blocks under 32 MB from its heap, where a training step's short-lived tensors and
// the activations kept for backward interleave; the holes the temporaries leave cannot be given
// back, so the process's resident size ran 0.4-0.5 GB over what it held (Qwen2.5-0.5B shape, LoRA,
// seq 512: peak RSS 3.75 GB, 3.27 GB with glibc told to mmap every block over 1 MB, but 26% slower
// for the page faults of fresh mappings). Here every block of 1 MB or more is its own mapping,
// unmapped when freed, except for a bounded cache of freed blocks that later allocations of the
// same size class reuse: a step allocates the same sizes layer after layer and step after step,
// so the cache is hit almost always and pages are rarely faulted in twice.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hone {

// Makes this allocator c10's CPU allocator (every at::empty on the CPU from then on). Idempotent.
// HONE_CPU_ALLOCATOR=system keeps libtorch's own; HONE_ALLOC_CACHE_MB sets the cache's bound
// (default 2048: with 256 a step faulted in 1.41M pages against glibc's 0.96M and ran 10%
// slower; with 2048, 0.89M and glibc's speed, and the peak was 20 MB higher).
void install_cpu_allocator();
bool cpu_allocator_installed();

struct CpuAllocatorStats {
  uint64_t mapped_bytes = 0;       // large blocks in use or cached, now
  uint64_t cached_bytes = 0;       // of which freed and kept for reuse
  uint64_t peak_mapped_bytes = 0;  // the most mapped at once
  uint64_t hits = 0, misses = 0;   // large allocations served from the cache / by a new mapping
  uint64_t cache_limit_bytes = 0;
};
CpuAllocatorStats cpu_allocator_stats();

}  // namespace hone
