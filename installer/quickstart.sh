#!/usr/bin/env bash
# Hone quick start: installs the Debian packages, builds (Release, ./build), then runs
#   demo (default): the headless demo (installer/demo.sh), which builds the demo workspace, then
#                   the desktop app on it when there is a display
# SPDX-License-Identifier: GPL-3.0-or-later

#   test:           the whole test suite through CTest (everything but the `gpu` label)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-demo}
case $mode in demo|test) ;; *) echo "usage: $0 [demo|test]" >&2; exit 2 ;; esac

bash installer/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"

if [[ $mode == test ]]; then
  ctest --test-dir build -j"$jobs" --output-on-failure --timeout 1200 -LE gpu
else
  bash installer/demo.sh build
  if [[ -n ${DISPLAY:-}${WAYLAND_DISPLAY:-} ]]; then
    echo; echo "== Opening the desktop app on the demo workspace"
    exec build/bin/hone
  fi
fi
