"""Derived built-in activations against the independent reference values (duals.json).

Covered here: the records where the HGM already meets 1e-12.  gelu, resin, elu, cos, exp,
gauss, E_ss of sin, and relu2/relu3 at rho -> -1 are not yet at that accuracy or speed and
are tracked in the open issue.
"""

from __future__ import annotations

import numpy as np
import pytest

import hgmntk
from tests.conftest import dual_records, mp_array

TOL = 1e-12


def _check(activation: str, derivative: bool, rho_filter=None) -> None:
    recs = dual_records(activation)
    if rho_filter is not None:
        recs = [r for r in recs if rho_filter(float(r["rho"]))]
    assert len(recs) > 20
    a, b, c = (np.array([float(r[k]) for r in recs]) for k in "abc")
    ref = mp_array([r["E_dsds" if derivative else "E_ss"] for r in recs])
    got = hgmntk.dual(activation, a, b, c, derivative=derivative, method="hgm")
    finite = np.isfinite(ref)
    assert np.all(np.isinf(got[~finite]))
    scale = np.maximum(np.abs(ref[finite]), 1e-300)
    err = np.abs(got[finite] - ref[finite])
    zero = ref[finite] == 0
    assert np.all(err[zero] < 1e-15), "exact zeros of the reference"
    rel = err[~zero] / scale[~zero]
    worst = int(np.argmax(rel))
    assert rel[worst] <= TOL, recs[np.flatnonzero(finite)[np.flatnonzero(~zero)[worst]]]


@pytest.mark.parametrize("activation", ["abs", "leaky_relu"])
@pytest.mark.parametrize("derivative", [False, True])
def test_homogeneous_builtins(activation, derivative):
    _check(activation, derivative)


@pytest.mark.parametrize("activation", ["relu2", "relu3"])
@pytest.mark.parametrize("derivative", [False, True])
def test_rectified_monomials_away_from_rho_minus_one(activation, derivative):
    # at rho = -0.99999 the values are ~1e-12 of the solution scale (open issue)
    _check(activation, derivative, rho_filter=lambda rho: rho > -0.999)


@pytest.mark.parametrize("derivative", [False, True])
def test_erf(derivative):
    _check("erf", derivative)


def test_sin_derivative_dual():
    # E_ss of sin at a = b = 100 (value 2e-5 of the scale) is not yet at 1e-12 (open issue)
    _check("sin", True)
