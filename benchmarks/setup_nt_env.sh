#!/usr/bin/env bash
# Create the optional neural-tangents environment used by benchmarks/vs_neural_tangents.py
# and benchmarks/nt_reference_values.py.  neural-tangents is never a dependency of hgmntk:
# it lives in this separate Python 3.11 virtual environment and is run as a subprocess
# (benchmarks/nt_worker.py).
#
# Usage: bash benchmarks/setup_nt_env.sh [ENV_DIR]
#   ENV_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/hgmntk-nt-env.
#   PYTHON (environment variable) names the interpreter, default python3.11.
# Idempotent: an environment that already imports the pinned versions is left as it is.
set -euo pipefail

ENV_DIR="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hgmntk-nt-env}"
PYTHON="${PYTHON:-python3.11}"
PINS=("neural-tangents==0.6.5" "jax[cpu]==0.4.25" "numpy<2" "scipy<1.13")

check() {
    "$ENV_DIR/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md
import jax
import neural_tangents
import numpy

assert md.version("neural-tangents") == "0.6.5", md.version("neural-tangents")
assert jax.__version__ == "0.4.25", jax.__version__
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
print(f"neural-tangents {md.version('neural-tangents')}, jax {jax.__version__}, "
      f"numpy {numpy.__version__}")
PY
}

if [ -x "$ENV_DIR/bin/python" ] && check; then
    echo "neural-tangents environment ready: $ENV_DIR/bin/python"
    exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found; neural-tangents 0.6.5 needs Python 3.11 (set PYTHON=...)" >&2
    exit 1
fi

echo "creating $ENV_DIR with $("$PYTHON" --version)"
"$PYTHON" -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install --quiet --upgrade pip
"$ENV_DIR/bin/python" -m pip install --quiet "${PINS[@]}"

if ! check; then
    echo "error: the environment in $ENV_DIR does not import the pinned packages" >&2
    exit 1
fi
echo "neural-tangents environment ready: $ENV_DIR/bin/python"
