"""Activations that no file ships: derived from the expression alone, checked by quadrature.

The reference is an independent two-dimensional quadrature: with u = sqrt(a) z1 and
v = (c / sqrt(a)) z1 + sqrt(b - c^2 / a) z2 for independent standard normals z1, z2,
E[f(u) g(v)] = int phi(z1) f(sqrt(a) z1) int phi(z2) g(mu + sigma z2) dz2 dz1, split at the
points where f or g jump (adaptive QUADPACK at relative 1e-12, independent of the HGM and of
the engine; itself checked against two closed forms).

For the derivative dual, s' = g + J delta(u) with g the derivative away from 0 and J the
jump of s at 0 (Heaviside(u) cos(u): g = -Heaviside(u) sin(u), J = 1), so

    E[s'(u) s'(v)] = E[g(u) g(v)] + J (E[delta(u) g(v)] + E[g(u) delta(v)]) + J^2 E[delta delta],

with E[delta(u) g(v)] = E[g(V)] / sqrt(2 pi a) for V ~ N(0, b - c^2/a) (v given u = 0) and
E[delta(u) delta(v)] = 1 / (2 pi sqrt(ab - c^2)), each a quadrature of its own.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate

import hgmntk

TOL = 1e-10


def _rcos(u):
    return math.cos(u) if u > 0 else 0.0


def _rcos_d(u):
    return -math.sin(u) if u > 0 else 0.0


def _gsin(u):
    return math.exp(-u * u) * math.sin(u)


def _gsin_d(u):
    return math.exp(-u * u) * (math.cos(u) - 2 * u * math.sin(u))


def _sq_erf(u):
    return u * u + math.erf(u)


def _sq_erf_d(u):
    return 2 * u + 2 / math.sqrt(math.pi) * math.exp(-u * u)


#: expression: (s, g = s' away from 0, jump of s at 0)
CASES = {
    "Heaviside(u)*cos(u)": (_rcos, _rcos_d, 1),
    "exp(-u**2)*sin(u)": (_gsin, _gsin_d, 0),
    "u**2 + erf(u)": (_sq_erf, _sq_erf_d, 0),
}
POINTS = [(1.0, 1.0, 0.3), (0.5, 2.0, -0.6), (3.0, 0.25, 0.8), (1.0, 1.0, -0.99)]
#: standard normal mass beyond |z| = 12 is 4e-33
Z = 12.0


def _quad(f, cuts) -> float:
    """int_{-Z}^{Z} f, adaptive (QUADPACK), split at the given points (relative 1e-12).

    QUADPACK's round-off warning (raised where the integrand's tail is below rounding) is
    silenced: the closed-form test below measures the accuracy instead.
    """
    pts = [-Z, *sorted(c for c in set(cuts) if -Z < c < Z), Z]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return sum(
            integrate.quad(f, lo, hi, epsabs=1e-300, epsrel=1e-12, limit=200)[0]
            for lo, hi in zip(pts[:-1], pts[1:])
        )


def _phi(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _expectation(f, a, b, c) -> float:
    """E[f(u) f(v)] by nested quadrature, split where the Gaussians peak and where u = 0 or
    v = 0 (f may jump there)."""
    sa = math.sqrt(a)
    sigma = math.sqrt(b - c * c / a)

    def inner(z1):
        mu = c / sa * z1
        return _quad(lambda z2: _phi(z2) * f(mu + sigma * z2), [0.0, -mu / sigma])

    return _quad(lambda z1: _phi(z1) * f(sa * z1) * inner(z1), [0.0])


def _gauss(f, var) -> float:
    """E[f(V)], V ~ N(0, var)."""
    sd = math.sqrt(var)
    return _quad(lambda z: _phi(z) * f(sd * z), [0.0])


def _reference(case, a, b, c, derivative: bool) -> float:
    s, g, jump = case
    if not derivative:
        return _expectation(s, a, b, c)
    value = _expectation(g, a, b, c)
    if jump:
        value += jump * _gauss(g, b - c * c / a) / math.sqrt(2 * math.pi * a)
        value += jump * _gauss(g, a - c * c / b) / math.sqrt(2 * math.pi * b)
        value += jump**2 / (2 * math.pi * math.sqrt(a * b - c * c))
    return value


def test_reference_quadrature_against_closed_form():
    """The quadrature itself: E[(u^2 + erf u)(v^2 + erf v)] = ab + 2c^2 +
    (2/pi) arcsin(2c / sqrt((1 + 2a)(1 + 2b))), and E[Y(u) Y(v)] = 1/4 + arcsin(rho)/(2 pi)."""
    for a, b, c in POINTS:
        exact = (
            a * b
            + 2 * c * c
            + 2 / math.pi * math.asin(2 * c / math.sqrt((1 + 2 * a) * (1 + 2 * b)))
        )
        assert _reference(CASES["u**2 + erf(u)"], a, b, c, False) == pytest.approx(exact, rel=1e-11)
        step = _expectation(lambda u: 1.0 if u > 0 else 0.0, a, b, c)
        assert step == pytest.approx(
            0.25 + math.asin(c / math.sqrt(a * b)) / (2 * math.pi), rel=1e-12
        )


@pytest.mark.parametrize("expr", list(CASES))
@pytest.mark.parametrize("derivative", [False, True])
def test_derived_from_expression_matches_quadrature(expr, derivative):
    a, b, c = (np.array(v) for v in zip(*POINTS))
    got = hgmntk.dual(expr, a, b, c, derivative=derivative, method="hgm")
    for i, (ai, bi, ci) in enumerate(POINTS):
        ref = _reference(CASES[expr], ai, bi, ci, derivative)
        assert abs(got[i] - ref) <= TOL * abs(ref), (expr, derivative, POINTS[i], got[i], ref)
