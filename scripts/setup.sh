#!/usr/bin/env bash
# Installs every Debian 12 package perceiver.cpp needs to build, test and train.
# Idempotent: packages already present are skipped; safe to run repeatedly.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libdnnl-dev libopenblas-dev        # GEMM providers (oneDNN is the default)
  opencl-headers ocl-icd-opencl-dev  # Debian's oneDNN CMake package requires OpenCL at configure time
  nlohmann-json3-dev libcli11-dev    # configs, command line
  libpng-dev libjpeg62-turbo-dev zlib1g-dev  # image decoding (PNG, JPEG), gzip'd IDX files
  libgtest-dev libbenchmark-dev      # tests, benchmarks
  mpich libmpich-dev                 # data-parallel training across processes (mpiexec -n N perceiver train)
  pybind11-dev python3-dev python3-numpy  # the Python module (python/), its tests under /usr/bin/python3
  libcpp-httplib-dev                 # perceiver serve (HTTP)
  dataset-fashion-mnist              # the default training data
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] all Debian packages present"
fi
