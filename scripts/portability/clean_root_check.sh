#!/usr/bin/env bash
# Runs the README's two commands, read from README.md itself, in a bare Debian
# root made by `debootstrap --variant=minbase`, from a fresh clone of this
# checkout's HEAD: what a new user on a fresh machine gets. A package the
# project needs but does not install by name fails here, whatever the host
# happens to have (this is what CI runs; see .ci/run).
#
#   usage: scripts/portability/clean_root_check.sh [--suite bookworm|trixie]
#            [--root DIR] [--as sudo|root] [--only test|main]
#
# --suite   Debian 12 "bookworm" (default; libtorch 1.13, oneDNN 2.7) or Debian 13
#           "trixie" (libtorch 2.6, oneDNN 3.x, utf8proc 15.1, GCC 14, CMake 3.31).
# --as      sudo (default): the commands run as an ordinary user whose sudo installs
#           the packages (sudo resets the environment and the clone is not root's);
#           root: they run as root.
# --only    run only the test command or only the main command (default: the test
#           command, then the main command in the same clone, as a user would).
# --root    where the root is made (default /var/tmp/embeval-root-SUITE); it is
#           made anew on every run, so nothing from an earlier run is reused.
# After the main command: leaderboard.md and leaderboard.html must exist and
# name the default model (`embeval run --help` says which that is).
# EMBEVAL_CMAKE_ARGS is passed through (e.g. -DEMBEVAL_WITH_ONEDNN=OFF, which
# makes the CPU attention run torch 2.x's SDPA on trixie, as on a GPU machine).
# Needs root (debootstrap, chroot, mounts) and Debian's package mirror.
# Exit status: 0 both commands passed, 1 a command or check failed, 3 this
# machine cannot make a root (not root).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
suite=bookworm as=sudo only="" root=""
while (($#)); do
  case "$1" in
    --suite) suite=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --as) as=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "clean_root_check: unknown argument \"$1\"" >&2; exit 2 ;;
  esac
done
case "$suite" in bookworm | trixie) ;; *) echo "clean_root_check: --suite bookworm or trixie, not \"$suite\"" >&2; exit 2 ;; esac
case "$as" in sudo | root) ;; *) echo "clean_root_check: --as sudo or root, not \"$as\"" >&2; exit 2 ;; esac
case "$only" in "" | test | main) ;; *) echo "clean_root_check: --only test or main, not \"$only\"" >&2; exit 2 ;; esac
root=${root:-/var/tmp/embeval-root-$suite}
[ "$(id -u)" -eq 0 ] || { echo "clean_root_check: needs root (debootstrap, chroot, mounts)" >&2; exit 3; }

# The commit under test, fixed now: commits made while this runs do not count.
rev=$(git -C "$src" rev-parse HEAD)
test_cmd=$("$src/scripts/readme_command.sh" test)
main_cmd=$("$src/scripts/readme_command.sh" main)
t0=$SECONDS
phase() { printf '\n== clean_root_check [%s, %dm%02ds]: %s\n' "$suite" $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)) "$*"; }

mounted_under() { awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts; }
unmount_all() {
  local m
  for m in $(mounted_under | sort -r); do umount -l "$m" 2>/dev/null || true; done
}
trap unmount_all EXIT

# A new root every time. Never delete while anything (the host's /dev!) is
# still mounted inside it.
unmount_all
if [ -n "$(mounted_under)" ]; then
  echo "clean_root_check: still mounted under $root: $(mounted_under | tr '\n' ' ')" >&2
  exit 1
fi
rm -rf "$root"
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
mirror=http://deb.debian.org/debian
phase "debootstrap --variant=minbase $suite -> $root"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
  tail -20 "$root.debootstrap.log" >&2
  exit 1
}
# The sources a fresh Debian install has: release, updates, security.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A machine knows its own name (else sudo warns on every call).
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$(cat "$root/etc/hostname" 2>/dev/null || hostname)" >"$root/etc/hosts"
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" 2>/dev/null || true
mount -t tmpfs -o size=2g tmpfs "$root/dev/shm"

if [ "$as" = sudo ]; then
  # An ordinary user whose sudo may install packages, as on a desktop.
  phase "user 'embeval' with sudo (the only package added by hand)"
  chroot "$root" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo >/dev/null' 
  chroot "$root" useradd -m -s /bin/bash embeval
  echo 'embeval ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/embeval"
  chmod 0440 "$root/etc/sudoers.d/embeval"
  home=/home/embeval
else
  home=/root
fi
# A fresh clone of HEAD, as CI takes one of main (uncommitted changes are not in it).
git clone -q "$src" "$root$home/src"
git -C "$root$home/src" checkout -q "$rev"
echo "clean_root_check: testing $(git -C "$src" log -1 --format='%h %s' "$rev" | cut -c1-100)"
[ "$as" = root ] || chroot "$root" chown -R embeval:embeval "$home/src"

in_root() {
  local env=(env -i HOME="$home" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    LANG=C.UTF-8 TERM=dumb EMBEVAL_CMAKE_ARGS="${EMBEVAL_CMAKE_ARGS:-}")
  if [ "$as" = sudo ]; then
    chroot "$root" runuser -u embeval -- "${env[@]}" USER=embeval bash -c "cd $home/src && $1" </dev/null
  else
    chroot "$root" "${env[@]}" USER=root bash -c "cd $home/src && $1" </dev/null
  fi
}

status=0
if [ "$only" != main ]; then
  phase "the README's test command: $test_cmd"
  in_root "$test_cmd" || status=1
fi
if [ "$status" -eq 0 ] && [ "$only" != test ]; then
  phase "the README's main command: $main_cmd"
  if in_root "$main_cmd"; then
    default_model=$(in_root "./build/embeval run --help" | sed -nE 's/.*--model \] arg \(=([^)]*)\).*/\1/p')
    for f in leaderboard.md leaderboard.html; do
      if [ ! -s "$root$home/src/$f" ]; then
        echo "clean_root_check: the main command wrote no $f" >&2
        status=1
      elif [ -z "$default_model" ] || ! grep -qF "$default_model" "$root$home/src/$f"; then
        echo "clean_root_check: $f does not name the default model \"$default_model\"" >&2
        status=1
      else
        echo "clean_root_check: $f ($(wc -c <"$root$home/src/$f") bytes) names the default model $default_model"
      fi
    done
  else
    status=1
  fi
fi
if [ "$status" -eq 0 ]; then
  phase "passed (${only:-test and main} command$([ -z "$only" ] && echo s), as $as)"
else
  phase "FAILED"
fi
exit $status
