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
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstddef>
#include <cstdint>

namespace hone {

// Makes this allocator c10's CPU allocator (every at::empty on the CPU from then on). Idempotent.
// HONE_CPU_ALLOCATOR=system keeps libtorch's own; HONE_ALLOC_CACHE_MB sets the cache's bound
// (default 2048). Two rules keep the cache from raising the peak: a request takes the smallest
// cached block that holds it, up to twice its size (its pages are resident already), and before
// mapping a new block, cached blocks are unmapped, oldest first, until what is mapped stays within
// the program's own peak use plus a slack (set_cpu_allocator_slack).
void install_cpu_allocator();
bool cpu_allocator_installed();

struct CpuAllocatorStats {
  uint64_t mapped_bytes = 0;       // large blocks in use or cached, now
  uint64_t cached_bytes = 0;       // of which freed and kept for reuse
  uint64_t peak_mapped_bytes = 0;  // the most mapped at once
  uint64_t hits = 0, misses = 0;   // large allocations served from the cache / by a new mapping
  uint64_t cache_limit_bytes = 0;
  uint64_t live_peak_bytes = 0;    // the most in use (not cached) at once, since the last trim
  uint64_t slack_bytes = 0;        // how far the cache may take `mapped` above that (in force now)
};
CpuAllocatorStats cpu_allocator_stats();

// Returns every cached block to the system and starts the peaks over from what is in use now.
// Called once a model is built: the cache may hold as much as the most the program has held at
// once, and building one (a model constructed in fp32, then stored in bf16) holds far more than
// training it will.
void trim_cpu_allocator();

// The cache gives freed blocks back before a new mapping would take what is mapped more than this
// above the live peak (HONE_ALLOC_SLACK_MB). The default, kAutoSlackBytes, is 1/25 of the live
// peak: at the Qwen2.5-0.5B shape (LoRA, bf16 base) no step after the first maps a new block, for
// 50 MB more peak; with none, 41,000 pages were faulted in afresh every step. Returns the previous
// value (kAutoSlackBytes for the default).
constexpr uint64_t kAutoSlackBytes = ~uint64_t{0};
uint64_t set_cpu_allocator_slack(uint64_t bytes);

}  // namespace hone
