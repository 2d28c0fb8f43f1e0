#!/usr/bin/env bash
# Runs one core unit-test executable of the sanitizer build (build.sh) whole. Any ASan report
# (out-of-bounds, use-after-free, leak) or UBSan report (overflow, misaligned or null access, bad
# shift, invalid enum or bool) ends the process and fails the test, as does a failing test.
# usage: run.sh BUILD EXECUTABLE
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
bin=$1/bin/$2
[[ -x $bin ]] || { echo "$bin is missing: the sanitize_build test builds it"; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$bin"
