"""Tests of the pure-Python 2-D derivation engine (hgmntk.cas_bridge.pfaffian)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.special

from hgmntk.cas_bridge.pfaffian import (
    DerivedSystem,
    check_integrability,
    derive_pfaffian,
    integrability_defects,
    matrix_entries,
    pfaffian_from_groebner_basis,
    pfaffian_from_ideal,
)
from hgmntk.cas_bridge.ratfun import XCTX, RatFun, xgens
from hgmntk.cas_bridge.weyl import UD, XD, parse_operator
from hgmntk.errors import DerivationError
from hgmntk.rational import RationalMatrix
from hgmntk.system import PfaffianSystem

ANNIHILATORS = {
    "relu": ["u*d - 1"],
    "step": ["u*d"],
    "sin": ["d^2 + 1"],
    "erf": ["d^2 + 2*u*d"],
    "resin": ["u*d^2 + u"],
    "resin_u2": ["u^2*d^2 + u^2"],
    "gelu": ["d^3 + 2*u*d^2 + u^2*d - u"],
    "gelu_order2": ["u^2*d^2 + u^3*d - 2*u*d + 2 - u^2"],
    "exp": ["d - 1"],
    # both generators of the annihilator of u Phi(u): a larger ideal, rank 2
    "gelu_full": ["d^3 + 2*u*d^2 + u^2*d - u", "u^2*d^2 + u^3*d - 2*u*d - u^2 + 2"],
}
RANKS = {"relu": 2, "step": 2, "sin": 2, "erf": 2, "resin": 5, "resin_u2": 8, "gelu": 5,
         "gelu_order2": 8, "exp": 1, "gelu_full": 2}

_CACHE: dict[str, DerivedSystem] = {}


def ann(name: str):
    return [parse_operator(UD, t) for t in ANNIHILATORS[name]]


def derived(name: str) -> DerivedSystem:
    if name not in _CACHE:
        _CACHE[name] = derive_pfaffian(ann(name), ann(name))
    return _CACHE[name]


def exact_matrices(system) -> list[list[list[RatFun]]]:
    return [matrix_entries(m, system.factors) for m in system.matrices]


# ------------------------------------------------------------------ ranks, format
@pytest.mark.parametrize("name", sorted(RANKS))
def test_rank_and_integrability(name):
    s = derived(name)
    assert s.rank == RANKS[name]
    assert s.standard_monomials[0] == (0, 0, 0)
    assert len(s.matrices) == 3
    assert all(m.rank == s.rank for m in s.matrices)
    check_integrability(s, points=3)


@pytest.mark.parametrize("name", ["relu", "step", "sin", "erf", "resin", "gelu"])
def test_factors_irreducible_and_determinant_normalised(name):
    s = derived(name)
    x11, x12, x22 = xgens()
    det_terms = {(1, 0, 1): 1, (0, 2, 0): -1}
    for f in s.factors:
        terms = {m: c for m, c in f.terms.items()}
        assert all(c.denominator == 1 for c in terms.values())
        if {m: -c for m, c in terms.items()} == det_terms:
            continue  # the negative is allowed by the format
        z = XCTX.from_dict({m: int(c) for m, c in terms.items()})
        content, facs = z.factor()
        assert len(facs) == 1 and facs[0][1] == 1, f"factor {z} is not irreducible"
        if set(terms) == set(det_terms) and terms[(1, 0, 1)] == -terms[(0, 2, 0)]:
            # a multiple of the determinant must be exactly +-(x11*x22 - x12^2)
            assert terms == det_terms


def test_pfaffian_system_roundtrip():
    s = derived("relu")
    ps = s.to_pfaffian_system(["-1", "0", "-1"], ["1/4", "0.39269908169872415480783042290993786"],
                              metadata={"source": "test"})
    assert isinstance(ps, PfaffianSystem)
    assert ps.rank == 2
    assert ps.determinant_factor is not None
    again = PfaffianSystem.from_json(json.loads(json.dumps(ps.to_json())))
    assert again.standard_monomials == ps.standard_monomials
    assert ps.integrability_defect([-1.0, 0.3, -2.0]) < 1e-8
    assert ps.ideal[0] == "4*d11*d22 - d12^2"


# ------------------------------------------------------------ MATH.md section 4
def _section4(k: int) -> list[list[list[RatFun]]]:
    """The ReLU (k = 1) / Heaviside (k = 0) Pfaffian matrices of MATH.md section 4."""
    x11, x12, x22 = xgens()
    one = XCTX.constant(1)
    det = x11 * x22 - x12**2

    def rf(num, den=None):
        return RatFun(num if not isinstance(num, int) else XCTX.constant(num),
                      den if den is not None else one)

    a = rf((k + 1) ** 2 * one, det)
    b = rf((2 * k + 3) * x12, det)
    p12 = [[rf(0), rf(1)], [a, b]]

    def p_diag(x):
        c = rf(-one, 2 * x)
        inner = [[rf(k + 1), rf(x12)], [rf(x12) * a, rf(k + 2) + rf(x12) * b]]
        return [[c * e for e in row] for row in inner]

    return [p_diag(x11), p12, p_diag(x22)]


@pytest.mark.parametrize("name,k", [("relu", 1), ("step", 0)])
def test_relu_step_equal_math_section4(name, k):
    s = derived(name)
    assert s.standard_monomials == [(0, 0, 0), (0, 1, 0)]
    assert exact_matrices(s) == _section4(k)
    ideal = set(map(str, s.ideal))
    assert {"4*d11*d22 - d12^2", f"2*x11*d11 + x12*d12 + {k + 1}",
            f"x12*d12 + 2*x22*d22 + {k + 1}"} <= ideal


@pytest.mark.parametrize("name,key", [("relu", "ss"), ("step", "dsds")])
def test_relu_step_equal_plugin_data(name, key):
    # the data file of the plugin package, read from the checkout
    text = (Path(__file__).resolve().parents[1] / "plugins" / "data" / "relu.json").read_text()
    ps = PfaffianSystem.from_json(json.loads(text)["duals"][key])
    s = derived(name)
    assert [tuple(m) for m in ps.standard_monomials] == s.standard_monomials
    theirs = [matrix_entries(m, ps.factors) for m in ps.matrices]
    assert theirs == exact_matrices(s)


def test_section4_reference_is_discriminating():
    """The comparison above can fail: ReLU and Heaviside systems differ."""
    assert _section4(1) != _section4(0)
    assert exact_matrices(derived("relu")) != exact_matrices(derived("step"))


# ------------------------------------------------------------ integrability check
def test_check_integrability_detects_a_wrong_system():
    s = derived("sin")
    m = s.matrices[1]
    rows = [list(r) for r in m.numerators]
    rows[0][0], rows[0][1] = rows[0][1], rows[0][0]  # corrupt P_x12
    bad_m = RationalMatrix(tuple(tuple(r) for r in rows), m.constant, m.factor_powers)
    bad = DerivedSystem(s.standard_monomials, s.factors,
                        [s.matrices[0], bad_m, s.matrices[2]], s.ideal)
    assert any(d != 0 for d in integrability_defects(bad, points=2))
    with pytest.raises(DerivationError, match="not integrable"):
        check_integrability(bad, points=2)


# ------------------------------------------------------- independent numeric check
SIN = mpmath.sin


def _moment_1d(s, a: int, t) -> mpmath.mpf:
    return mpmath.quad(lambda u: u**a * s(u) * mpmath.exp(t * u * u), [-mpmath.inf, 0, mpmath.inf])


def _f_and_derivatives(system, moment):
    """F_k = 2^j M(a, b) and d_i F_k from a moment function M(a, b)."""
    f, df = [], [[], [], []]
    for i, j, k in system.standard_monomials:
        a, b = 2 * i + j, 2 * k + j
        w = 2**j
        f.append(w * moment(a, b))
        df[0].append(w * moment(a + 2, b))
        df[1].append(2 * w * moment(a + 1, b + 1))
        df[2].append(w * moment(a, b + 2))
    return f, df


def _check_pf(system, point, f, df, tol):
    mats = exact_matrices(system)
    r = system.rank
    for i in range(3):
        for row in range(r):
            lhs = df[i][row]
            rhs = sum(mpmath.mpf(mats[i][row][c].evaluate(point).numerator)
                      / mats[i][row][c].evaluate(point).denominator * f[c] for c in range(r))
            scale = max(abs(lhs), max(abs(v) for v in f), mpmath.mpf(1e-30))
            assert abs(lhs - rhs) / scale < tol, (i, row, lhs, rhs)


ERF = mpmath.erf


@pytest.mark.parametrize("name,s", [("sin", SIN), ("erf", ERF), ("relu", lambda u: max(u, 0)),
                                    ("gelu", lambda u: u * mpmath.ncdf(u)),
                                    ("resin", lambda u: mpmath.sin(u) if u > 0 else 0),
                                    ("resin_u2", lambda u: mpmath.sin(u) if u > 0 else 0)])
def test_numeric_on_the_plane_x12_zero(name, s):
    """At x12 = 0 all moments are products of 1-D moments (mpmath quadrature)."""
    system = derived(name)
    point = (Fraction(-1), Fraction(0), Fraction(-3, 2))
    with mpmath.workdps(25):
        cache: dict = {}

        def m1(a, t):
            if (a, t) not in cache:
                cache[(a, t)] = _moment_1d(s, a, mpmath.mpf(t.numerator) / t.denominator)
            return cache[(a, t)]

        f, df = _f_and_derivatives(system, lambda a, b: m1(a, point[0]) * m1(b, point[2]))
        _check_pf(system, point, f, df, mpmath.mpf(10) ** -15)


def _gauss_hermite_moments(s, point, n=160):
    """M(a, b) at x by Gauss-Hermite quadrature after the substitution (u, v) = C w.

    exp(Q) = exp(-z^T L^-1 z / 2) with L = -x^-1 / 2 = C C^T, so
    M(a, b) = det C * sum_ij W_i W_j (u^a v^b s(u) s(v))(C w_ij).  Exact up to rounding for
    entire s of moderate growth (sin, erf, GeLU); independent of the engine.
    """
    x = np.array([[float(point[0]), float(point[1])], [float(point[1]), float(point[2])]])
    cov = -0.5 * np.linalg.inv(x)
    c = np.linalg.cholesky(cov)
    w, weights = np.polynomial.hermite_e.hermegauss(n)
    w1, w2 = np.meshgrid(w, w, indexing="ij")
    ww = np.outer(weights, weights)
    u = c[0, 0] * w1
    v = c[1, 0] * w1 + c[1, 1] * w2
    base = ww * s(u) * s(v) * np.linalg.det(c)

    def moment(a, b):
        return mpmath.mpf(float(np.sum(base * u**a * v**b)))

    return moment


NUMPY_ACTS = {
    "sin": np.sin,
    "erf": scipy.special.erf,
    "gelu": lambda u: u * scipy.special.ndtr(u),
    "gelu_full": lambda u: u * scipy.special.ndtr(u),
}


@pytest.mark.parametrize("name", sorted(NUMPY_ACTS))
@pytest.mark.parametrize("point", [(Fraction(-1), Fraction(1, 3), Fraction(-3, 4)),
                                   (Fraction(-2, 3), Fraction(-1, 2), Fraction(-1, 2))])
def test_numeric_two_dimensional_quadrature(name, point):
    """At x12 != 0: 2-D Gauss-Hermite quadrature of the moments and derivative integrals."""
    system = derived(name)
    moment = _gauss_hermite_moments(NUMPY_ACTS[name], point)
    f, df = _f_and_derivatives(system, moment)
    _check_pf(system, point, f, df, mpmath.mpf(10) ** -9)


def _quadrant_moments(f, point, n=240, top=16.0):
    """M(a, b) of Y(u) f(u) Y(v) f(v): Gauss-Legendre on [0, top]^2 (tail below 1e-30)."""
    x11, x12, x22 = (float(p) for p in point)
    t, wt = np.polynomial.legendre.leggauss(n)
    t = (t + 1) * top / 2
    wt = wt * top / 2
    u, v = np.meshgrid(t, t, indexing="ij")
    base = np.outer(wt, wt) * f(u) * f(v) * np.exp(x11 * u * u + 2 * x12 * u * v + x22 * v * v)

    def moment(a, b):
        return mpmath.mpf(float(np.sum(base * u**a * v**b)))

    return moment


@pytest.mark.parametrize("name", ["resin", "resin_u2", "relu"])
def test_numeric_two_dimensional_quadrant(name):
    """Rectified activations Y(u) f(u) at x12 != 0 by 2-D Gauss-Legendre quadrature."""
    f = {"resin": np.sin, "resin_u2": np.sin, "relu": lambda u: u}[name]
    system = derived(name)
    for point in [(Fraction(-1), Fraction(1, 3), Fraction(-3, 4)),
                  (Fraction(-2, 3), Fraction(-1, 2), Fraction(-1, 2))]:
        f_vals, df = _f_and_derivatives(system, _quadrant_moments(f, point))
        _check_pf(system, point, f_vals, df, mpmath.mpf(10) ** -9)


def test_numeric_check_is_discriminating():
    """The numeric check fails for the wrong system (erf data against sin integrals)."""
    point = (Fraction(-1), Fraction(0), Fraction(-3, 2))
    system = derived("erf")
    with mpmath.workdps(20):
        f, df = _f_and_derivatives(
            system, lambda a, b: _moment_1d(SIN, a, mpmath.mpf(-1)) * _moment_1d(SIN, b, -1.5))
        with pytest.raises(AssertionError):
            _check_pf(system, point, f, df, mpmath.mpf(10) ** -10)


# --------------------------------------------------------------- mixed pairs
def test_mixed_pair_relu_step():
    s = derive_pfaffian(ann("relu"), ann("step"))
    assert s.rank == 2
    check_integrability(s)
    with mpmath.workdps(20):
        point = (Fraction(-1), Fraction(0), Fraction(-1, 2))

        def m(a, t, k):
            return mpmath.quad(lambda u: u ** (a + k) * mpmath.exp(t * u * u), [0, mpmath.inf])

        f, df = _f_and_derivatives(s, lambda a, b: m(a, -1, 1) * m(b, mpmath.mpf(-0.5), 0))
        _check_pf(s, point, f, df, mpmath.mpf(10) ** -15)


# ------------------------------------------------------- Groebner/ideal routes
def test_from_groebner_basis_relu_ideal():
    gb = [parse_operator(XD, t) for t in
          ["2*x11*d11 + x12*d12 + 2", "x12*d12 + 2*x22*d22 + 2", "4*d11*d22 - d12^2"]]
    s = pfaffian_from_groebner_basis(gb)
    assert s.standard_monomials == [(0, 0, 0), (0, 1, 0)]
    assert exact_matrices(s) == _section4(1)


@pytest.mark.parametrize("name", ["erf", "resin", pytest.param("gelu", marks=pytest.mark.slow)])
def test_from_ideal_roundtrip(name):
    s = derived(name)
    again = pfaffian_from_ideal(s.ideal)
    assert again.standard_monomials == s.standard_monomials
    assert exact_matrices(again) == exact_matrices(s)


# ------------------------------------------------------------------- errors
def test_zero_function_is_an_error():
    with pytest.raises(DerivationError):
        derive_pfaffian([parse_operator(UD, "1")], ann("relu"))


def test_infinite_rank_ideal_is_an_error():
    with pytest.raises(DerivationError, match="finite"):
        pfaffian_from_ideal([parse_operator(XD, "d11")])


def test_bad_annihilators_are_an_error():
    with pytest.raises(DerivationError):
        derive_pfaffian([], ann("relu"))


def test_progress_is_reported():
    steps: list[str] = []
    derive_pfaffian(ann("relu"), ann("relu"), progress=steps.append)
    assert steps and any("exact pass" in s for s in steps)


# ------------------------------------------------- singular locus vs the domain
@pytest.mark.parametrize("name", ["relu", "step", "sin", "erf", "resin", "resin_u2", "gelu"])
def test_no_denominator_factor_vanishes_on_negative_definite_x(name):
    """The integrator walks inside {x negative definite}; no factor may change sign there."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(20000, 2, 2))
    cov = a @ a.transpose(0, 2, 1) + 1e-4 * np.eye(2)
    cov = cov * np.exp(rng.uniform(-4, 4, size=(20000, 1, 1)))
    x = -0.5 * np.linalg.inv(cov)
    values = [x[:, 0, 0], x[:, 0, 1], x[:, 1, 1]]
    for f in derived(name).factors:
        v = f.evaluate(values)
        assert (v > 0).all() or (v < 0).all(), f"factor {f.to_json()} vanishes in the domain"


# ------------------------------------------------ end to end against closed forms
def _closed_relu(a, b, c):
    t = np.arccos(c / np.sqrt(a * b))
    return np.sqrt(a * b) / (2 * np.pi) * (np.sin(t) + (np.pi - t) * np.cos(t))


CLOSED = {
    "relu": (lambda u: max(u, 0), _closed_relu),
    "erf": (mpmath.erf,
            lambda a, b, c: 2 / np.pi * np.arcsin(2 * c / np.sqrt((1 + 2 * a) * (1 + 2 * b)))),
    "sin": (mpmath.sin, lambda a, b, c: np.exp(-(a + b) / 2) * np.sinh(c)),
}


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_integrated_system_matches_closed_form(name):
    """Integrate dF = P F from x0 = (-1, 0, -1) and compare sqrt(det x)/pi Ehat."""
    from scipy.integrate import solve_ivp

    s, closed = CLOSED[name]
    system = derived(name)
    with mpmath.workdps(20):
        def m(k):
            return mpmath.quad(lambda u: u**k * s(u) * mpmath.exp(-u * u),
                               [-mpmath.inf, 0, mpmath.inf])

        f0 = [float(2**j * m(2 * i + j) * m(2 * k + j)) for i, j, k in system.standard_monomials]
    ps = system.to_pfaffian_system(["-1", "0", "-1"], [repr(v) for v in f0])
    x0 = np.array([-1.0, 0.0, -1.0])
    for a, b, c in [(1.0, 1.0, 0.3), (0.5, 2.0, -0.6), (3.0, 0.2, 0.7)]:
        cov = np.array([[a, c], [c, b]])
        xm = -0.5 * np.linalg.inv(cov)
        x1 = np.array([xm[0, 0], xm[0, 1], xm[1, 1]])

        def rhs(t, y, x1=x1):
            mats = ps.matrices_at([np.array([v]) for v in x0 + t * (x1 - x0)])
            return sum(dx * p[0] for dx, p in zip(x1 - x0, mats, strict=True)) @ y

        sol = solve_ivp(rhs, (0.0, 1.0), f0, method="DOP853", rtol=1e-12, atol=1e-14)
        det = x1[0] * x1[2] - x1[1] ** 2
        value = np.sqrt(det) / np.pi * sol.y[0, -1]
        assert value == pytest.approx(closed(a, b, c), rel=1e-9, abs=1e-12)


def test_timeout_is_a_derivation_error():
    big = [parse_operator(UD, "d^4 + u*d^2 + 1")]  # rank 16, several seconds
    with pytest.raises(DerivationError, match="timed out"):
        derive_pfaffian(big, big, timeout=0.2)
