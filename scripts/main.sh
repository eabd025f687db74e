#!/usr/bin/env bash
# Installs dependencies, builds, then trains and evaluates the default Perceiver on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# --force: re-running the main command starts the run afresh (use `perceiver train --resume` to continue one)
./build/perceiver train --config configs/fmnist_default.json --out runs/fmnist_default --force "$@"
