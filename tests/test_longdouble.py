"""Long-double activations (the extended tier of Mehler's expansion) against mpmath."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from hgmntk.longdouble import erf_ld, erfc_ld, lambdify_longdouble

LD = np.longdouble
EPS = float(np.finfo(LD).eps)
pytestmark = pytest.mark.skipif(EPS >= 2.2e-16, reason="longdouble is float64 here")


def exact(v) -> mpmath.mpf:
    """The exact value of a longdouble (two float64 parts)."""
    v = LD(v)
    hi = float(v)
    return mpmath.mpf(hi) + mpmath.mpf(float(v - LD(hi)))


def worst(values, got, ref) -> float:
    with mpmath.workdps(40):
        return max(float(abs(exact(g) - ref(exact(x))) / abs(ref(exact(x))))
                   for x, g in zip(values, got)) / EPS


def test_erf_and_erfc_to_a_few_units_of_the_roundoff():
    x = np.concatenate([np.linspace(-9, 9, 721), np.geomspace(1e-25, 2, 40)]).astype(LD)
    x = x + LD(1) / 3000  # off the float64 grid
    assert worst(x, erf_ld(x), mpmath.erf) < 16
    big = np.linspace(-1, 12, 300).astype(LD) + LD(1) / 7
    # relative, erfc down to 1e-64 (1 - erf below x = 1.5 loses up to ~30x)
    assert worst(big, erfc_ld(big), mpmath.erfc) < 256


def test_lambdify_longdouble_keeps_constants_in_longdouble():
    """gelu's 1/2 and sqrt(2) enter as longdouble constants: the value is long-double
    accurate where the expression does not cancel."""
    gelu = lambdify_longdouble("u*(1 + erf(u/sqrt(2)))/2")
    x = np.array([0.3, 1.0, 2.5], dtype=LD) + LD(1) / 3000
    got = gelu(x)
    assert got.dtype == LD
    with mpmath.workdps(40):
        for xi, gi in zip(x, got):
            u = exact(xi)
            want = u * (1 + mpmath.erf(u / mpmath.sqrt(2))) / 2
            assert abs(exact(gi) - want) <= 8 * EPS * abs(want)


def test_lambdify_longdouble_refuses_what_it_cannot_evaluate():
    assert lambdify_longdouble("Heaviside(u)*u") is None
    assert lambdify_longdouble("Max(0, u)") is None
    assert lambdify_longdouble("sin(u) + exp(-u**2)") is not None
