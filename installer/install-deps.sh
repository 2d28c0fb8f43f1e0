#!/usr/bin/env bash
# Installs every Debian 12 package Hone needs to build, run and test (idempotent).
# Only Debian's archive is used; nothing is fetched from anywhere else.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

pkgs=(
  # toolchain
  build-essential g++ cmake ninja-build pkg-config ccache git ca-certificates file
  # core: libtorch + fast BLAS (platform-notes §1: reference BLAS is ~40x slower); Hone links the
  # OpenMP build, the pthread one stays the system default (core/CMakeLists.txt)
  libtorch-dev libopenblas0-pthread libopenblas0-openmp
  # bf16 x bf16 -> fp32 GEMMs for a bf16-stored frozen base (the library itself comes with libtorch)
  libdnnl-dev
  # core: formats, tokenizers, store
  nlohmann-json3-dev libpcre2-dev libicu-dev libsqlite3-dev sqlite3 libgtest-dev
  libsentencepiece-dev sentencepiece
  # hub downloads (HTTPS through libcurl, SHA-256/SHA-1 checks through OpenSSL) and Parquet's codecs
  libcurl4-openssl-dev libssl-dev libsnappy-dev libzstd-dev zlib1g-dev
  # distributed (c10d + Gloo)
  libgloo-dev
  # GUI
  qt6-base-dev libqcustomplot-dev libgl-dev xvfb xauth
  # packaging: the .deb (installer/build-package.sh) and its install test into a fresh root
  dpkg-dev lintian debootstrap
  # fuzz targets under ASan + UBSan (tests/fuzz; CTest label fuzz): clang, libFuzzer and the sanitizer runtimes
  clang-14 libclang-rt-14-dev
  # independent references for tests and benchmarks
  python3 python3-torch python3-numpy python3-sentencepiece python3-jinja2
)

need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done

if ((${#need[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "install-deps: installing ${#need[@]} package(s): ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
else
  echo "install-deps: all ${#pkgs[@]} packages present"
fi

# libtorch links libblas.so.3; make sure the alternative points at OpenBLAS, not the reference BLAS.
if command -v update-alternatives >/dev/null; then
  cur=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
  if [[ -n ${cur:-} && $cur != *openblas* ]]; then
    alt=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu | grep openblas-pthread | head -1 || true)
    [[ -n $alt ]] && ${SUDO:-} update-alternatives --set libblas.so.3-x86_64-linux-gnu "$alt"
  fi
fi
