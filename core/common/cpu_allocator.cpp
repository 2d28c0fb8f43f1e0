// The CPU allocator (see cpu_allocator.h): small blocks from malloc, large ones from mmap with a
// least-recently-freed cache of bounded size, keyed by size class.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <utility>
#include <map>
#include <vector>

namespace hone {
namespace {

// Every block starts with this header; the tensor's data follows it at 64 bytes (c10's alignment),
// so that the data pointer alone finds the block (the raw allocate/deallocate interface needs that).
constexpr size_t kHeader = 64;
constexpr size_t kLarge = size_t{1} << 20;
constexpr size_t kPage = 4096;
constexpr uint32_t kMagic = 0x484f4e45;  // "HONE"

struct Header {
  uint64_t bytes;   // the block's whole size, header included
  char* base;       // the block's start (the header sits just before the data)
  uint32_t magic;
  uint32_t mapped;  // 1: an mmap'd large block, 0: from malloc
};
// Large blocks start their data at one of 32 offsets within a page, in turn. Were every tensor's
// data at the same offset, the operands of an element-wise op would map to the same L1 sets and
// alias in the store buffer (4K aliasing): measured 10% slower steps than glibc's heap.
constexpr size_t kColours = 32;
std::atomic<uint32_t> g_colour{0};
static_assert(sizeof(Header) <= kHeader, "header fits before the data");

// A large request rounded up to an eighth of its power of two (at least a page): tensors of
// nearly equal sizes share a class and so reuse each other's blocks. The pages a smaller tensor
// never touches are never faulted in, so the rounding costs address space, not memory.
size_t size_class(size_t n) {
  const size_t total = n + kHeader + kColours * 64;
  const int lg = 63 - __builtin_clzll(static_cast<unsigned long long>(total));
  const size_t step = std::max(kPage, (size_t{1} << lg) >> 3);
  return (total + step - 1) / step * step;
}

struct Cache {
  std::mutex mu;
  std::list<std::pair<size_t, char*>> lru;  // freed blocks, newest first
  std::multimap<size_t, std::list<std::pair<size_t, char*>>::iterator> by_size;  // ordered: best fit
  uint64_t cached = 0, mapped = 0, peak = 0, hits = 0, misses = 0;
  uint64_t live_peak = 0;          // the most bytes in use (not cached) at once
  uint64_t limit = 2048ull << 20;  // see install_cpu_allocator
  uint64_t slack = kAutoSlackBytes;  // see set_cpu_allocator_slack
};

// The slack in force: the one set, or by default 1/25 of the live peak. Without one, a step near
// its peak asked for sizes no cached block held, gave back other blocks and faulted fresh pages
// in: 11 new mappings and 41,000 page faults (159 MB, about 55 ms on this VM) every step at the
// Qwen2.5-0.5B shape, none at 48 MB or more of slack (peak RSS +50 MB, 1.81 -> 1.86 GB).
uint64_t slack_of(const Cache& c) { return c.slack == kAutoSlackBytes ? c.live_peak / 25 : c.slack; }

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

// Drops the least recently freed cached block; the caller holds the lock and unmaps `out` after.
void evict_oldest(Cache& c, std::vector<std::pair<size_t, char*>>& out) {
  auto victim = std::prev(c.lru.end());
  auto range = c.by_size.equal_range(victim->first);
  for (auto it = range.first; it != range.second; ++it)
    if (it->second == victim) {
      c.by_size.erase(it);
      break;
    }
  c.cached -= victim->first;
  c.mapped -= victim->first;
  out.push_back(*victim);
  c.lru.erase(victim);
}

char* map_block(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TORCH_CHECK(p != MAP_FAILED, "out of memory: could not allocate ", bytes >> 20, " MB for a tensor (", std::strerror(errno), ")");
  return static_cast<char*>(p);
}

void* take_large(size_t n) {
  const size_t cls = size_class(n);
  Cache& c = cache();
  char* base = nullptr;
  size_t got = cls;  // the block's size: cls, or a cached larger one's
  std::vector<std::pair<size_t, char*>> out;  // unmapped after the lock is released
  {
    std::lock_guard<std::mutex> lk(c.mu);
    // The smallest cached block that holds the request, up to twice its size. Taking a larger
    // block costs nothing the process does not already hold (its pages were faulted in by its last
    // user), where mapping a new one near the peak would first evict cached blocks and then fault
    // in fresh pages: a bf16-base step faulted 0.8 GB of pages in backward that way.
    if (auto it = c.by_size.lower_bound(cls); it != c.by_size.end() && it->first <= 2 * cls) {
      got = it->first;
      base = it->second->second;
      c.lru.erase(it->second);
      c.by_size.erase(it);
      c.cached -= got;
      ++c.hits;
    } else {
      ++c.misses;
      // The cache never raises the peak: before mapping, freed blocks go back to the system until
      // what is mapped fits within the most the program itself has held at once. Without this a
      // step's freed temporaries of other sizes sat in the cache at the moment the kept
      // activations peaked (bf16 base, Qwen2.5-0.5B shape: 3.94 GB against 2.7 GB under glibc).
      c.live_peak = std::max(c.live_peak, c.mapped - c.cached + cls);
      while (!c.lru.empty() && c.mapped + cls > c.live_peak + slack_of(c)) evict_oldest(c, out);
    }
    c.live_peak = std::max(c.live_peak, c.mapped - c.cached + (base ? 0 : cls));
  }
  for (auto& [bytes, p] : out) ::munmap(p, bytes);
  if (!base) {
    base = map_block(cls);
    std::lock_guard<std::mutex> lk(c.mu);
    c.mapped += cls;
    c.peak = std::max(c.peak, c.mapped);
  }
  char* data = base + kHeader + (g_colour.fetch_add(1, std::memory_order_relaxed) % kColours) * 64;
  auto* h = reinterpret_cast<Header*>(data - kHeader);
  h->bytes = got;
  h->base = base;
  h->magic = kMagic;
  h->mapped = 1;
  return data;
}

void* take_small(size_t n) {
  void* p = nullptr;
  TORCH_CHECK(::posix_memalign(&p, kHeader, n + kHeader) == 0 && p, "out of memory: could not allocate ", n, " bytes for a tensor");
  auto* h = static_cast<Header*>(p);
  h->bytes = n + kHeader;
  h->base = static_cast<char*>(p);
  h->magic = kMagic;
  h->mapped = 0;
  return static_cast<char*>(p) + kHeader;
}

void release(void* data) {
  if (!data) return;
  auto* h = reinterpret_cast<Header*>(static_cast<char*>(data) - kHeader);
  TORCH_INTERNAL_ASSERT(h->magic == kMagic, "hone cpu allocator: freeing a block it did not allocate");
  char* base = h->base;
  if (!h->mapped) {
    h->magic = 0;
    std::free(base);
    return;
  }
  const size_t cls = h->bytes;
  Cache& c = cache();
  std::vector<std::pair<size_t, char*>> out;  // unmapped after the lock is released
  {
    std::lock_guard<std::mutex> lk(c.mu);
    c.lru.emplace_front(cls, base);
    c.by_size.emplace(cls, c.lru.begin());
    c.cached += cls;
    while (c.cached > c.limit && !c.lru.empty()) evict_oldest(c, out);
  }
  for (auto& [bytes, p] : out) ::munmap(p, bytes);
}

struct HoneCpuAllocator final : public c10::Allocator {
  c10::DataPtr allocate(size_t n) const override {
    void* data = n == 0 ? nullptr : n >= kLarge ? take_large(n) : take_small(n);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
};

std::atomic<bool> g_installed{false};

}  // namespace

void install_cpu_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* e = std::getenv("HONE_CPU_ALLOCATOR"); e && std::strcmp(e, "system") == 0) return;
    if (const char* e = std::getenv("HONE_ALLOC_SLACK_MB")) cache().slack = static_cast<uint64_t>(std::max(0L, std::atol(e))) << 20;
    if (const char* e = std::getenv("HONE_ALLOC_CACHE_MB")) cache().limit = static_cast<uint64_t>(std::max(0L, std::atol(e))) << 20;
    static HoneCpuAllocator alloc;
    c10::SetCPUAllocator(&alloc, /*priority=*/100);
    g_installed = true;
  });
}

bool cpu_allocator_installed() { return g_installed; }

uint64_t set_cpu_allocator_slack(uint64_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  return std::exchange(c.slack, bytes);
}

void trim_cpu_allocator() {
  Cache& c = cache();
  std::vector<std::pair<size_t, char*>> out;
  {
    std::lock_guard<std::mutex> lk(c.mu);
    while (!c.lru.empty()) evict_oldest(c, out);
    c.live_peak = c.peak = c.mapped;
  }
  for (auto& [bytes, p] : out) ::munmap(p, bytes);
}

CpuAllocatorStats cpu_allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  CpuAllocatorStats s;
  s.mapped_bytes = c.mapped;
  s.cached_bytes = c.cached;
  s.peak_mapped_bytes = c.peak;
  s.hits = c.hits;
  s.misses = c.misses;
  s.cache_limit_bytes = c.limit;
  s.live_peak_bytes = c.live_peak;
  s.slack_bytes = slack_of(c);
  return s;
}

}  // namespace hone
