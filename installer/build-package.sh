#!/usr/bin/env bash
# Builds Hone's Debian package from a clean tree: configures a Release build for /usr (no tests),
# builds, and runs CPack; then lintian when it is installed. Prints the .deb's path last.
# usage: installer/build-package.sh [BUILD_DIR]   (default build-package)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-package}
command -v dpkg-shlibdeps >/dev/null || { echo "build-package.sh: needs dpkg-dev (dpkg-shlibdeps)" >&2; exit 2; }
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DHONE_BUILD_TESTS=OFF >&2
cmake --build "$build" -j"$(nproc)" >&2
(cd "$build" && cpack -G DEB >&2)
deb=$(ls -t "$build"/hone_*.deb | head -1)
if command -v lintian >/dev/null; then
  lintian --fail-on error "$deb" >&2 || { echo "build-package.sh: lintian found errors in $deb" >&2; exit 1; }
fi
echo "$deb"
