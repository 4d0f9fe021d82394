"""Long-double matrix products through float64 BLAS against exact rational products."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from hgmntk.ld_matmul import matmul

LD = np.longdouble
EPS_LD = float(np.finfo(LD).eps)


def _exact(x) -> Fraction:
    mantissa, exponent = np.frexp(LD(x))
    return Fraction(int(np.ldexp(mantissa, 64))) * Fraction(2) ** (int(exponent) - 64)


def _operands(rng, shape, spread):
    """Long-double entries with all 64 bits in use, magnitudes over e^(+-spread)."""
    x = rng.standard_normal(shape).astype(LD) * np.exp(rng.uniform(-spread, spread, shape))
    return x + rng.standard_normal(shape).astype(LD) * LD(2) ** -60 * x


@pytest.mark.skipif(EPS_LD >= np.finfo(float).eps, reason="long double is float64 here")
@pytest.mark.parametrize("m,k,n,spread", [(3, 5, 4, 5.0), (6, 70, 5, 3.0), (2, 400, 3, 1.0)])
def test_products_are_exact_to_long_double_rounding(m, k, n, spread):
    rng = np.random.default_rng(k)
    a, b = _operands(rng, (m, k), spread), _operands(rng, (k, n), spread)
    got = matmul(a, b)
    assert got.dtype == LD
    for i in range(m):
        for j in range(n):
            terms = [_exact(a[i, l]) * _exact(b[l, j]) for l in range(k)]
            want, size = sum(terms), sum(abs(t) for t in terms)
            assert abs(_exact(got[i, j]) - want) <= 2 * EPS_LD * size


def test_other_types_and_special_values_keep_numpys_product():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3))
    np.testing.assert_array_equal(matmul(a, b), a @ b)
    bad = a.astype(LD)
    bad[0, 0] = np.inf
    got = matmul(bad, b.astype(LD))
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(bad @ b.astype(LD)))
    zero = np.zeros((3, 6), dtype=LD)
    np.testing.assert_array_equal(matmul(zero, b.astype(LD)), np.zeros((3, 3)))
