#!/usr/bin/env bash
# Runs the README's test command (scripts/test.sh: install, build, every test)
# on Debian 13 "trixie" in a chroot: libtorch 2.6, oneDNN 3.x, utf8proc with
# Unicode 15.1, GCC 14, CMake 3.31 -- the versions a user on the current Debian
# stable builds with, where CI runs Debian 12 (libtorch 1.13, oneDNN 2.6).
# Needs root (debootstrap, chroot, mounts) and Debian's package mirror.
#   usage: scripts/portability/debian13_check.sh [chroot dir, default /var/tmp/embeval-trixie]
# EMBEVAL_CMAKE_ARGS=-DEMBEVAL_WITH_ONEDNN=OFF builds without oneDNN, as on a
# GPU machine (CPU attention then runs torch 2.x's fused SDPA).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
root=${1:-/var/tmp/embeval-trixie}
[ "$(id -u)" -eq 0 ] || { echo "debian13_check: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase --include=ca-certificates trixie "$root" http://deb.debian.org/debian
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
trap 'umount -l "$root/dev" "$root/proc" 2>/dev/null || true' EXIT
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A fresh clone of this checkout's HEAD, as CI takes one of main.
rm -rf "$root/src" && git clone -q "$src" "$root/src"
chroot "$root" env EMBEVAL_CMAKE_ARGS="${EMBEVAL_CMAKE_ARGS:-}" bash -c "cd /src && ./scripts/test.sh"
