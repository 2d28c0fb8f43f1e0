// Fatal-signal handling: a crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) writes a report file
// into the workspace and has the run in progress marked interrupted, so that it can be resumed.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>

namespace hone {

// Installs the handler. `program` names the program in reports ("hone", "hone-cli");
// `recover_exe` is the hone-cli that marks the run interrupted once this process is gone ("" for
// none). The handler does only async-signal-safe work: it writes the report with write(2), starts
// `recover_exe runs recover` with vfork and execv (a clean process: the crashed one's heap may be
// corrupt and its run lock is still held until it dies), then re-raises the signal with the
// default action.
void install_crash_handler(const std::string& program, const std::string& recover_exe);

// Where reports go: <workspace>/crash-reports. The last workspace set wins (one per process).
void set_crash_workspace(const std::string& workspace_dir);
// The run being trained (0: none); RunRecorder sets and clears it.
void set_crash_run(int64_t run_id);

// The report folder of a workspace.
std::string crash_reports_dir(const std::string& workspace_dir);

}  // namespace hone
