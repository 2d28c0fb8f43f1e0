// hone-cli launch: starts N local processes of one hone-cli command with the environment torchrun
// would give them (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), for
// users without Python. Forwards stop signals to every rank, reports a rank that dies in one line
// naming it, and stops the rest if they do not follow within a grace period.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "distributed/dist_env.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace hone::cli {

const char* const kLaunchUsage = R"(usage: hone-cli launch --nproc N [--master-port P] [--grace SECONDS] -- COMMAND [ARGS...]

Runs N processes of `hone-cli COMMAND ARGS...` on this machine as one data-parallel job (see
docs/scale-out.md), e.g.  hone-cli launch --nproc 2 -- train --config run.json
Each process gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and
MASTER_PORT (a free port unless --master-port), as torchrun sets them, and a share of the cores.
Rank 0 prints what the command prints; the other ranks print only their errors (prefixed with
their rank). Ctrl-C, SIGTERM, SIGHUP and SIGUSR1 reach every rank, which stop together after the
step in progress; SIGUSR2 pauses all ranks together after the step in progress and, sent again,
resumes them. When a rank dies, this says which and how; the others stop on their own within
seconds (their collectives fail) and are terminated if they have not after --grace seconds
(default 60). The exit status is rank 0's, or 1 when a rank failed.
)";


namespace {

volatile sig_atomic_t g_forward = 0;

std::string how_it_ended(int st) {
  if (WIFSIGNALED(st)) return "was killed by signal " + std::to_string(WTERMSIG(st)) + " (" + ::strsignal(WTERMSIG(st)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(st));
}

// Rank 0 died without finishing: its run's lock is free now, so opening the workspace marks the run
// interrupted at once (rather than when someone next opens it), and the reason names rank 0's end.
// The workspace is the command's --workspace, else the default, as the rank itself chose it.
void mark_rank0_run(const std::vector<char*>& child_argv, pid_t rank0, int st, int nproc) {
  std::string ws = default_workspace();
  for (size_t k = 1; k + 1 < child_argv.size(); ++k) {
    const std::string a = child_argv[k];
    if (a == "--workspace" && child_argv[k + 1]) ws = child_argv[k + 1];
    else if (a.rfind("--workspace=", 0) == 0) ws = a.substr(12);
  }
  if (!is_directory(ws)) return;
  try {
    Workspace w(ws);
    for (const auto& r : w.reaped()) {
      if (r.pid != rank0) continue;
      note_run_error(w, r.id, "rank 0 (pid " + std::to_string(rank0) + ") " + how_it_ended(st) +
                                  " before the run finished; continue with: hone-cli launch --nproc " + std::to_string(nproc) +
                                  " -- runs resume " + std::to_string(r.id));
      std::cerr << "hone-cli launch: run " << r.id << " (" << r.name << ") is marked interrupted; continue it with: hone-cli launch --nproc "
                << nproc << " -- runs resume " << r.id << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "hone-cli launch: cannot mark rank 0's run interrupted in " << ws << ": " << e.what() << std::endl;
  }
}

}  // namespace

int cmd_launch(int argc, char** argv) {
  int nproc = 0, port = 0, grace = 60;
  int i = 2;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) {
      if (i + 1 >= argc) throw Error(std::string("launch: ") + name + " needs a value");
      return std::string(argv[++i]);
    };
    auto number = [&](const char* name, int lo, int hi) {
      const std::string v = value(name);
      char* end = nullptr;
      const long x = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || x < lo || x > hi)
        throw Error(std::string("launch: ") + name + " must be a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return static_cast<int>(x);
    };
    if (a == "--help" || a == "-h") {
      std::cout << kLaunchUsage;
      return 0;
    }
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "--nproc") nproc = number("--nproc", 1, 1024);
    else if (a == "--master-port") port = number("--master-port", 1, 65535);
    else if (a == "--grace") grace = number("--grace", 0, 86400);
    else throw Error("launch: unknown option '" + a + "' (the command goes after --)");
  }
  if (nproc <= 0) throw Error("launch: --nproc N is required");
  if (i >= argc) throw Error("launch: no command after -- (e.g. hone-cli launch --nproc 2 -- train --config run.json)");
  if (!std::strcmp(argv[i], "launch")) throw Error("launch: the command cannot be launch itself");
  if (port == 0) port = free_local_port();

  std::vector<char*> child_argv = {argv[0]};
  for (int k = i; k < argc; ++k) child_argv.push_back(argv[k]);
  child_argv.push_back(nullptr);

  // Stop signals are recorded here and passed on to the ranks by the loop below.
  struct sigaction sa {};
  sa.sa_handler = [](int sig) { g_forward = sig; };
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) ::sigaction(sig, &sa, nullptr);

  std::vector<pid_t> pids(static_cast<size_t>(nproc), -1);
  std::string listing;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGTERM);
      throw Error("launch: cannot start rank " + std::to_string(r) + ": " + std::strerror(errno));
    }
    if (pid == 0) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) ::sigaction(sig, &dfl, nullptr);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      ::execv("/proc/self/exe", child_argv.data());
      std::cerr << "[rank " << r << "] error: cannot run " << argv[0] << ": " << std::strerror(errno) << "\n";
      ::_exit(127);
    }
    pids[static_cast<size_t>(r)] = pid;
    listing += (r ? ", " : "") + std::string("rank ") + std::to_string(r) + " pid " + std::to_string(pid);
  }
  std::cerr << "hone-cli launch: " << nproc << " processes, rendezvous 127.0.0.1:" << port << "; " << listing << std::endl;

  using Clock = std::chrono::steady_clock;
  int alive = nproc, rank0_status = 0, failed_rank = -1;
  Clock::time_point first_failure{};
  bool terminated = false, killed = false;
  while (alive > 0) {
    if (const int sig = g_forward) {
      g_forward = 0;
      for (pid_t p : pids)
        if (p > 0) ::kill(p, sig);
    }
    int st = 0;
    const pid_t done = ::waitpid(-1, &st, WNOHANG);
    if (done > 0) {
      for (size_t r = 0; r < pids.size(); ++r) {
        if (pids[r] != done) continue;
        pids[r] = -1;
        --alive;
        const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (r == 0) rank0_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r == 0 && !ok) mark_rank0_run(child_argv, done, st, nproc);
        // The first rank to fail is the news; the others then fail because it did.
        if (!ok && failed_rank < 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 130)) {
          failed_rank = static_cast<int>(r);
          first_failure = Clock::now();
          std::cerr << "hone-cli launch: rank " << r << " (pid " << done << ") " << how_it_ended(st)
                    << (alive ? "; the other ranks stop" : "") << std::endl;
        }
      }
      continue;
    }
    if (done < 0 && errno == ECHILD) break;
    if (failed_rank >= 0 && alive > 0) {
      const double waited = std::chrono::duration<double>(Clock::now() - first_failure).count();
      if (!terminated && waited > grace) {
        std::cerr << "hone-cli launch: " << alive << " rank(s) still running " << grace << " s after rank " << failed_rank
                  << " failed; terminating them" << std::endl;
        for (pid_t p : pids)
          if (p > 0) ::kill(p, SIGTERM);
        terminated = true;
      } else if (terminated && !killed && waited > grace + 15) {
        for (pid_t p : pids)
          if (p > 0) ::kill(p, SIGKILL);
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failed_rank >= 0) return rank0_status != 0 ? rank0_status : 1;
  return rank0_status;
}

}  // namespace hone::cli
