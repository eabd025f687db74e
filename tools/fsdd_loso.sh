#!/bin/bash
# Leave-one-speaker-out on FSDD: one training run per speaker held out (configs/fsdd_loso.json,
# the speaker set by --set data.test_group), then each speaker's test accuracy and the mean.
#   tools/fsdd_loso.sh [FSDD_RECORDINGS_DIR] [OUT_ROOT] [PARALLEL_RUNS] [TRAIN FLAGS...]
# Runs PARALLEL_RUNS folds at a time (default 1; 2 on a 2-core machine with "threads": 1); flags
# after the third argument go to every `perceiver train` (e.g. --set train.ema_decay=0.998).
set -uo pipefail
dir=${1:-../shared/datasets/fsdd/recordings}
out=${2:-runs/fsdd_loso}
parallel=${3:-1}
bin=${PERCEIVER:-./build/perceiver}
speakers=(george jackson lucas nicolas theo yweweler)
mkdir -p "$out"
declare -A pid_of
for s in "${speakers[@]}"; do
  rm -rf "${out:?}/$s" "$out/$s.log"
  "$bin" train --config configs/fsdd_loso.json --set "data.dir=$dir" --set "data.test_group=$s" \
    --out "$out/$s" --quiet "${@:4}" > "$out/$s.log" 2>&1 &
  pid_of[$s]=$!
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 1; done
done
failed=()
for s in "${speakers[@]}"; do wait "${pid_of[$s]}" || failed+=("$s"); done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fsdd_loso: the folds of ${failed[*]} failed; see $out/<speaker>.log" >&2
  exit 1
fi
printf '| held-out speaker | test accuracy (500 recordings) |\n|---|---|\n'
for s in "${speakers[@]}"; do
  grep '"type":"eval"' "$out/$s/metrics.jsonl" | tail -n 1 | sed "s/.*\"test_accuracy\":\([0-9.e-]*\).*/$s \1/"
done | awk '{ printf "| %s | %.1f%% |\n", $1, 100 * $2; sum += $2 } END { printf "| mean | %.1f%% |\n", 100 * sum / NR }'
