#!/usr/bin/env bash
# Installs Hone's .deb, made from this build by installer/build-package.sh (CPack, lintian), into a fresh Debian 12 root made by
# debootstrap, with apt resolving its dependencies from Debian (no recommends: Depends alone must
# be enough), then runs the installed programs from /usr/bin: --version, inspect --system (the
# OpenMP OpenBLAS mapped), a tokenizer.model read through /usr/lib/hone's SentencePiece shim with
# ids compared against spm_encode on this machine, the headless demo (its targets met), and `hone`
# offscreen for 15 s on the demo workspace (alive, no crash report). lintian must report no errors.
# usage: tests/installer/deb_install_test.sh BUILD_DIR   (CTest: label install; exit 77 = skipped)
# Needs root (debootstrap, chroot, bind mounts) and a Debian mirror, as .ci/run has; elsewhere it
# skips. A pristine root is kept as a tarball in BUILD_DIR/test-work for later runs on this machine.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=$(readlink -f "$1")
work=$build/test-work/deb-install
root=$work/root
cache=$build/test-work/debian12-minbase.tar

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root for debootstrap and chroot"
for t in debootstrap lintian dpkg-shlibdeps cpack spm_train spm_encode python3; do
  command -v "$t" >/dev/null || skip "$t is not installed (installer/install-deps.sh installs it)"
done

t0=$SECONDS
phase() { printf '\n== [%4ds] %s\n' $((SECONDS - t0)) "$*"; }
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
no_mounts_under() {  # never delete through a bind mount of /dev, /proc or the apt cache
  if grep -q " $1/" /proc/mounts; then echo "FAIL: mounts remain under $1; not deleting it"; exit 1; fi
}
cleanup_root() {  # an earlier run killed mid-way may have left its mounts
  for m in var/cache/apt/archives dev sys proc; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
  done
  no_mounts_under "$work"
  rm -rf --one-file-system "$work"
}
cleanup_root
mkdir -p "$work"

phase "package: installer/build-package.sh on $build (CPack, lintian)"
src=$(cd "$(dirname "$0")/../.." && pwd)
deb=$(bash "$src/installer/build-package.sh" "$build" "$work/pkg" 2>"$work/package.log") ||
  { tail -20 "$work/package.log"; echo "FAIL: build-package.sh"; exit 1; }
dpkg-deb --info "$deb" | sed -n '/Depends:/p'
dpkg-deb --contents "$deb" | awk '{print $6}' | grep -E 'usr/bin/|usr/lib/hone/|\.desktop$|metainfo|man1' 

grep -E '^[EW]: ' "$work/package.log" || echo "lintian: no errors, no warnings"

phase "fresh Debian 12 root"
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[[ -n $mirror ]] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian
mkdir -p "$root"
if [[ -f $cache ]]; then
  tar -xf "$cache" -C "$root"
else
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; skip "debootstrap could not make a root from $mirror (no mirror reachable?)"; }
  tar -cf "$cache.part" -C "$root" . && mv "$cache.part" "$cache"
fi
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" && rm -f "$root/etc/apt/sources.list"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
for m in proc sys dev; do mount --bind "/$m" "$root/$m" && mounted+=("$root/$m"); done
# apt reuses the packages this machine already downloaded (same archive, same versions).
if [[ -d /var/cache/apt/archives ]]; then
  mount --bind /var/cache/apt/archives "$root/var/cache/apt/archives" && mounted+=("$root/var/cache/apt/archives")
fi
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

phase "apt install ./$(basename "$deb") (dependencies from Debian, no recommends)"
cp "$deb" "$root/tmp/"
in_root apt-get update -q >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; echo "FAIL: apt-get update"; exit 1; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" \
  >>"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log"; echo "FAIL: apt could not install the package"; exit 1; }
grep -E '^(Need to get|After this operation)' "$work/apt.log" || true
for f in /usr/bin/hone /usr/bin/hone-cli /usr/lib/hone/libhone_spm.so /usr/share/applications/io.github.hone.Hone.desktop \
         /usr/share/icons/hicolor/scalable/apps/hone.svg /usr/share/man/man1/hone-cli.1.gz; do
  [[ -e $root$f ]] || { echo "FAIL: $f is not installed"; exit 1; }
done

phase "hone-cli --version and inspect --system"
in_root hone-cli --version
in_root hone-cli inspect --system | tee "$work/inspect.log"
grep -q 'openblas-openmp' "$work/inspect.log" || { echo "FAIL: the installed hone-cli does not map the OpenMP OpenBLAS"; exit 1; }

phase "tokenizer.model through /usr/lib/hone/libhone_spm.so"
tok=$root/tmp/spm
mkdir -p "$tok"
for i in $(seq 1 300); do echo "the quick brown fox $i jumps over the lazy dog number $((i * 7)) again and again"; done >"$work/corpus.txt"
spm_train --input="$work/corpus.txt" --model_prefix="$tok/tokenizer" --vocab_size=120 --model_type=unigram >"$work/spm_train.log" 2>&1
text="the lazy fox jumps 42 times"
want=$(echo "$text" | spm_encode --model="$tok/tokenizer.model" --output_format=id)
got=$(in_root hone-cli tokenize --tokenizer /tmp/spm --text "$text")
echo "spm_encode: $want"
echo "hone-cli:   $got"
[[ $got == "{\"ids\":[${want// /,}]}" ]] || { echo "FAIL: token ids differ from spm_encode"; exit 1; }

phase "headless demo from /usr/bin (workspace /root/.local/share/hone)"
in_root hone-cli demo --json >"$work/demo.log" 2>&1 || { tail -30 "$work/demo.log"; echo "FAIL: the demo failed"; exit 1; }
tail -1 "$work/demo.log"
tail -1 "$work/demo.log" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
print("accuracy %.2f -> %.2f in %.1f s" % (d["accuracy_before"], d["accuracy_after"], d["seconds"]))
sys.exit(0 if d["accuracy_after"] >= 0.8 and d["accuracy_after"] > d["accuracy_before"] else 1)' ||
  { echo "FAIL: the demo did not reach its target"; exit 1; }

phase "hone offscreen on the demo workspace for 15 s"
set +e
in_root env QT_QPA_PLATFORM=offscreen timeout 15 hone >"$work/hone.log" 2>&1
rc=$?
set -e
grep -v 'propagateSizeHints' "$work/hone.log" | head -20 || true
[[ $rc -eq 124 ]] || { echo "FAIL: hone exited with $rc within 15 s instead of running"; exit 1; }
if ls "$root/root/.local/share/hone/crash-reports/"* >/dev/null 2>&1; then echo "FAIL: hone left a crash report"; exit 1; fi

phase "PASS"
cleanup
mounted=()
no_mounts_under "$root"
rm -rf --one-file-system "$root"
