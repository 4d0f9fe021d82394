"""Mehler's expansion with the kink in closed form (resin, elu): the split of the expression,
the quadrant moments against quadrature, and every value it vouches for against duals.json
(float64 and the longdouble twin)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from hgmntk.dual_activation import get_activation
from hgmntk.integrator import PairBlock
from hgmntk.kink_mehler import KinkedMehlerDual, _forms, kink_split
from tests.conftest import dual_records


def test_which_expressions_split_at_a_kink():
    resin = kink_split("Heaviside(u)*sin(u)")
    assert resin is not None
    assert [float(v) for v in resin.taylor[:6]] == [0, 1, 0, -1 / 6, 0, 1 / 120]
    elu = kink_split("u*Heaviside(u) + (exp(u) - 1)*Heaviside(-u)")
    assert elu is not None
    assert float(elu.taylor[2]) == pytest.approx(-0.5, rel=1e-18)  # k = u + 1 - e^u
    assert kink_split("u*(1 + erf(u/sqrt(2)))/2") is None  # entire: no kink
    assert kink_split("Heaviside(u)") is None  # a jump, not a kink
    assert kink_split("Heaviside(u - 1)*(u - 1)") is None  # the kink is not at 0
    assert kink_split("log(1 + exp(u))") is None  # no Heaviside at all


def _moments(rho: float, order: int) -> np.ndarray:
    """J_(m,l)(rho) for m, l < order from the recurrence (one coefficient pair at a time)."""
    out = np.empty((order, order))
    for m in range(order):
        for ell in range(order):
            x, y = np.zeros((1, order)), np.zeros((1, order))
            x[0, m] = y[0, ell] = 1.0
            out[m, ell] = _forms(np.array([rho]), order, [(x, y)])[0][0][0]
    return out


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.5, 0.97, 1 - 1e-9])
def test_quadrant_moments_match_arc_cosine_kernels(rho):
    """J_(m,l)(rho) = E[Y(X) X^m Y(Z) Z^l] from the recurrence against the closed forms of
    the arc-cosine kernels (Cho and Saul: orders 0, 1, 2) and of J_(1,0) (mpmath), within
    the rounding bound the evaluator uses: 2 M eps J_(m,l)(|rho|) (for rho < 0 the
    recurrence cancels; its terms are bounded by the run on |rho|)."""
    mpmath.mp.dps = 30
    r = mpmath.mpf(rho)
    t = mpmath.acos(r)
    want = {
        (0, 0): (mpmath.pi - t) / (2 * mpmath.pi),
        (1, 0): (1 + r) / (2 * mpmath.sqrt(2 * mpmath.pi)),
        (1, 1): (mpmath.sin(t) + (mpmath.pi - t) * r) / (2 * mpmath.pi),
        (2, 2): (3 * mpmath.sin(t) * r + (mpmath.pi - t) * (1 + 2 * r**2)) / (2 * mpmath.pi),
    }
    got, magnitude = _moments(rho, 3), _moments(abs(rho), 3)
    for (m, ell), value in want.items():
        assert abs(got[m, ell] - float(value)) <= 6 * 2.3e-16 * magnitude[m, ell], (m, ell)
        assert got[ell, m] == got[m, ell]


def test_quadrant_moments_factorise_at_zero_correlation():
    """At rho = 0, X and Z are independent: J_(m,l) = mu_m mu_l, mu_j = E[Y(X) X^j] =
    2^(j/2) Gamma((j+1)/2) / (2 sqrt(pi))."""
    got = _moments(0.0, 10)
    mu = [float(mpmath.mpf(2) ** (mpmath.mpf(j) / 2) * mpmath.gamma((j + 1) / mpmath.mpf(2))
                / (2 * mpmath.sqrt(mpmath.pi))) for j in range(10)]
    assert np.allclose(got, np.outer(mu, mu), rtol=1e-15, atol=0)


def _evaluate(evaluator, records):
    a, b, c = (np.array([float(r[k]) for r in records]) for k in "abc")
    mpmath.mp.dps = 40
    exact = [mpmath.mpf(r["c_exact"]) / mpmath.sqrt(mpmath.mpf(r["a_exact"])
                                                     * mpmath.mpf(r["b_exact"]))
             for r in records]
    dtype = evaluator.dtype
    rho = np.clip(np.array([dtype(mpmath.nstr(x, 25)) for x in exact]), -1, 1)
    sa, sb = np.sqrt(a.astype(dtype)), np.sqrt(b.astype(dtype))
    # the rounding of rho is an error of c, which moves E by E' dc and E' by slope dc
    dc = np.array([float(abs(x - mpmath.mpf(str(v)))) for x, v in zip(exact, rho)])
    dc = dc * np.sqrt(a * b) + 4 * float(np.finfo(dtype).eps) * (np.abs(c) + np.sqrt(a * b))
    f = evaluator.prepare(sa, sb)
    idx = np.arange(len(records))
    block = PairBlock(sa, sb, rho)
    e, err_e, _ = f(block, idx, idx, "ss")
    de, err_d, slope = f(block, idx, idx, "dsds")
    return e, err_e, de, err_d, slope, dc


@pytest.mark.parametrize("name", ["resin", "elu"])
@pytest.mark.parametrize("twin", [False, True], ids=["float64", "longdouble"])
def test_vouched_values_match_the_reference(name, twin):
    """Every value with a finite bound is within it (plus the rounding of rho carried by
    Price's theorem and the slope) of duals.json; the moderate records (a, b <= 3,
    |rho| <= 0.999) are mostly vouched for to 1e-13 (float64) or 1e-15 (longdouble)."""
    records = [r for r in dual_records(name) if r["rho_nominal"] != "1"]
    evaluator = KinkedMehlerDual(kink_split(get_activation(name).expression))
    if twin:
        evaluator = evaluator.extended()
        if evaluator is None:
            pytest.skip("numpy longdouble is no wider than float64 here")
    e, err_e, de, err_d, slope, dc = _evaluate(evaluator, records)
    # the references rounded to the evaluator's float type (decimal strings to longdouble)
    ref_e, ref_d = (np.array([evaluator.dtype(r[key]) for r in records])
                    for key in ("E_ss", "E_dsds"))
    dc = dc.astype(evaluator.dtype)
    for got, err, ref, moved in ((e, err_e, ref_e, np.abs(ref_d) * dc),
                                 (de, err_d, ref_d, slope * dc)):
        vouched = np.isfinite(err)
        assert np.all(np.abs(got - ref)[vouched] <= err[vouched] + moved[vouched])
    moderate = np.array([float(r["a"]) <= 3 and float(r["b"]) <= 3
                         and abs(float(mpmath.mpf(r["rho"]))) <= 0.999 for r in records])
    target = 1e-15 if twin else 1e-13
    for err, ref in ((err_e, ref_e), (err_d, ref_d)):
        share = np.mean(err[moderate] <= target * np.abs(ref[moderate]))
        assert share >= 0.75, (name, share)


def test_sides_of_an_expression():
    from hgmntk.kink_mehler import entire_sides

    f, g = entire_sides("Heaviside(u)*cos(u)")  # a jump at 0 is allowed
    assert (str(f), str(g)) == ("cos(u)", "0")
    assert entire_sides("DiracDelta(u)*cos(u) - Heaviside(u)*sin(u)") is None  # no side's
    assert entire_sides("Heaviside(u - 1)*(u - 1)") is None
    f, g = entire_sides("log(1 + exp(u))")  # smooth at 0: the same on both sides
    assert f == g


@pytest.mark.parametrize("name", ["elu", "resin", "gelu", "Heaviside(u)*cos(u)"])
def test_collinear_expectations_against_mpmath(name):
    """E[s(sqrt(a) U) s(+-sqrt(b) U)] by the vectorised half-line rules against 30-digit
    mpmath quadrature (the z-axis cut at 0), with the targets they decline left out."""
    from hgmntk.collinear import _mp_function
    from hgmntk.expressions import lambdify_activation
    from hgmntk.kink_mehler import entire_sides, half_line_expectations

    expression = get_activation(name).expression
    f, g = (lambdify_activation(str(side)) for side in entire_sides(expression))
    a = np.array([0.01, 0.3, 1.0, 2.5, 9.0, 40.0, 0.3])
    b = np.array([0.02, 1.7, 1.0, 0.4, 9.0, 3.0, 0.3])
    sign = np.array([1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0])
    values, ok = half_line_expectations(f, g, a, b, sign)
    # declined: resin's opposite sides never meet (E = 0), and a cancellation by 1e3
    assert ok[[0, 2, 4]].all() and (np.sum(ok) >= 5 or name in ("resin", "Heaviside(u)*cos(u)"))
    s = _mp_function(expression)
    with mpmath.workdps(30):
        for k in np.flatnonzero(ok):
            sa, sb = mpmath.sqrt(a[k]), sign[k] * mpmath.sqrt(b[k])
            want = mpmath.quad(lambda z, sa=sa, sb=sb: s(sa * z) * s(sb * z) * mpmath.npdf(z),
                               [-mpmath.inf, -10, 0, 10, mpmath.inf])
            assert values[k] == pytest.approx(float(want), rel=1e-14, abs=1e-300), k


def test_collinear_expectations_leave_huge_variances_to_adaptive_quadrature():
    from hgmntk.kink_mehler import half_line_expectations

    values, ok = half_line_expectations(np.exp, np.exp, np.array([1e9]), np.array([1.0]),
                                        np.array([1.0]))
    assert not ok.any()


@pytest.mark.parametrize("name", ["resin", "elu"])
def test_damped_kink_near_collinear_at_large_variances(name):
    """Variances above DAMP_FROM damp the kink's polynomial (the undamped one cancelled
    by 1e10 at a = 20, rho -> 1): near-collinear pairs at variances 8..20 are vouched for
    to 1e-11 and agree within their bounds with the HGM's precise path (the Pfaffian
    system continued in mpmath, Mehler's expansion switched off)."""
    import hgmntk
    from hgmntk.kink_mehler import DAMP_FROM

    cases = np.array([(20.25, 13.8, 1 - 3e-6), (9.0, 8.0, 1 - 1e-5), (12.0, 12.0, 0.85),
                      (8.0, 0.5, 0.95), (16.0, 5.0, -0.97)])
    if name == "elu":  # elu's kink grows like e^u: at a = 20 the series does not settle
        cases = cases[1:]
    assert np.all(cases[:, 0] > DAMP_FROM)
    evaluator = KinkedMehlerDual(kink_split(get_activation(name).expression))
    sa, sb, rho = np.sqrt(cases[:, 0]), np.sqrt(cases[:, 1]), cases[:, 2]
    where = np.arange(len(cases))
    f = evaluator.prepare(sa, sb)
    block = PairBlock(sa, sb, rho)
    e, err_e, _ = f(block, where, where, "ss")
    de, err_d, _ = f(block, where, where, "dsds")
    c = rho * sa * sb
    ref_e = hgmntk.dual(name, cases[:, 0], cases[:, 1], c, method="hgm", mehler=False,
                        rtol=1e-14)
    ref_d = hgmntk.dual(name, cases[:, 0], cases[:, 1], c, derivative=True, method="hgm",
                        mehler=False, rtol=1e-14)
    for got, err, ref in ((e, err_e, ref_e), (de, err_d, ref_d)):
        assert np.all(err <= 1e-11 * np.abs(ref)), err / np.abs(ref)
        assert np.all(np.abs(got - ref) <= err + 1e-14 * np.abs(ref))


def test_compiled_kinked_horner_repeats_the_numpy_steps_bitwise():
    """hgmntk.fused.kinked_horner (2-D float64 blocks of the kinked series) against the
    numpy Horner steps it replaces (mehler.horner_shift, then the two outer products per
    term): e, e' and e''/2 bitwise, rho = +-1 included."""
    from hgmntk import fused
    from hgmntk.mehler import horner_shift

    rng = np.random.default_rng(4)
    terms, n, m = 30, 9, 14
    scale = (1 + np.arange(terms))[:, None] ** 1.5
    ra, qa = (rng.standard_normal((terms, n)) / scale for _ in range(2))
    hb, rb = (rng.standard_normal((terms, m)) / scale for _ in range(2))
    rho = rng.uniform(-1, 1, (n, m))
    rho[0, :2] = [1.0, -1.0]
    want = [np.zeros((n, m)) for _ in range(3)]
    for k in range(terms - 1, -1, -1):
        horner_shift(*want, rho)
        want[0] += ra[k][:, None] * hb[k][None, :]
        want[0] += qa[k][:, None] * rb[k][None, :]
    got = fused.kinked_horner(*(np.ascontiguousarray(t.T) for t in (ra, hb, qa, rb)), rho,
                              terms)
    for x, y in zip(got, want):
        assert np.array_equal(x, y)
