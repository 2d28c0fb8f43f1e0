// c10d process group over Gloo (see process_group.h).
#include "dist/process_group.h"

#include <signal.h>

#include <cstdlib>

// ProcessGroupGloo.hpp declares nothing unless this is set (platform-notes §7).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/error.h"

namespace hone {

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

namespace {

// Runs a collective (its call and its wait: either may report a lost peer) as one hone::Error.
template <typename F>
void collective(const char* what, F&& start) {
  try {
    start()->wait();
  } catch (const std::exception& e) {
    throw Error(std::string("distributed ") + what + " failed (a rank stopped or the network failed): " + e.what());
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
    o.isServer = env.rank == 0;
    o.numWorkers = static_cast<size_t>(env.world_size);
    o.waitWorkers = true;
    o.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // The interface Gloo binds: GLOO_SOCKET_IFNAME as PyTorch reads it, the loopback for a
    // rendezvous on this machine, else the address this host's name resolves to.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, opts);
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
    std::vector<at::Tensor> bucket = {at::cat(flat)};  // [sum of numels]
    collective("all-reduce", [&] { return impl_->pg->allreduce(bucket); });
    if (mean) bucket[0].div_(static_cast<double>(env_.world_size));
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].detach().copy_(bucket[0].narrow(0, off, n).view(tensors[k].sizes()));
      off += n;
    }
    i = j;
  }
}

void ProcessGroup::all_reduce_sum(const at::Tensor& t) {
  if (env_.world_size == 1) return;
  std::vector<at::Tensor> v = {t};
  collective("all-reduce", [&] { return impl_->pg->allreduce(v); });
}

void ProcessGroup::broadcast(const at::Tensor& t, int root) {
  if (env_.world_size == 1) return;
  std::vector<at::Tensor> v = {t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  collective("broadcast", [&] { return impl_->pg->broadcast(v, o); });
}

void ProcessGroup::barrier() {
  if (env_.world_size == 1) return;
  collective("barrier", [&] { return impl_->pg->barrier(); });
}

}  // namespace hone
