#!/usr/bin/env bash
# Runs a command in a brand-new minimal Debian 12 (bookworm) root, on a clean clone of this
# repository's committed HEAD: the honest test of "two commands on a fresh machine". Nothing the
# host has installed is visible inside, so a package missing from scripts/setup.sh fails here.
#
# usage (as root, from anywhere in the repository):
#   scripts/fresh_debian.sh                        # runs the README's test command: bash scripts/test.sh
#   scripts/fresh_debian.sh bash scripts/main.sh   # the README's main job
#
# The minimal base (mmdebstrap --variant=minbase, plus git and ca-certificates) is built once and
# cached as a tarball, rebuilt when older than PERCEIVER_FRESH_MAX_AGE_DAYS (default 30). Downloaded
# .deb files are kept in the cache too (apt-get keeps them), so a second run installs every package
# afresh without downloading it again.
#
# env: PERCEIVER_FRESH_CACHE  cache folder (default /var/cache/perceiver-fresh-debian)
#      PERCEIVER_FRESH_KEEP=1 keep the root tree afterwards (its path is printed)
#      PERCEIVER_FRESH_MAX_AGE_DAYS  rebuild the base tarball after this many days (default 30)
# exit: the command's exit code, or 125 when the fresh root itself could not be made (not root,
#       no mmdebstrap and no apt to install it, no chroot/mount, base build failed): callers such as
#       .ci/run may then fall back to running the command on the host.
set -uo pipefail

die_infra() { echo "fresh-debian: cannot make a fresh Debian 12 root: $*" >&2; exit 125; }

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) || die_infra "not inside a git checkout"
cmd=("$@"); [ ${#cmd[@]} -gt 0 ] || cmd=(bash scripts/test.sh)
[ "$(id -u)" -eq 0 ] || die_infra "needs root (chroot and mount); running as uid $(id -u)"
command -v chroot >/dev/null || die_infra "chroot not found"
if ! git -C "$repo" diff --quiet HEAD 2>/dev/null; then
  echo "fresh-debian: note: the working tree has uncommitted changes; the root gets HEAD only" >&2
fi

cache=${PERCEIVER_FRESH_CACHE:-/var/cache/perceiver-fresh-debian}
mkdir -p "$cache/apt-archives/partial" || die_infra "cannot create cache folder $cache"
base="$cache/bookworm-minbase.tar"
max_age=${PERCEIVER_FRESH_MAX_AGE_DAYS:-30}

# Build (or refresh) the base tarball under a lock, so two runs never build it at once.
exec 9>"$cache/.lock" || die_infra "cannot open lock file $cache/.lock"
flock 9 || die_infra "cannot lock $cache/.lock"
if [ -s "$base" ] && [ -n "$(find "$base" -mtime +"$max_age" 2>/dev/null)" ]; then
  echo "fresh-debian: base older than $max_age days, rebuilding"
  rm -f "$base"
fi
if [ ! -s "$base" ]; then
  if ! command -v mmdebstrap >/dev/null; then
    command -v apt-get >/dev/null || die_infra "mmdebstrap missing and no apt-get to install it"
    echo "fresh-debian: installing mmdebstrap on the host"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap; } \
      >"$cache/mmdebstrap-install.log" 2>&1 || die_infra "installing mmdebstrap failed (log $cache/mmdebstrap-install.log)"
  fi
  echo "fresh-debian: building the minimal Debian 12 base (cached in $base)"
  rm -f "$cache/partial.tar"   # the .tar suffix makes mmdebstrap write a tarball
  mmdebstrap --variant=minbase --include=ca-certificates,git bookworm "$cache/partial.tar" \
    >"$cache/mmdebstrap.log" 2>&1 || die_infra "mmdebstrap failed (log $cache/mmdebstrap.log)"
  mv "$cache/partial.tar" "$base"
fi
flock -u 9

root=$(mktemp -d "${TMPDIR:-/var/tmp}/perceiver-fresh-debian.XXXXXX") || die_infra "mktemp failed"
log="$root.log"
mounts=()
cleanup() {
  local i
  for (( i=${#mounts[@]}-1; i>=0; i-- )); do umount -R -l "${mounts[$i]}" 2>/dev/null; done
  if [ "${PERCEIVER_FRESH_KEEP:-0}" = 1 ]; then echo "fresh-debian: root kept at $root"; else rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mnt() {  # mnt TARGET mount-args...: mounts and remembers TARGET for cleanup
  local target=$1; shift
  mount "$@" "$target" || die_infra "mount $* $target failed"
  mounts+=("$target")
}

tar -xf "$base" -C "$root" || die_infra "unpacking $base failed"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mnt "$root/proc" -t proc proc
mnt "$root/sys" -t sysfs sys
mnt "$root/dev" --rbind /dev
mount --make-rslave "$root/dev"   # unmounting inside the root never propagates to the host's /dev
mnt "$root/var/cache/apt/archives" --bind "$cache/apt-archives"
git clone -q "$repo" "$root/src/project" || die_infra "git clone of $repo failed"

echo "fresh-debian: running '${cmd[*]}' in $root (log $log)"
start=$(date +%s)
chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ${CI:+CI=$CI} \
  bash -c 'cd /src/project && "$@"' _ "${cmd[@]}" </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "fresh-debian: rc=$rc in $(( $(date +%s) - start )) s (log $log)"
exit "$rc"
