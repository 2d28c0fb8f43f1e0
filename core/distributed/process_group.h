// A c10d process group for data-parallel training: a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT
// (rank 0 hosts it) and ProcessGroupGloo for the collectives on CPU tensors. Collectives that wait
// longer than the timeout throw, so a lost rank stops the others instead of hanging them.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <vector>

#include "common/error.h"
#include "distributed/dist_env.h"

namespace hone {

// A collective failed: a rank stopped, the network failed or the timeout passed. The training
// session turns it into an interrupted run (resumable), naming the lost ranks where it can.
struct DistError : Error {
  explicit DistError(const std::string& what) : Error(what) {}
};

class ProcessGroup {
 public:
  // Joins the group; throws naming the rendezvous address when it cannot be reached in `timeout`.
  ProcessGroup(const DistEnv& env, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const DistEnv& env() const { return env_; }
  const std::string& backend() const { return backend_; }  // "gloo" or "nccl"

  // Averages the tensors across ranks in place. They are packed into flat fp32 buckets of at most
  // `bucket_bytes` (one collective per bucket rather than per tensor, as DDP's reducer does).
  void all_reduce_mean(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = int64_t{25} << 20);
  // The same, summing (gradients whose losses were already divided by the global count).
  void all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = int64_t{25} << 20);
  // Sum across ranks, in place, of one tensor in its own dtype.
  void all_reduce_sum(const at::Tensor& t);
  void broadcast(const at::Tensor& t, int root = 0);
  void barrier();

  // Rank `root` publishes `value` under `key` in the rendezvous store and returns it; the others
  // wait for it (up to the timeout) and return what it published. For small things only (a run's
  // folder and resolved config): the store is not for tensors.
  std::string share(const std::string& key, const std::string& value, int root = 0);

  // After a collective failed: which ranks are gone. Each survivor marks itself in the store and
  // waits up to `wait` for the others' marks; the ranks without one are named ("rank 1 of 2 was
  // lost"). When the store itself is gone, so is rank 0, which hosts it. Call once per failure.
  std::string diagnose_loss(std::chrono::milliseconds wait = std::chrono::milliseconds(3000));

 private:
  void all_reduce_buckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes, bool mean);
  struct Impl;
  DistEnv env_;
  std::string backend_ = "gloo";
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone
