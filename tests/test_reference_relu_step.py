"""relu and step against the independent reference values (duals.json, kernels.json)."""

from __future__ import annotations

import numpy as np
import pytest

import hgmntk
from tests.conftest import dual_records, kernel_results, mp_array

TOL = 1e-12


@pytest.mark.parametrize("activation", ["relu", "step"])
@pytest.mark.parametrize("method", ["closed", "hgm"])
@pytest.mark.parametrize("derivative", [False, True])
def test_duals_match_reference(activation, method, derivative):
    recs = dual_records(activation)
    assert len(recs) > 50
    a, b, c = (np.array([float(r[k]) for r in recs]) for k in "abc")
    ref = mp_array([r["E_dsds" if derivative else "E_ss"] for r in recs])
    got = hgmntk.dual(activation, a, b, c, derivative=derivative, method=method)
    finite = np.isfinite(ref)
    assert np.all(np.isinf(got[~finite])), "infinite reference values must stay infinite"
    rel = np.abs(got[finite] - ref[finite]) / np.abs(ref[finite])
    worst = int(np.argmax(rel))
    assert rel[worst] <= TOL, recs[np.flatnonzero(finite)[worst]]


@pytest.mark.parametrize("method", ["closed", "hgm"])
def test_relu_kernels_match_reference(method):
    X, results = kernel_results("relu")
    assert results
    for r in results:
        k = hgmntk.kernels(
            X,
            activation="relu",
            depth=r["depth"],
            w_std=float(r["W_std"]),
            b_std=float(r["b_std"]),
            method=method,
        )
        for field in ("nngp", "ntk"):
            ref = mp_array(r[field])
            rel = np.abs(getattr(k, field) - ref) / np.abs(ref)
            assert rel.max() <= TOL, (r["W_std"], r["b_std"], r["depth"], field, rel.max())


def test_hgm_agrees_with_closed_on_random_points():
    rng = np.random.default_rng(7)
    n = 400
    a = np.exp(rng.uniform(-5, 5, n))
    b = np.exp(rng.uniform(-5, 5, n))
    rho = np.concatenate([rng.uniform(-1, 1, n - 4), [0.999999, -0.999999, 1 - 1e-12, -1 + 1e-12]])
    c = rho * np.sqrt(a * b)
    for act in ("relu", "step"):
        for deriv in (False, True):
            h, err = hgmntk.dual(act, a, b, c, derivative=deriv, method="hgm", return_error=True)
            cl = hgmntk.dual(act, a, b, c, derivative=deriv, method="closed")
            rel = np.abs(h - cl) / np.abs(cl)
            assert rel.max() <= TOL, (act, deriv, rho[np.argmax(rel)])
            assert np.all(np.isfinite(err)) and np.all(err >= 0)
