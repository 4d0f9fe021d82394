"""Every built-in activation against the independent reference values (duals.json).

``hgmntk.dual(..., method="hgm")`` must agree with every record, E_ss and E_dsds, to
relative error 1e-12 where the value is finite: by default Mehler's expansion answers the
targets it vouches for and the ODE the others; with ``mehler=False`` the ODE answers
every target (its float paths most; the records near rho = +-1, at large variances and
where the value is tiny compared with the other solutions of the system go through the
precise path, :mod:`hgmntk.continuation`).
"""

from __future__ import annotations

import numpy as np
import pytest

import hgmntk
from tests.conftest import dual_records, mp_array

TOL = 1e-12
FAST = ["abs", "leaky_relu", "relu2", "relu3", "erf", "exp", "gauss", "sin", "cos"]
SLOW = ["resin", "gelu", "elu"]
#: The slow activations' records are checked in this many interleaved parts.
PARTS = 4


def check_against_reference(
    activation, derivative: bool, name: str | None = None, method: str = "hgm",
    part: int = 0, parts: int = 1, **options,
) -> None:
    """hgmntk.dual(activation, ...) with ``method`` on every duals.json record of ``name``
    (default: the activation's own name) agrees to ``TOL`` where the value is finite;
    with ``parts`` > 1 on the records ``part``, ``part + parts``, ... only (the slow
    activations are checked in parts that run in parallel)."""
    recs = dual_records(name or activation)
    assert len(recs) > 20
    recs = recs[part::parts]
    a, b, c = (np.array([float(r[k]) for r in recs]) for k in "abc")
    ref = mp_array([r["E_dsds" if derivative else "E_ss"] for r in recs])
    got = hgmntk.dual(activation, a, b, c, derivative=derivative, method=method, **options)
    finite = np.isfinite(ref)
    assert np.all(np.isinf(got[~finite]))
    scale = np.maximum(np.abs(ref[finite]), 1e-300)
    err = np.abs(got[finite] - ref[finite])
    zero = ref[finite] == 0
    assert np.all(err[zero] < 1e-15), "exact zeros of the reference"
    rel = err[~zero] / scale[~zero]
    worst = int(np.argmax(rel))
    assert rel[worst] <= TOL, recs[np.flatnonzero(finite)[np.flatnonzero(~zero)[worst]]]


@pytest.mark.parametrize("activation", FAST)
@pytest.mark.parametrize("derivative", [False, True])
@pytest.mark.parametrize("mehler", [True, False])
def test_builtin_against_reference(activation, derivative, mehler):
    check_against_reference(activation, derivative, mehler=mehler)


@pytest.mark.parametrize("activation", ["step", "abs", "leaky_relu", "relu2", "relu3"])
@pytest.mark.parametrize("derivative", [False, True])
def test_arc_cosine_closed_forms_against_reference(activation, derivative):
    """The closed forms of the rectified family (arc-cosine kernels, careful evaluation)."""
    check_against_reference(activation, derivative, method="closed")


@pytest.mark.slow
@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("activation", SLOW)
@pytest.mark.parametrize("derivative", [False, True])
def test_large_builtin_against_reference(activation, derivative, part):
    check_against_reference(activation, derivative, part=part, parts=PARTS)


@pytest.mark.slow
@pytest.mark.parametrize("activation", SLOW)
@pytest.mark.parametrize("derivative", [False, True])
def test_large_builtin_by_the_ode_alone(activation, derivative):
    """The ODE without Mehler's expansion, on one part of the slow activations' records."""
    check_against_reference(activation, derivative, part=1, parts=PARTS, mehler=False)

