#!/usr/bin/env bash
# Builds Hone's Debian package: configures a Release build (no tests) in BUILD_DIR when it has
# none yet, else reuses the one there (the test build, for instance: CPack installs under /usr
# whatever the build's prefix), builds, runs CPack, then lintian when it is installed.
# Prints the .deb's path last.
# usage: installer/build-package.sh [BUILD_DIR] [OUT_DIR]   (defaults: build-package, BUILD_DIR)
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-package}
out=${2:-$build}
command -v dpkg-shlibdeps >/dev/null || { echo "build-package.sh: needs dpkg-dev (dpkg-shlibdeps)" >&2; exit 2; }
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DHONE_BUILD_TESTS=OFF >&2
fi
cmake --build "$build" -j"$(nproc)" >&2
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/hone_*.deb
(cd "$build" && cpack -G DEB -B "$out" >&2)
deb=$(ls -t "$out"/hone_*.deb | head -1)
if command -v lintian >/dev/null; then
  lintian --fail-on error "$deb" >&2 || { echo "build-package.sh: lintian found errors in $deb" >&2; exit 1; }
fi
echo "$deb"
