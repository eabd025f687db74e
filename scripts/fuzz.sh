#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan; tests/fuzz) into build-fuzz/ and fuzzes one
# target or all of them.
#
# usage: scripts/fuzz.sh [TARGET|all] [SECONDS] [JOBS]
#   TARGET   safetensors checkpoint torch_zip pickle run_config hub_config idx image flo wav text point_cloud, or all
#            (default all, one after the other)
#   SECONDS  per target (default 60)
#   JOBS     libFuzzer worker processes per target (default 1)
#
# Each run starts from the committed seeds (tests/fuzz/corpus/TARGET) and regression inputs
# (tests/fuzz/regressions/TARGET) plus what earlier runs found, kept in build-fuzz/corpus/TARGET.
# A crash, sanitizer report, timeout (10 s) or out-of-memory (2 GiB) input is written to
# build-fuzz/findings/TARGET/ and the script exits non-zero; add it to tests/fuzz/regressions/TARGET
# once fixed, so ctest keeps checking it. The last lines print executions, coverage and findings per
# target (also in build-fuzz/logs/TARGET.log). The compiler comes from Debian (clang, and
# libclang-rt-14-dev for the fuzzer and sanitizer runtimes); this script installs them if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ALL=(safetensors checkpoint torch_zip pickle run_config hub_config idx image flo wav text point_cloud)
target=${1:-all}
seconds=${2:-60}
jobs=${3:-1}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 ]] || { echo "fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2; exit 2; }
[[ "$jobs" =~ ^[0-9]+$ && "$jobs" -ge 1 ]] || { echo "fuzz.sh: JOBS must be a positive integer, got '$jobs'" >&2; exit 2; }
if [ "$target" = all ]; then
  targets=("${ALL[@]}")
else
  found=0
  for t in "${ALL[@]}"; do [ "$t" = "$target" ] && found=1; done
  [ $found = 1 ] || { echo "fuzz.sh: unknown target '$target'; expected one of: ${ALL[*]} or all" >&2; exit 2; }
  targets=("$target")
fi

bash scripts/setup.sh
need=()
command -v clang++ >/dev/null || need+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed" || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[fuzz] installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPERCEIVER_FUZZ=ON >/dev/null
targets_build=()
for t in "${targets[@]}"; do targets_build+=("fuzz_$t"); done
cmake --build build-fuzz -j"$(nproc)" --target "${targets_build[@]}"

mkdir -p build-fuzz/logs build-fuzz/tmp
export PERCEIVER_FUZZ_TMP="$PWD/build-fuzz/tmp"
# Halt on every sanitizer report; oneDNN and OpenMP are not instrumented: no leak checks on exit.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OMP_NUM_THREADS=1 PERCEIVER_ISA=${PERCEIVER_ISA:-}
status=0
summary=()
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t findings=build-fuzz/findings/$t log=build-fuzz/logs/$t.log
  mkdir -p "$corpus" "$findings"
  seeds=(tests/fuzz/corpus/$t)
  [ -d tests/fuzz/regressions/$t ] && seeds+=(tests/fuzz/regressions/$t)
  echo "[fuzz] $t: ${seconds}s, $jobs job(s); corpus $corpus, log $log"
  set +e
  parallel=()
  [ "$jobs" -gt 1 ] && parallel=(-fork="$jobs")  # worker processes; their output joins this log
  ./build-fuzz/tests/fuzz/fuzz_$t "$corpus" "${seeds[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=1048576 -print_final_stats=1 -artifact_prefix="$findings/" "${parallel[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$( (grep -ho "stat::number_of_executed_units: *[0-9]*" "$log" || true) | awk '{s += $2} END {print s + 0}')
  cov=$( (grep -o "cov: [0-9]*" "$log" || true) | tail -1 | awk '{print $2}')
  ft=$( (grep -o "ft: [0-9]*" "$log" || true) | tail -1 | awk '{print $2}')
  n_findings=$(find "$findings" -type f | wc -l)
  summary+=("$t: ${execs} executions, coverage ${cov:-?} edges / ${ft:-?} features, corpus $(find "$corpus" -type f | wc -l) files, findings ${n_findings} (exit $rc)")
  if [ "$rc" -ne 0 ] || [ "$n_findings" -gt 0 ]; then status=1; fi
done
echo "[fuzz] summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit $status
