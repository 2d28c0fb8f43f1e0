// Where a process stands in a distributed run, read from the environment the way launchers set it:
// torchrun (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or SLURM's srun
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE, SLURM_JOB_NODELIST), mapped as
// torchrun's users expect. torchrun's variables win where both are set. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <functional>
#include <string>

namespace hone {

struct DistEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "none";  // none | torchrun | slurm
  // torchrun's static rendezvous hosts the store in its agent at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank is then a client, under the key prefix
  // /worker/attempt_<TORCHELASTIC_RESTART_COUNT>, as torch.distributed's env:// does.
  bool agent_store = false;
  int restart_count = 0;
  bool distributed() const { return world_size > 1; }
  std::string describe() const;  // "rank 1 of 4 (local 1 of 2), rendezvous 10.0.0.1:29500, torchrun"
};

// `get` returns a variable's value or nullptr. Throws naming the variable when one is malformed
// (not a number, out of range, rank >= world size) or when a multi-process run lacks MASTER_ADDR and
// no SLURM node list names the first host.
DistEnv dist_env_from(const std::function<const char*(const char*)>& get);
DistEnv dist_env_from_process();

// A TCP port on 127.0.0.1 that was free a moment ago (a local rendezvous); throws when none is.
int free_local_port();

// The first host of a SLURM host list: "node[01-04,07],gpu3" -> "node01", "a1,a2" -> "a1".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace hone
