#!/usr/bin/env bash
# Fault injection against `perceiver train` (docs/RELIABILITY.md):
#
#   tools/reliability_checks.sh kill9 [RUNS]   kill -9 at RUNS random moments (default 21); after
#       each kill, every file in the run directory must be complete (the checkpoint loads), and
#       resuming must end with a model.safetensors byte-identical to an uninterrupted run's.
#   tools/reliability_checks.sh disk-full      trains into a tmpfs too small for a second copy of
#       the checkpoint (needs root for mount): the write must fail with a clear error and a
#       non-zero exit, leave the last checkpoint intact and no temporary file, and the run must
#       resume to the uninterrupted result once there is space.
#
# Both use Debian's Fashion-MNIST and a small model on one thread; build/perceiver must exist
# (scripts/build.sh). Prints one line per trial and a summary; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/perceiver
[ -x "$BIN" ] || { echo "reliability: build first (bash scripts/build.sh)" >&2; exit 2; }
WORK=${RELIABILITY_WORK:-/tmp/perceiver-reliability}
mkdir -p "$WORK"
CONFIG=$WORK/config.json
cat >"$CONFIG" <<'EOF'
{"model": {"num_latents": 8, "d_latents": 32, "num_fourier_bands": 4, "self_attention_heads": 2,
           "self_attends_per_block": 2, "dropout": 0.1},
 "train": {"epochs": 2, "batch_size": 32, "warmup_steps": 10, "checkpoint_every": 7, "threads": 1,
           "log_every": 5, "seed": 3},
 "data": {"train_limit": 1500, "test_limit": 300, "max_shift": 1}}
EOF

reference() {
  if [ ! -s "$WORK/reference/model.safetensors" ]; then
    "$BIN" train --config "$CONFIG" --out "$WORK/reference" --force --quiet >/dev/null || { echo "reference run failed" >&2; exit 1; }
  fi
  sha256sum <"$WORK/reference/model.safetensors" | cut -d' ' -f1
}

# Continues (or starts) the run in $1 until it finishes.
finish() {
  local dir=$1 flag=--resume
  [ -s "$dir/checkpoint.safetensors" ] || flag=--force
  "$BIN" train --config "$CONFIG" --out "$dir" $flag --quiet >"$dir.resume.log" 2>&1
}

kill9() {
  local runs=${1:-21} ref fails=0 killed=0
  ref=$(reference)
  # how long an uninterrupted run takes, to spread the kills over it
  local t0 t1 span
  t0=$(date +%s%N)
  "$BIN" train --config "$CONFIG" --out "$WORK/timing" --force --quiet >/dev/null
  t1=$(date +%s%N)
  span=$(( (t1 - t0) / 1000000 ))
  echo "kill9: reference $ref, an uninterrupted run takes ${span} ms"
  for i in $(seq 1 "$runs"); do
    local dir=$WORK/kill$i at ok=1 why=""
    rm -rf "$dir"
    at=$(( (RANDOM * 32768 + RANDOM) % span ))
    "$BIN" train --config "$CONFIG" --out "$dir" --force --quiet >/dev/null 2>&1 &
    local pid=$!
    sleep "$(awk -v ms="$at" 'BEGIN {printf "%.3f", ms / 1000}')"
    if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
    wait "$pid" 2>/dev/null
    local tmps
    tmps=$(find "$dir" -name '*.tmp.*' 2>/dev/null | wc -l)
    if [ -s "$dir/checkpoint.safetensors" ] && ! "$BIN" eval --checkpoint "$dir/checkpoint.safetensors" --limit 10 >/dev/null 2>&1; then
      ok=0; why="checkpoint after the kill does not load"
    fi
    if ! finish "$dir"; then ok=0; why="resume failed: $(tail -1 "$dir.resume.log")"; fi
    if [ $ok = 1 ] && [ "$(sha256sum <"$dir/model.safetensors" | cut -d' ' -f1)" != "$ref" ]; then
      ok=0; why="model.safetensors differs from the uninterrupted run"
    fi
    if [ $ok = 1 ] && [ "$(find "$dir" -name '*.tmp.*' | wc -l)" -ne 0 ]; then ok=0; why="temporary files left after resuming"; fi
    printf 'kill9 %2d: killed at %5d ms, %d temp file(s) left by the kill, %s\n' "$i" "$at" "$tmps" \
      "$([ $ok = 1 ] && echo "resumed byte-identical" || echo "FAILED: $why")"
    [ $ok = 1 ] || fails=$((fails + 1))
  done
  echo "kill9: $runs trials ($killed killed while running), $fails failed"
  [ $fails = 0 ]
}

disk_full() {
  [ "$(id -u)" -eq 0 ] || { echo "disk-full: needs root to mount a tmpfs" >&2; return 2; }
  local ref mnt=$WORK/full dir size ckpt_bytes fails=0
  ref=$(reference)
  ckpt_bytes=$(stat -c %s "$WORK/reference/checkpoint.safetensors")
  size=$(( ckpt_bytes * 3 / 2 + 65536 ))  # room for one checkpoint, not for its replacement beside it
  mkdir -p "$mnt"
  mountpoint -q "$mnt" && umount "$mnt"
  mount -t tmpfs -o size="$size" tmpfs "$mnt" || { echo "disk-full: mount failed" >&2; return 2; }
  dir=$mnt/run
  "$BIN" train --config "$CONFIG" --out "$dir" --force --quiet >"$WORK/full.log" 2>&1
  local rc=$?
  local last; last=$(tail -1 "$WORK/full.log")
  echo "disk-full: tmpfs of $size bytes (checkpoint $ckpt_bytes bytes): exit $rc: $last"
  [ $rc -ne 0 ] || { echo "disk-full: FAILED: training succeeded on a full disk"; fails=1; }
  case "$last" in *"No space left"*|*"ENOSPC"*|*"space"*) ;; *) echo "disk-full: FAILED: the error does not say the disk is full"; fails=1 ;; esac
  [ "$(find "$dir" -name '*.tmp.*' | wc -l)" -eq 0 ] || { echo "disk-full: FAILED: a temporary file was left"; fails=1; }
  if "$BIN" eval --checkpoint "$dir/checkpoint.safetensors" --limit 10 >/dev/null 2>&1; then
    echo "disk-full: the last checkpoint is intact and loads"
  else
    echo "disk-full: FAILED: the last checkpoint does not load"; fails=1
  fi
  rm -rf "$WORK/full-moved" && cp -a "$dir" "$WORK/full-moved"
  umount "$mnt"
  if finish "$WORK/full-moved" && [ "$(sha256sum <"$WORK/full-moved/model.safetensors" | cut -d' ' -f1)" = "$ref" ]; then
    echo "disk-full: resumed on a disk with space: model.safetensors byte-identical to the uninterrupted run"
  else
    echo "disk-full: FAILED: resuming after the full disk did not reproduce the uninterrupted run"; fails=1
  fi
  [ $fails = 0 ]
}

case "${1:-}" in
  kill9) kill9 "${2:-21}" ;;
  disk-full) disk_full ;;
  *) echo "usage: tools/reliability_checks.sh kill9 [RUNS] | disk-full" >&2; exit 2 ;;
esac
