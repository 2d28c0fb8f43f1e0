// Memory figures that mean memory: what the process needs resident (anonymous + shared memory),
// apart from the pages of memory-mapped files (a model read from disk), which the kernel can drop
// and read again, and which VmRSS/VmHWM count as if they were the run's.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>

namespace hone {

struct MemoryUse {
  int64_t anon = 0, file = 0, shmem = 0;  // RssAnon, RssFile, RssShmem (bytes)
  int64_t rss = 0, rss_peak = 0;          // VmRSS and VmHWM: everything resident, mapped files included
  int64_t needed() const { return anon + shmem; }
};

// This process's figures now, from /proc/self/status (zeros where the kernel does not say).
MemoryUse memory_use();

// Starts, once per process, a thread that samples memory_use().needed() every 10 ms, so that the
// peak below sees the short high points of a training step (the activations of its forward pass).
// A peak shorter than the period can be missed; VmHWM (rss_peak) misses none but counts file pages.
void watch_memory();
// The highest needed() seen since watch_memory() (or this call, which samples too), in bytes.
int64_t needed_peak();

}  // namespace hone
