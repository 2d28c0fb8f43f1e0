// c10d process group over Gloo (see process_group.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "distributed/process_group.h"

#include <signal.h>

#include <cstdlib>
#include <thread>

// ProcessGroupGloo.hpp declares nothing unless this is set (platform-notes §7).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// A libtorch built with CUDA and NCCL (a PyTorch wheel's): NCCL for CUDA tensors (CMake sets
// HONE_WITH_NCCL when the header and CUDA libraries are there).
#ifdef HONE_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/cuda.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace hone {

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef HONE_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  at::Device device = at::kCPU;  // where the backend wants its tensors
  // Calls f with the backend (their common base differs between libtorch versions).
  template <typename F>
  auto with(F&& f) {
#ifdef HONE_WITH_NCCL
    if (nccl) return f(*nccl);
#endif
    return f(*gloo);
  }
};

namespace {

// Runs a collective (its call and its wait: either may report a lost peer) as one hone::Error.
template <typename F>
void collective(const char* what, F&& start) {
  try {
    start()->wait();
  } catch (const std::exception& e) {
    throw DistError(std::string("distributed ") + what + " failed (a rank stopped or the network failed): " + e.what());
  }
}

}  // namespace

ProcessGroup::ProcessGroup(const DistEnv& env, std::chrono::milliseconds timeout) : env_(env), impl_(std::make_unique<Impl>()) {
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  // A write to the socket of a rank that has gone raises SIGPIPE, whose default action kills this
  // process without a word; ignored (as the Python interpreter ignores it under torchrun), the
  // write fails and the collective reports it.
  ::signal(SIGPIPE, SIG_IGN);
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(env.master_port);
    o.isServer = env.rank == 0 && !env.agent_store;
    o.numWorkers = static_cast<size_t>(env.world_size);
    o.waitWorkers = !env.agent_store;
    o.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    if (env.agent_store)
      impl_->store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(env.restart_count), impl_->store);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // The interface Gloo binds: GLOO_SOCKET_IFNAME as PyTorch reads it, the loopback for a
    // rendezvous on this machine, else the address this host's name resolves to.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
#ifdef HONE_WITH_NCCL
    // NCCL for a run on GPUs (each process sees its own GPU as device 0: see CUDA_VISIBLE_DEVICES
    // in hone-cli train), unless HONE_DIST_BACKEND=gloo.
    const char* want = std::getenv("HONE_DIST_BACKEND");
    if (torch::cuda::is_available() && !(want && std::string(want) == "gloo")) {
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = timeout;
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, nopts);
      impl_->device = at::Device(at::kCUDA, 0);
      backend_ = "nccl";
      return;
    }
#endif
    impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, opts);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " could not join the process group at " + where + ": " + e.what());
  }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::all_reduce_mean(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  all_reduce_buckets(tensors, bucket_bytes, true);
}

void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  all_reduce_buckets(tensors, bucket_bytes, false);
}

void ProcessGroup::all_reduce_buckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes, bool mean) {
  if (env_.world_size == 1) return;
  at::NoGradGuard ng;
  size_t i = 0;
  while (i < tensors.size()) {
    // One bucket: consecutive tensors up to bucket_bytes (at least one).
    size_t j = i;
    int64_t bytes = 0;
    std::vector<at::Tensor> flat;
    while (j < tensors.size() && (j == i || bytes + tensors[j].numel() * 4 <= bucket_bytes)) {
      bytes += tensors[j].numel() * 4;
      flat.push_back(tensors[j].detach().to(at::kFloat).reshape({-1}));
      ++j;
    }
    std::vector<at::Tensor> bucket = {at::cat(flat).to(impl_->device)};  // [sum of numels]
    collective("all-reduce", [&] { return impl_->with([&](auto& pg) { return pg.allreduce(bucket); }); });
    if (mean) bucket[0].div_(static_cast<double>(env_.world_size));
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].detach().copy_(bucket[0].narrow(0, off, n).view(tensors[k].sizes()));  // copy_ converts dtype and device
      off += n;
    }
    i = j;
  }
}

void ProcessGroup::all_reduce_sum(const at::Tensor& t) {
  if (env_.world_size == 1) return;
  std::vector<at::Tensor> v = {t.to(impl_->device)};  // the same tensor when already there
  collective("all-reduce", [&] { return impl_->with([&](auto& pg) { return pg.allreduce(v); }); });
  if (!v[0].is_same(t)) t.copy_(v[0]);
}

void ProcessGroup::broadcast(const at::Tensor& t, int root) {
  if (env_.world_size == 1) return;
  std::vector<at::Tensor> v = {t.to(impl_->device)};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  collective("broadcast", [&] { return impl_->with([&](auto& pg) { return pg.broadcast(v, o); }); });
  if (!v[0].is_same(t)) t.copy_(v[0]);
}

void ProcessGroup::barrier() {
  if (env_.world_size == 1) return;
  collective("barrier", [&] { return impl_->with([&](auto& pg) { return pg.barrier(); }); });
}

std::string ProcessGroup::share(const std::string& key, const std::string& value, int root) {
  if (env_.world_size == 1) return value;
  try {
    if (env_.rank == root) {
      impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
      return value;
    }
    auto v = impl_->store->get(key);  // waits for the key up to the store's timeout
    return std::string(v.begin(), v.end());
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(env_.rank) + " waited for rank " + std::to_string(root) + " in vain (" +
                    std::string(e.what()).substr(0, 200) + "); rank " + std::to_string(root) + " stopped before sharing '" +
                    key + "'");
  }
}

std::string ProcessGroup::diagnose_loss(std::chrono::milliseconds wait) {
  const std::string n = std::to_string(env_.world_size);
  try {
    impl_->store->setTimeout(wait);
    impl_->store->set("hone/alive/" + std::to_string(env_.rank), std::vector<uint8_t>{1});
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::vector<int> lost;
    for (;;) {
      lost.clear();
      for (int r = 0; r < env_.world_size; ++r)
        if (!impl_->store->check({"hone/alive/" + std::to_string(r)})) lost.push_back(r);
      if (lost.empty() || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (lost.empty()) return "every rank of " + n + " is alive; the network or a timeout failed the collective";
    std::string s = lost.size() == 1 ? "rank " : "ranks ";
    for (size_t i = 0; i < lost.size(); ++i) s += (i ? ", " : "") + std::to_string(lost[i]);
    return s + " of " + n + (lost.size() == 1 ? " was" : " were") + " lost";
  } catch (const std::exception&) {
    return "rank 0 of " + n + " (which hosts the rendezvous at " + env_.master_addr + ":" +
           std::to_string(env_.master_port) + ") was lost";
  }
}

}  // namespace hone
