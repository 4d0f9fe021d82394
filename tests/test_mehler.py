"""Mehler's expansion (the fast path of non-homogeneous entire activations) against
closed forms of the Hermite coefficients and the duals.json reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hgmntk.dual_activation import get_activation
from hgmntk.integrator import PairBlock
from hgmntk.mehler import MehlerDual, gauss_hermite_rule, is_entire_expression
from tests.conftest import dual_records, mp_array


def test_gauss_hermite_rule_integrates_moments_exactly():
    x, w = gauss_hermite_rule(40)
    for k in range(0, 60, 2):  # E[X^k] = (k-1)!!
        want = math.prod(range(k - 1, 0, -2)) if k else 1
        assert abs(float(np.sum(w * x**k)) - want) <= 1e-15 * want


def test_sin_coefficients_match_their_closed_form():
    """h_n(a) of sin: e^(-a/2) a^(n/2) / sqrt(n!) (-1)^((n-1)/2) for odd n, 0 for even n."""
    a = np.array([0.3, 1.0, 4.0, 25.0])
    layer = MehlerDual(np.sin).coefficients(a)
    for n in range(60):
        want = [(-1) ** ((n - 1) // 2) * math.exp(-v / 2) * v ** (n / 2)
                / math.sqrt(math.factorial(n)) if n % 2 else 0.0 for v in a]
        assert np.max(np.abs(layer.h[n] - want)) <= 4e-16 * np.max(layer.norm)
    assert np.all(layer.good)


def test_which_activations_get_the_expansion():
    assert is_entire_expression("u*(1 + erf(u/sqrt(2)))/2")
    assert not is_entire_expression("Heaviside(u)*sin(u)")
    assert not is_entire_expression("Max(0, u)")


@pytest.mark.parametrize("name", ["gelu", "erf", "sin", "cos", "exp", "gauss"])
def test_trusted_values_match_the_reference(name):
    """Every value the expansion vouches for (finite error bound) is within its bound and
    1e-13 of duals.json; a good part of the records (a, b in 1e-4..100) is vouched for."""
    recs = dual_records(name)
    a, b, c = (np.array([float(r[k]) for r in recs]) for k in "abc")
    mehler = MehlerDual(get_activation(name).numeric_functions["s"])
    evaluate = mehler.prepare(np.sqrt(a), np.sqrt(b))
    n = len(recs)
    rho = np.clip(c / np.sqrt(a * b), -1, 1)
    block = PairBlock(np.sqrt(a), np.sqrt(b), rho)  # flat: record k pairs row k, column k
    idx = np.arange(n)
    e, err_e, _ = evaluate(block, idx, idx, "ss")
    de, err_d, _ = evaluate(block, idx, idx, "dsds")
    for got, err, key in ((e, err_e, "E_ss"), (de, err_d, "E_dsds")):
        ref = mp_array([r[key] for r in recs])
        ok = np.isfinite(err) & (np.abs(err) <= 1e-13 * np.abs(got))
        assert ok.sum() >= n // 5, (name, key, ok.sum())  # extreme variances are not
        diff = np.abs(got[ok] - ref[ok])
        assert np.all(diff <= np.maximum(10 * err[ok], 1e-13 * np.abs(ref[ok]))), (name, key)


def test_odd_activation_bound_is_relative_at_small_correlations():
    """erf's dual E = (2/pi) asin(2c / sqrt((1+2a)(1+2b))) vanishes like rho: the bound of a
    pair must shrink with it (the tail is bounded per pair, not by the cut's tolerance),
    and still cover the actual error against the closed form."""
    import mpmath

    a = np.full(7, 0.8)
    b = np.full(7, 1.7)
    rho = np.array([1e-1, 1e-2, 1e-3, 1e-5, 1e-8, -1e-4, -3e-2])
    mehler = MehlerDual(get_activation("erf").numeric_functions["s"])
    evaluate = mehler.prepare(np.sqrt(a), np.sqrt(b))
    idx = np.arange(a.size)
    e, err, _ = evaluate(PairBlock(np.sqrt(a), np.sqrt(b), rho), idx, idx, "ss")
    mpmath.mp.dps = 40
    for k in idx:
        c = mpmath.mpf(rho[k]) * mpmath.sqrt(mpmath.mpf(a[k]) * b[k])
        want = 2 / mpmath.pi * mpmath.asin(2 * c / mpmath.sqrt((1 + 2 * a[k]) * (1 + 2 * b[k])))
        assert err[k] <= 1e-14 * abs(e[k]), (rho[k], err[k] / abs(e[k]))
        assert abs(e[k] - float(want)) <= err[k], rho[k]


@pytest.mark.parametrize("name", ["gelu", "erf", "resin", "elu"])
def test_the_hgm_integrator_asks_mehler_first_and_the_ode_agrees(name):
    """method='hgm' answers ordinary targets by Mehler's expansion (bounds within the
    tolerance) and the ODE alone (mehler=False) gives the same values: two independent
    evaluations of one holonomic function."""
    import hgmntk
    from hgmntk.covariance import Covariances
    from hgmntk.plugins.builtin_integrators import _mehler_values

    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.2, 4.0, 12), rng.uniform(0.2, 4.0, 12)
    c = rng.uniform(-0.9, 0.9, 12) * np.sqrt(a * b)
    act = get_activation(name)
    for key, derivative in (("ss", False), ("dsds", True)):
        cov = Covariances.from_arrays(a, b, c)
        values, error, done = _mehler_values(act, key, cov, 1e-12)
        assert np.all(done), (name, key)
        ode = hgmntk.dual(name, a, b, c, derivative=derivative, method="hgm", mehler=False)
        np.testing.assert_allclose(values, ode, rtol=2e-12, atol=0)


def test_compiled_level_horner_repeats_the_numpy_one_bitwise():
    """hgmntk.fused.level_horner (each entry's own cut from its |rho| level) against the
    numpy sweep by levels it replaces on 2-D float64 blocks: e, e' and e''/2 bitwise,
    including entries on the level boundaries and rho = +-1."""
    from hgmntk.mehler import array_level_horner, level_horner

    rng = np.random.default_rng(21)
    terms, n, m = 40, 17, 23
    ha = rng.standard_normal((terms, n)) / (1 + np.arange(terms))[:, None]
    hb = rng.standard_normal((terms, m)) / (1 + np.arange(terms))[:, None]
    rho = rng.uniform(-1, 1, (n, m))
    levels = [0.25, 0.5, 0.9, float(np.max(np.abs(rho)))]
    rho[0, :4] = [0.25, -0.5, 0.9, -0.9]
    rho[1, :2] = [1.0, -1.0]
    levels[-1] = 1.0
    cuts = np.array([5, 9, 20, 40])
    absrho = np.abs(rho)
    got = level_horner(ha, hb, rho, absrho, levels, cuts)
    want = array_level_horner(ha, hb, rho, absrho, levels, cuts)
    for x, y in zip(got, want):
        assert np.array_equal(x, y)
