"""Shared fixtures: the reference values of tests/reference and a private data dir."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import mpmath
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

try:  # the property-based tests' profiles (hypothesis is a test extra)
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci", derandomize=True, max_examples=200, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("long", max_examples=2000, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover - the fuzz tests then fail to import, loudly
    pass
#: The reference values shipped with the tests (see tests/reference/README.md).
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


def reference_dir() -> Path:
    """The folder of duals.json and kernels.json: $HGMNTK_REFERENCE_DIR, else tests/reference.

    A folder named by the variable that lacks duals.json is an error (a typo must not
    silently test against the shipped copy).
    """
    env = os.environ.get("HGMNTK_REFERENCE_DIR")
    folder = Path(env) if env else REFERENCE_DIR
    if not (folder / "duals.json").is_file():
        raise FileNotFoundError(
            f"reference values not found: {folder / 'duals.json'} "
            + ("(HGMNTK_REFERENCE_DIR)" if env else "(shipped with the tests)")
        )
    return folder


@lru_cache(maxsize=1)
def _duals() -> list[dict]:
    return json.loads((reference_dir() / "duals.json").read_text())


@lru_cache(maxsize=1)
def _kernels() -> dict:
    return json.loads((reference_dir() / "kernels.json").read_text())


def dual_records(activation: str) -> list[dict]:
    """Reference records of duals.json for one activation."""
    return [r for r in _duals() if r["activation"] == activation]


def kernel_results(activation: str) -> tuple[np.ndarray, list[dict]]:
    """(X of gauss20_d5, result records) of kernels.json for one activation."""
    data = _kernels()
    X = np.array(data["datasets"]["gauss20_d5"]["X"], dtype=float)
    return X, [r for r in data["results"] if r["activation"] == activation]


def mp_array(values) -> np.ndarray:
    """Decimal strings ("inf" allowed) to float64."""
    return (
        np.array([[float(mpmath.mpf(v)) for v in row] for row in values])
        if isinstance(values[0], list)
        else np.array([float(mpmath.mpf(v)) for v in values])
    )


def mp_kernels(X, ss, dsds, depth: int, w_std: float, b_std: float, dps: int = 40):
    """[(NNGP, NTK)] of every layer 1..depth of a deep network, the recursion done in
    ``dps``-digit mpmath from dual functions ``ss(a, b, c)``, ``dsds(a, b, c)`` (mpmath
    numbers in, out; the diagonal at c = a exactly), rounded to float64 at the end."""
    with mpmath.workdps(dps):
        rows = [[mpmath.mpf(float(v)) for v in row] for row in X]
        m, d = len(rows), len(rows[0])
        w2, b2 = mpmath.mpf(w_std) ** 2, mpmath.mpf(b_std) ** 2
        sig = [[w2 * mpmath.fsum(p * q for p, q in zip(rows[i], rows[j])) / d + b2
                for j in range(m)] for i in range(m)]
        ntk = [r[:] for r in sig]
        out = []
        for _ in range(depth):
            new = [[None] * m for _ in range(m)]
            for i in range(m):
                for j in range(m):
                    a, b = sig[i][i], sig[j][j]
                    c = a if i == j else sig[i][j]
                    new[i][j] = w2 * ss(a, b, c) + b2
                    ntk[i][j] = new[i][j] + ntk[i][j] * w2 * dsds(a, b, c)
            sig = new
            out.append(tuple(np.array([[float(v) for v in r] for r in mat])
                             for mat in (sig, ntk)))
        return out


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    """Every test gets its own user data directory (derived activations, cache)."""
    data = tmp_path / "hgmntk-data"
    monkeypatch.setenv("HGMNTK_DATA_DIR", str(data))
    yield
    if data.exists():  # the test installed something: forget it
        from hgmntk.plugin_manager import reset_registry

        reset_registry()
