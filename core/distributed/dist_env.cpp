// Distributed environment from launcher variables (see dist_env.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "distributed/dist_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "common/error.h"

namespace hone {

namespace {

int int_var(const std::function<const char*(const char*)>& get, const char* name, int fallback, int lo, int hi) {
  const char* v = get(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw Error(std::string("environment variable ") + name + "=\"" + v + "\" is not a whole number in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  return static_cast<int>(x);
}

}  // namespace

std::string first_slurm_host(const std::string& list) {
  // The first entry ends at a comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : list) {
    if (c == ',' && depth == 0) break;
    depth += c == '[' ? 1 : c == ']' ? -1 : 0;
    first += c;
  }
  // "prefix[01-04,07]suffix": each range's first value, its zero padding kept.
  for (size_t open; (open = first.find('[')) != std::string::npos;) {
    const size_t close = first.find(']', open);
    if (close == std::string::npos) throw Error("SLURM_JOB_NODELIST \"" + list + "\" has an unclosed '['");
    const std::string range = first.substr(open + 1, close - open - 1);
    first = first.substr(0, open) + range.substr(0, range.find_first_of(",-")) + first.substr(close + 1);
  }
  return first;
}

DistEnv dist_env_from(const std::function<const char*(const char*)>& get) {
  DistEnv e;
  constexpr int kMax = 1 << 20;
  if (get("WORLD_SIZE") || get("RANK")) {
    e.launcher = "torchrun";
    e.world_size = int_var(get, "WORLD_SIZE", 1, 1, kMax);
    e.rank = int_var(get, "RANK", 0, 0, kMax);
    e.local_rank = int_var(get, "LOCAL_RANK", e.rank, 0, kMax);
    e.local_world_size = int_var(get, "LOCAL_WORLD_SIZE", e.world_size, 1, kMax);
    if (const char* s = get("TORCHELASTIC_USE_AGENT_STORE")) e.agent_store = std::string(s) == "True";
    e.restart_count = int_var(get, "TORCHELASTIC_RESTART_COUNT", 0, 0, kMax);
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    e.launcher = "slurm";
    e.world_size = int_var(get, "SLURM_NTASKS", 1, 1, kMax);
    e.rank = int_var(get, "SLURM_PROCID", 0, 0, kMax);
    e.local_rank = int_var(get, "SLURM_LOCALID", 0, 0, kMax);
    // "2(x3)" or "2,1": the first node's count is enough for local ranks.
    if (const char* per = get("SLURM_NTASKS_PER_NODE")) e.local_world_size = std::max(1, std::atoi(per));
    else e.local_world_size = e.world_size;
  }
  if (e.rank >= e.world_size)
    throw Error("rank " + std::to_string(e.rank) + " is not below the world size " + std::to_string(e.world_size) +
                (e.launcher == "slurm" ? " (SLURM_PROCID, SLURM_NTASKS)" : " (RANK, WORLD_SIZE)"));
  if (e.local_rank >= e.local_world_size) e.local_world_size = e.local_rank + 1;
  e.master_port = int_var(get, "MASTER_PORT", 29500, 1, 65535);
  if (const char* a = get("MASTER_ADDR"); a && *a) {
    e.master_addr = a;
  } else if (e.distributed()) {
    const char* nodes = e.launcher == "slurm" ? get("SLURM_JOB_NODELIST") : nullptr;
    if (!nodes || !*nodes)
      throw Error("a run of " + std::to_string(e.world_size) + " processes needs MASTER_ADDR (the host of rank 0)");
    e.master_addr = first_slurm_host(nodes);
  }
  return e;
}

int free_local_port() {
  // Port 0 makes the kernel pick a free one; it stays free after the close in practice (the
  // kernel hands ports out in turn), which is as much as any launcher gets.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw Error("no free port on 127.0.0.1");
  return ntohs(a.sin_port);
}

DistEnv dist_env_from_process() {
  return dist_env_from([](const char* n) { return static_cast<const char*>(std::getenv(n)); });
}

std::string DistEnv::describe() const {
  if (!distributed()) return "one process";
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (local " + std::to_string(local_rank) + " of " +
         std::to_string(local_world_size) + "), rendezvous " + master_addr + ":" + std::to_string(master_port) + ", " + launcher +
         (agent_store ? " (agent's store)" : "");
}

}  // namespace hone
