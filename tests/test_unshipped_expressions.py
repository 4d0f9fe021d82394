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


def test_dirac_split_of_derivatives():
    from hgmntk.expressions import dirac_split

    assert dirac_split("-sin(u)*Heaviside(u) + DiracDelta(u)") == (
        "-sin(u)*Heaviside(u)",
        ((1.0, 0.0),),
    )
    # delta(k (u - t)) = delta(u - t) / |k|; f(u) delta(u - p) = f(p) delta(u - p)
    assert dirac_split("2*DiracDelta(u - 1) - 3*DiracDelta(1 - 2*u) + exp(u)") == (
        "exp(u)",
        ((-1.5, 0.5), (2.0, 1.0)),
    )
    assert dirac_split("u*DiracDelta(u) + cos(u)*DiracDelta(u)") == ("0", ((1.0, 0.0),))
    assert dirac_split("DiracDelta(u**2 - 1)") is None


@pytest.mark.parametrize("depth", [1, 2])
def test_kernels_of_a_derived_jump_activation(depth):
    """Heaviside(u) cos(u) jumps at 0: its NNGP is finite everywhere, its NTK is inf exactly
    on the diagonal (E[s's'] of the Dirac term) and finite elsewhere.  Depth 1 is checked
    against the quadrature reference of the duals (NNGP = w^2 E[s s] + b^2 and NTK = NNGP +
    Sigma_0 w^2 E[s' s']), depth 2 against the recursion on those references."""
    expr, w, bias = "Heaviside(u)*cos(u)", 1.3, 0.2
    x = np.array([[0.3, -0.8], [1.1, 0.4], [-0.5, 0.9]])
    layers = hgmntk.kernel_layers(x, activation=expr, depth=depth, w_std=w, b_std=bias)
    n = len(x)
    sigma = w**2 * (x @ x.T) / x.shape[1] + bias**2
    ntk = sigma.copy()
    for k in layers:
        assert np.all(np.isfinite(k.nngp))
        assert np.all(np.isinf(np.diag(k.ntk))) and np.all(np.diag(k.ntk) > 0)
        new_sigma, new_ntk = np.empty_like(sigma), np.full_like(sigma, np.inf)
        for i in range(n):
            for j in range(n):
                a, b, c = sigma[i, i], sigma[j, j], sigma[i, j]
                if i == j:
                    new_sigma[i, i] = w**2 * _gauss(lambda t: _rcos(t) ** 2, a) + bias**2
                    continue
                new_sigma[i, j] = w**2 * _reference(CASES[expr], a, b, c, False) + bias**2
                dot = w**2 * _reference(CASES[expr], a, b, c, True)
                new_ntk[i, j] = new_sigma[i, j] + ntk[i, j] * dot
        sigma, ntk = new_sigma, new_ntk
        np.testing.assert_allclose(k.nngp, sigma, rtol=1e-10, atol=0)
        off = ~np.eye(n, dtype=bool)
        np.testing.assert_allclose(k.ntk[off], ntk[off], rtol=1e-10, atol=0)


def test_collinear_derivative_dual_of_a_jump():
    """E[s'(u) s'(v)] on a singular covariance: inf where the deltas meet (rho = +-1 with a
    jump at 0); a jump away from 0 meets its mirror image only at rho = 1."""
    rcos = "Heaviside(u)*cos(u)"
    assert hgmntk.dual(rcos, 1.0, 2.0, math.sqrt(2.0), derivative=True) == math.inf
    assert hgmntk.dual(rcos, 1.0, 2.0, -math.sqrt(2.0), derivative=True) == math.inf
    from hgmntk.collinear import collinear_values
    from hgmntk.expressions import quadrature_activation

    # s = Y(u - 1) + Y(u) sin(u) (no system: the collinear values alone): s' = delta(u - 1) +
    # g with g = Y(u) cos(u) + delta(u) * 0; the deltas meet only when sqrt(a) = sqrt(b)
    shifted = quadrature_activation("Heaviside(u - 1) + Heaviside(u)*sin(u)")
    assert "DiracDelta(u - 1)" in shifted.derivative
    assert collinear_values(shifted, "dsds", 1.0, 1.0, 1.0) == math.inf
    # a = 1, b = 4, rho = 1: u = U, v = 2U; delta(U - 1) delta(2U - 1) never meet, so
    # E[s's'] = E[g(U) g(2U)] + g(2) phi(1) + g(1/2) phi(1/2) / 2
    g = lambda t: math.cos(t) if t > 0 else 0.0  # noqa: E731
    ref = _quad(lambda z: _phi(z) * g(z) * g(2 * z), [0.0]) + g(2.0) * _phi(1.0)
    ref += g(0.5) * _phi(0.5) / 2
    got = collinear_values(shifted, "dsds", 1.0, 4.0, 1.0)
    assert got == pytest.approx(ref, rel=1e-12)
    # rho = -1: v = -2U; g(U) g(-2U) = 0 (supports U > 0 and U < 0), delta(U - 1) meets
    # g(-2) = 0 and delta(-2U - 1) sits at U = -1/2 where g(U) = 0: every term vanishes
    assert collinear_values(shifted, "dsds", 1.0, 4.0, -1.0) == 0.0
    # a zero variance puts a delta at u = 0 on every sample: a clear error, not a number
    with pytest.raises(hgmntk.NotApplicableError, match="zero variance"):
        collinear_values(quadrature_activation("Heaviside(u)"), "dsds", 0.0, 1.0, 1.0)
