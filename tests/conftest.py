"""Shared fixtures: the reference values of ../shared/reference and a private data dir."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import mpmath
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path | None:
    """../shared/reference beside the checkout (or $HGMNTK_REFERENCE_DIR)."""
    env = os.environ.get("HGMNTK_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "reference", ROOT / "shared" / "reference"]
    for c in candidates:
        if (c / "duals.json").is_file():
            return c
    return None


def need_reference() -> Path:
    """The reference folder; skip (or fail in CI) when it is absent."""
    folder = reference_dir()
    if folder is None:
        msg = "reference values (shared/reference beside the checkout) not found"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return folder


@lru_cache(maxsize=1)
def _duals() -> list[dict]:
    return json.loads((need_reference() / "duals.json").read_text())


@lru_cache(maxsize=1)
def _kernels() -> dict:
    return json.loads((need_reference() / "kernels.json").read_text())


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


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    """Every test gets its own user data directory (derived activations, cache)."""
    data = tmp_path / "hgmntk-data"
    monkeypatch.setenv("HGMNTK_DATA_DIR", str(data))
    yield
    if data.exists():  # the test installed something: forget it
        from hgmntk.plugin_manager import reset_registry

        reset_registry()
