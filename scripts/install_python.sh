#!/usr/bin/env bash
# Installs the `perceiver` Python module into a Python environment: a venv's python, or the
# system's /usr/bin/python3 (the default). Usage:
#   bash scripts/install_python.sh [PYTHON]
# It installs the Debian packages and builds (scripts/setup.sh, scripts/build.sh) when the module
# is not built yet, then copies build/python/perceiver.cpython-*.so into PYTHON's site-packages.
# The module is built for Debian's python3 (3.11); PYTHON must be that interpreter or a venv made
# from it (`/usr/bin/python3 -m venv DIR`), which the ABI check below verifies.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-/usr/bin/python3}"
command -v "$PY" >/dev/null || { echo "[install_python] $PY: no such interpreter" >&2; exit 2; }
if ! ls build/python/perceiver.cpython-*.so >/dev/null 2>&1; then
  bash scripts/setup.sh
  bash scripts/build.sh
fi
MODULE="$(ls build/python/perceiver.cpython-*.so | head -n 1)"
SUFFIX="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
if [ "$(basename "$MODULE")" != "perceiver$SUFFIX" ]; then
  echo "[install_python] $MODULE was built for another Python than $PY (which loads perceiver$SUFFIX);" \
       "use /usr/bin/python3 or a venv made from it" >&2
  exit 2
fi
DEST="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
mkdir -p "$DEST"
install -m 0644 "$MODULE" "$DEST/perceiver$SUFFIX.tmp"
mv -f "$DEST/perceiver$SUFFIX.tmp" "$DEST/perceiver$SUFFIX"
"$PY" -c 'import perceiver; print("[install_python] installed perceiver", perceiver.__version__, "at", perceiver.__file__)'
