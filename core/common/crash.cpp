// Crash reports. Everything the handler touches is prepared beforehand in fixed buffers, because
// after a fatal signal the heap and any lock may be in any state: the handler itself uses only
// open/write/mkdir/vfork/execv and glibc's backtrace, preloaded at install. Not fork(): glibc's fork
// runs its atfork handlers, which take every malloc arena lock, so a signal that lands while the
// training thread is inside malloc deadlocked the dying process (a CI run hung on it for an hour).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/crash.h"

#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>

namespace hone {
namespace {

constexpr size_t kPath = 4096;
char g_program[64] = "hone";
char g_exe[kPath] = "";
char g_ws[kPath] = "";
std::atomic<int64_t> g_run{0};
std::mutex g_ws_mu;  // setters only; the handler reads without it (a torn read only misplaces a report)

// A tiny string builder over a fixed buffer (no allocation).
struct Buf {
  char* p;
  size_t cap, n = 0;
  Buf(char* b, size_t c) : p(b), cap(c) { p[0] = 0; }
  Buf& s(const char* x) {
    while (*x && n + 1 < cap) p[n++] = *x++;
    p[n] = 0;
    return *this;
  }
  Buf& i(long long v, int width = 0) {
    char d[24];
    int k = 0;
    const bool neg = v < 0;
    unsigned long long u = neg ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    do d[k++] = static_cast<char>('0' + u % 10); while ((u /= 10) && k < 22);
    while (k < width && k < 22) d[k++] = '0';
    if (neg) s("-");
    while (k) {
      char c[2] = {d[--k], 0};
      s(c);
    }
    return *this;
  }
  Buf& hex(unsigned long long u) {
    char d[20];
    int k = 0;
    do d[k++] = "0123456789abcdef"[u % 16]; while ((u /= 16) && k < 18);
    s("0x");
    while (k) {
      char c[2] = {d[--k], 0};
      s(c);
    }
    return *this;
  }
};

void put(int fd, const char* s) {
  if (fd < 0) return;
  size_t n = std::strlen(s);
  while (n) {
    const ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
  }
}

// UTC calendar date from a Unix time without gmtime (not async-signal-safe); days-to-civil as in
// the proleptic Gregorian calendar.
void utc_fields(time_t t, int f[6]) {
  long long days = t / 86400, secs = t % 86400;
  if (secs < 0) secs += 86400, --days;
  days += 719468;
  const long long era = (days >= 0 ? days : days - 146096) / 146097;
  const long long doe = days - era * 146097;
  const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long long mp = (5 * doy + 2) / 153;
  const long long d = doy - (153 * mp + 2) / 5 + 1;
  const long long m = mp < 10 ? mp + 3 : mp - 9;
  f[0] = static_cast<int>(yoe + era * 400 + (m <= 2));
  f[1] = static_cast<int>(m);
  f[2] = static_cast<int>(d);
  f[3] = static_cast<int>(secs / 3600);
  f[4] = static_cast<int>(secs / 60 % 60);
  f[5] = static_cast<int>(secs % 60);
}

void on_fatal(int sig, siginfo_t* info, void*) {
  static volatile sig_atomic_t entered = 0;
  if (entered) {  // a fault inside the handler: give up quietly
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  entered = 1;
  const pid_t pid = ::getpid();
  const int64_t run = g_run.load(std::memory_order_relaxed);
  int f[6];
  utc_fields(::time(nullptr), f);

  static char path[kPath + 128];
  int fd = -1;
  if (g_ws[0]) {
    static char dir[kPath + 32];
    Buf(dir, sizeof(dir)).s(g_ws).s("/crash-reports");
    ::mkdir(dir, 0755);
    Buf(path, sizeof(path)).s(dir).s("/crash-").i(f[0], 4).i(f[1], 2).i(f[2], 2).s("-").i(f[3], 2).i(f[4], 2).i(f[5], 2)
        .s("-").i(pid).s(".txt");
    fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  static char line[kPath + 512];
  Buf b(line, sizeof(line));
  b.s("Hone crash report\nprogram: ").s(g_program).s(" ").s(HONE_VERSION).s("\nsignal: ").i(sig).s(" (").s(signal_name(sig))
      .s(")\n");
  if (info && info->si_code <= 0) b.s("sent by process: ").i(info->si_pid);  // kill(2), raise(3), abort(3)
  else b.s("fault address: ").hex(reinterpret_cast<uintptr_t>(info ? info->si_addr : nullptr));
  b.s("\npid: ").i(pid).s("\ntime (UTC): ").i(f[0], 4).s("-").i(f[1], 2).s("-").i(f[2], 2).s(" ").i(f[3], 2).s(":").i(f[4], 2)
      .s(":").i(f[5], 2).s("\nworkspace: ").s(g_ws[0] ? g_ws : "(none)").s("\nrun in progress: ");
  if (run > 0) b.i(run).s(" (marked interrupted; resume it from its last checkpoint: hone-cli runs resume ").i(run).s(")");
  else b.s("none");
  b.s("\n\nbacktrace (newest first; addresses resolve with addr2line -e <program>):\n");
  put(fd, line);
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  if (fd >= 0) ::backtrace_symbols_fd(frames, n, fd);
  if (fd >= 0) ::close(fd);

  Buf e(line, sizeof(line));
  e.s(g_program).s(": fatal ").s(signal_name(sig));
  if (fd >= 0) e.s("; crash report written to ").s(path);
  if (run > 0) e.s("; run ").i(run).s(" will be marked interrupted (resume it with: hone-cli runs resume ").i(run).s(")");
  e.s("\n");
  put(2, line);

  if (run > 0 && g_exe[0] && g_ws[0]) {
    // A clean process marks the run once this one is gone (its run lock drops when it dies).
    static char run_s[24], pid_s[24];
    Buf(run_s, sizeof(run_s)).i(run);
    Buf(pid_s, sizeof(pid_s)).i(pid);
    char* const args[] = {g_exe, const_cast<char*>("runs"), const_cast<char*>("recover"), run_s,
                          const_cast<char*>("--workspace"), g_ws, const_cast<char*>("--signal"),
                          const_cast<char*>(signal_name(sig)), const_cast<char*>("--report"),
                          fd >= 0 ? path : const_cast<char*>(""), nullptr};
    // vfork is a bare clone(CLONE_VM|CLONE_VFORK): no atfork handlers, no locks; this thread waits
    // until the child has exec'ed. The child only makes system calls before execv.
    const pid_t c = ::vfork();
    if (c == 0) {
      ::setsid();  // outlive the terminal's process group being signalled
      ::execv(g_exe, args);
      ::_exit(127);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void copy(char* dst, size_t cap, const std::string& s) {
  const size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = 0;
}

}  // namespace

void install_crash_handler(const std::string& program, const std::string& recover_exe) {
  copy(g_program, sizeof(g_program), program);
  copy(g_exe, sizeof(g_exe), recover_exe);
  void* warm[2];
  ::backtrace(warm, 2);  // loads libgcc_s now: the first call allocates
  // Its own stack, so that a stack overflow on the main thread still gets a report.
  static char alt[1 << 16];
  stack_t ss{};
  ss.ss_sp = alt;
  ss.ss_size = sizeof(alt);
  ::sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::sigaction(sig, &sa, nullptr);
}

void set_crash_workspace(const std::string& workspace_dir) {
  std::error_code ec;
  const auto abs = std::filesystem::absolute(workspace_dir, ec);  // the recovering child may start elsewhere
  std::lock_guard<std::mutex> g(g_ws_mu);
  copy(g_ws, sizeof(g_ws), ec ? workspace_dir : abs.lexically_normal().string());
}

void set_crash_run(int64_t run_id) { g_run.store(run_id, std::memory_order_relaxed); }

std::string crash_reports_dir(const std::string& workspace_dir) { return workspace_dir + "/crash-reports"; }

}  // namespace hone
