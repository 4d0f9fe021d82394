"""The compiled loops of the smooth closed forms (hgmntk.plugins.compiled_forms) against
the numpy forms they repeat (hgmntk.plugins.smooth_forms), on blocks with rho = +-1,
variances from 1e-4 to 1e2 and the parameters of every family: the same formulas in the
same order, with numpy's own exp, expm1 and arctan2 between the loops, give the same
values, bounds and slopes bitwise (NaN alike: a Gaussian beyond its convergence)."""

from __future__ import annotations

import numpy as np
import pytest

from hgmntk.integrator import PairBlock
from hgmntk.plugins import smooth_forms as sf

FORMS = [
    sf.ErfForm(1, 1), sf.ErfForm(0.5, 2, 0.1),
    sf.TrigForm(1, 1), sf.TrigForm(1, 1, cosine=True), sf.TrigForm(1.5, 0.5, 0.3),
    sf.TrigForm(1, 2, cosine=True), sf.TrigForm(2**0.5, 1, np.pi / 4), sf.TrigForm(1, 1, 2.0),
    sf.TrigForm(1, 0.7, 1.0, cosine=True),
    sf.ExpForm(0.5, 0.3), sf.ExpForm(1, 1),
    sf.GaussianForm(1, -0.5), sf.GaussianForm(2, -0.01), sf.GaussianForm(1, 0.1),
    sf.GeluForm(),
    sf.PolynomialForm([0.1, 1, 0.5]), sf.PolynomialForm([0, 0, 1]),
    sf.PolynomialForm([1, -2, 0, 3, 0.5]), sf.PolynomialForm([0, 0, 0, 1]),
]


def _numpy_only(form):
    """A copy of ``form`` without its compiled loop (the numpy block evaluation)."""
    twin = type(form).__new__(type(form))
    twin.__dict__.update({k: v for k, v in vars(form).items() if not k.startswith("_")})
    twin.compiled = lambda: None
    return twin


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f"{type(f).__name__}{vars(f)}"[:60])
def test_compiled_form_matches_the_numpy_form(form):
    rng = np.random.default_rng(11)
    n, m = 30, 40
    sa = np.sqrt(10.0 ** rng.uniform(-4, 2, (n, 1)))
    sb = np.sqrt(10.0 ** rng.uniform(-4, 2, (1, m)))
    rho = rng.uniform(-1, 1, (n, m))
    rho[0, :6] = [1, -1, 1 - 1e-12, -1 + 1e-9, 0, 1e-300]
    rho[1:, 0] = 1.0
    sab = sa * sb
    assert form.compiled() is not None
    got = form._compiled_block(PairBlock(sa, sb, rho, sab=sab))
    block = PairBlock(sa, sb, rho, sab=sab)
    twin = _numpy_only(form)
    assert twin._compiled_block(block) is None
    numpy_values = twin.ss_block(block)[:2] + twin.dsds_block(block)
    want = [np.broadcast_to(x, rho.shape) for x in numpy_values]
    for k in range(5):
        assert np.array_equal(got[k], want[k], equal_nan=True), k
    finite = np.isfinite(want[0]) & np.isfinite(want[2])
    assert finite.mean() > 0.5


def test_long_double_blocks_keep_the_numpy_forms():
    """The compiled loops are float64 only: a long-double block gets the numpy forms."""
    form = sf.ErfForm(1, 1)
    ld = np.longdouble
    block = PairBlock(np.ones((2, 1), ld), np.ones((1, 3), ld), np.zeros((2, 3), ld))
    assert form._compiled_block(block) is None
    value, bound, _ = form.ss_block(block)
    assert value.dtype == ld and np.all(value == 0)


@pytest.mark.parametrize("alpha, beta", [(1, 0), (1, 1), (1, -0.1), (1, -0.5), (2, 0.5),
                                         (2, -0.5), (0, 1), (-1, 3)])
def test_compiled_rectified_linear_family_matches_the_numpy_form(alpha, beta, monkeypatch):
    """relu, abs, leaky and two-slope relus (n = 1 of the arc-cosine family): the compiled
    loop gives both duals, bounds (infinite near rho = +-1) and slopes bitwise."""
    from hgmntk.plugins.closed_forms import RectifiedFamily

    rng = np.random.default_rng(13)
    n, m = 20, 30
    sa = np.sqrt(10.0 ** rng.uniform(-4, 2, (n, 1)))
    sb = np.sqrt(10.0 ** rng.uniform(-4, 2, (1, m)))
    rho = rng.uniform(-1, 1, (n, m))
    rho[0, :6] = [1, -1, 1 - 1e-12, -1 + 1e-9, 0, 1 - 1e-7]
    family = RectifiedFamily(1, alpha, beta)
    block = PairBlock(sa, sb, rho, sab=sa * sb)
    got = family.ss_block(block)[:2] + family.dsds_block(block)
    assert family._compiled_block(block) is not None
    monkeypatch.setattr(RectifiedFamily, "_compiled_block", lambda self, block: None)
    block = PairBlock(sa, sb, rho, sab=sa * sb)
    want = family.ss_block(block)[:2] + family.dsds_block(block)
    for k in range(5):
        assert np.array_equal(got[k], np.broadcast_to(want[k], rho.shape), equal_nan=True), k
    assert np.isinf(got[1][0, 0]) and np.isfinite(got[1][0, 4])
