"""1-D moments and initial values (hgmntk.cas_bridge.moments)."""

from __future__ import annotations

import mpmath
import pytest
import sympy

from hgmntk.cas_bridge.annihilators import U
from hgmntk.cas_bridge.moments import (
    collinear_constants,
    initial_values,
    moment,
    moment_exact,
)
from hgmntk.errors import DerivationError

u = U
Y = sympy.Heaviside
PI = mpmath.pi


def close(a, b, digits=35):
    with mpmath.workdps(60):
        a, b = mpmath.mpf(a), mpmath.mpf(b)
        return abs(a - b) <= mpmath.mpf(10) ** (-digits) * max(1, abs(b))


@pytest.mark.parametrize("n", [0, 1, 2, 5])
@pytest.mark.parametrize("y", [-1, sympy.Rational(-1, 2), sympy.Rational(-7, 3)])
def test_rectified_monomial_moments_closed_form(n, y):
    # int_0^inf u^(n+k) e^(y u^2) du = Gamma((n+k+1)/2) / (2 (-y)^((n+k+1)/2))
    for k in (0, 1, 3):
        expected = sympy.gamma(sympy.Rational(n + k + 1, 2)) / (2 * (-y) ** sympy.Rational(
            n + k + 1, 2))
        got = moment_exact(u**k * Y(u), n, y)
        assert sympy.simplify(got - expected) == 0
        assert close(moment(u**k * Y(u), n, y), sympy.N(expected, 50))


def test_moments_of_smooth_functions_against_closed_forms():
    with mpmath.workdps(50):
        # int u sin(u) e^(-u^2) du = sqrt(pi)/2 e^(-1/4)
        assert close(moment(sympy.sin(u), 1, -1), mpmath.sqrt(PI) / 2 * mpmath.exp(-0.25))
        # int cos(u) e^(-2 u^2) du = sqrt(pi/2) e^(-1/8)
        assert close(moment(sympy.cos(u), 0, -2),
                     mpmath.sqrt(PI / 2) * mpmath.exp(-mpmath.mpf(1) / 8))
        # int u erf(u) e^(-u^2) du = 1/sqrt(2)
        assert close(moment(sympy.erf(u), 1, -1), 1 / mpmath.sqrt(2))
        # int exp(u) e^(-u^2) du = sqrt(pi) e^(1/4)
        assert close(moment(sympy.exp(u), 0, -1), mpmath.sqrt(PI) * mpmath.exp(0.25))
        # odd integrands vanish
        assert close(moment(sympy.sin(u), 0, -1), 0)


def test_moments_of_kinked_functions_against_mpmath_quadrature():
    with mpmath.workdps(50):
        # ReSin: int_0^inf sin(u) e^(-u^2) du by an independent mpmath quadrature call
        ref = mpmath.quad(lambda t: mpmath.sin(t) * mpmath.exp(-t * t), [0, 2, 5, mpmath.inf])
        assert close(moment(Y(u) * sympy.sin(u), 0, -1), ref)
        # ELU, n = 2
        ref = mpmath.quad(lambda t: t**3 * mpmath.exp(-t * t), [0, mpmath.inf]) + mpmath.quad(
            lambda t: t**2 * (mpmath.exp(t) - 1) * mpmath.exp(-t * t), [-mpmath.inf, 0])
        assert close(moment(u * Y(u) + (sympy.exp(u) - 1) * Y(-u), 2, -1), ref)
        # GeLU, n = 1: int u^2 Phi(u) e^(-u^2) du = sqrt(pi)/4 (the u^2 erf part is odd)
        gelu = u * (1 + sympy.erf(u / sympy.sqrt(2))) / 2
        assert close(moment(gelu, 1, -1), mpmath.sqrt(PI) / 4)


def test_delta_moments():
    assert moment(sympy.DiracDelta(u), 0, -1) == 1
    assert moment(sympy.DiracDelta(u), 3, -1) == 0
    # int u delta'(u) e^{y u^2} du = -1
    assert moment(sympy.DiracDelta(u, 1), 1, -1) == -1


def test_initial_values_relu_step_match_math_md():
    mono = [(0, 0, 0), (0, 1, 0)]
    dec, exact = initial_values(sympy.Max(0, u), sympy.Max(0, u), mono)
    assert exact == ["1/4", "pi/8"]
    assert close(dec[0], "0.25", 39) and close(dec[1], sympy.N(sympy.pi / 8, 50), 39)
    dec, exact = initial_values(Y(u), Y(u), mono)
    assert exact == ["pi/4", "1/2"]
    assert close(dec[0], sympy.N(sympy.pi / 4, 50), 39) and close(dec[1], "0.5", 39)
    assert len(dec[0].replace(".", "").lstrip("0")) >= 40


def test_initial_values_general_monomials_and_mixed_pairs():
    # d11 d22^2 Ehat for s1 = relu, s2 = step at (-2, 0, -1/2)
    dec, exact = initial_values(sympy.Max(0, u), Y(u), [(1, 0, 2), (0, 2, 0)],
                                base_point=("-2", "0", "-1/2"))
    m = lambda k, y: sympy.gamma(sympy.Rational(k + 1, 2)) / (2 * (-y) ** sympy.Rational(k + 1, 2))  # noqa: E731
    y1, y2 = sympy.Integer(-2), sympy.Rational(-1, 2)
    expected = [m(3, y1) * m(4, y2), 4 * m(3, y1) * m(2, y2)]
    for d, e, x in zip(dec, exact, expected, strict=True):
        assert sympy.simplify(sympy.sympify(e) - x) == 0
        assert close(d, sympy.N(x, 50), 38)


def test_initial_values_numeric_path():
    dec, exact = initial_values(Y(u) * sympy.sin(u), Y(u) * sympy.sin(u), [(0, 0, 0)])
    assert exact is None
    with mpmath.workdps(50):
        ref = mpmath.quad(lambda t: mpmath.sin(t) * mpmath.exp(-t * t), [0, 2, 5, mpmath.inf])
        assert close(dec[0], ref**2, 36)


def test_initial_values_reject_bad_base_point():
    with pytest.raises(DerivationError):
        initial_values(Y(u), Y(u), [(0, 0, 0)], base_point=(-1, "1/2", -1))
    with pytest.raises(DerivationError):
        initial_values(Y(u), Y(u), [(0, 0, 0)], base_point=(1, 0, -1))


@pytest.mark.parametrize(
    "s, same, opposite",
    [
        (sympy.Max(0, u), "0.5", "0"),
        (Y(u), "0.5", "0"),
        (sympy.Abs(u), "1", "1"),
        (u * Y(u) + u / 10 * Y(-u), "0.505", "-0.1"),  # (1 + 1/100)/2; s(u)s(-u) = -u^2/10
        (sympy.DiracDelta(u), "inf", "inf"),
        (u**2 * Y(u), "1.5", "0"),
    ],
)
def test_collinear_constants(s, same, opposite):
    got = collinear_constants(s, s)
    for g, e in zip(got, (same, opposite), strict=True):
        if e == "inf":
            assert g == "inf"
        else:
            assert close(g, e, 35)


def test_collinear_constants_delta_against_smooth():
    # E[delta(U) cos(U)] = phi(0) = 1/sqrt(2 pi)
    same, _ = collinear_constants(sympy.DiracDelta(u), sympy.cos(u))
    assert close(same, sympy.N(1 / sympy.sqrt(2 * sympy.pi), 50), 35)
