"""Property-based tests of the dual at every magnitude (hypothesis).

The profile "ci" (the default, registered in conftest.py) is derandomised and sized to the
CI budget; run a longer search with HYPOTHESIS_PROFILE=long.  Variances range over
1e-300 .. 1e300 and the correlation over [-1, 1]: each property must hold, or the call must
end in a clear hgmntk error (a covariance that is not positive semidefinite, a finite value
beyond float64), never in a foreign exception, a RuntimeWarning, a NaN or a silent inf.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import hgmntk
from hgmntk.errors import ValueOverflowError

#: name: degree of positive homogeneity of s (E(la a, mu b, sqrt(la mu) c) scales by
#: (la mu)^(k/2)); the derivative dual has degree k - 1.
HOMOGENEOUS = {"relu": 1, "step": 0, "abs": 1, "leaky_relu": 1, "relu2": 2, "relu3": 3}

variances = st.builds(
    lambda m, e: m * 10.0**e,
    st.floats(1.0, 9.99),
    st.integers(-300, 299),
)
correlations = st.one_of(
    st.floats(-1.0, 1.0),
    st.sampled_from([-1.0, 1.0, 0.0, 1 - 1e-12, -1 + 1e-12, 1 - 2**-52]),
)


def _dual(*args, **kwargs):
    """The dual with warnings as errors: a RuntimeWarning reaching the user fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return hgmntk.dual(*args, **kwargs)


@given(st.sampled_from(sorted(HOMOGENEOUS)), st.booleans(), variances, variances, correlations)
def test_value_or_clear_error_symmetric_and_bounded(name, derivative, a, b, rho):
    c = rho * math.sqrt(a) * math.sqrt(b)
    try:
        value = _dual(name, a, b, c, derivative=derivative)
    except ValueOverflowError:
        return  # a finite value beyond float64, said so
    except hgmntk.CovarianceError:
        assert abs(c) > math.sqrt(a) * math.sqrt(b) * (1 - 1e-15)  # rho rounded past +-1
        return
    assert not math.isnan(value)
    if math.isinf(value):  # only a delta meeting a delta: E[s's'] of the step at rho = +-1
        assert name == "step" and derivative
        return
    swapped = _dual(name, b, a, c, derivative=derivative)
    assert swapped == pytest.approx(value, rel=1e-13, abs=0)
    try:
        e_aa = _dual(name, a, a, a, derivative=derivative)
        e_bb = _dual(name, b, b, b, derivative=derivative)
    except ValueOverflowError:
        return
    if e_aa == 0 or e_bb == 0:  # underflowed below 5e-324 (then so did the value's scale)
        return
    assert abs(value) <= math.sqrt(e_aa) * math.sqrt(e_bb) * (1 + 1e-13)


@given(st.sampled_from(sorted(HOMOGENEOUS)), st.booleans(), variances, variances,
       correlations, st.integers(-150, 150), st.integers(-150, 150))
def test_scaling_identity_of_homogeneous_activations(name, derivative, a, b, rho, m, n):
    """E(4^m a, 4^n b, 2^(m+n) c) = 2^(k (m+n)) E(a, b, c) (k - 1 for s'): the scaled
    covariance is exact (powers of two), so the identity holds to rounding at any rho."""
    k = HOMOGENEOUS[name] - (1 if derivative else 0)
    c = rho * math.sqrt(a) * math.sqrt(b)
    try:
        sa, sb, sc = math.ldexp(a, 2 * m), math.ldexp(b, 2 * n), math.ldexp(c, m + n)
    except OverflowError:
        return
    assume(all(math.isfinite(v) and (v == 0) == (w == 0) for v, w in
               ((sa, a), (sb, b), (sc, c))))
    assume(min(sa, sb) > 1e-300 and min(a, b) > 1e-300)  # no subnormal rounding
    try:
        value = _dual(name, a, b, c, derivative=derivative)
        scaled = _dual(name, sa, sb, sc, derivative=derivative)
    except (ValueOverflowError, hgmntk.CovarianceError):
        return
    if math.isfinite(value) and 0 < abs(value) < 2.3e-308:
        return  # a subnormal value holds fewer digits (relu2 at a b = 1e-310: 2.5e-311)
    try:
        expected = math.ldexp(value, k * (m + n)) if math.isfinite(value) else value
    except OverflowError:
        return
    if math.isinf(expected) or expected == 0 or abs(expected) < 1e-300:
        return
    assert scaled == pytest.approx(expected, rel=1e-14, abs=0)


@settings(max_examples=15)
@given(st.sampled_from(["relu", "step", "relu2"]), variances, variances,
       st.floats(-0.99, 0.99))
def test_hgm_agrees_with_the_closed_form_at_any_magnitude(name, a, b, rho):
    c = rho * math.sqrt(a) * math.sqrt(b)
    try:
        closed = _dual(name, a, b, c, method="closed")
    except ValueOverflowError:
        return
    assume(math.isfinite(closed) and closed != 0)
    hgm = _dual(name, a, b, c, method="hgm")
    assert hgm == pytest.approx(closed, rel=1e-11)


def test_the_issue_reproducers_give_values():
    """Values from 60-digit arcsine formulas (relu, E[delta delta] of the step)."""
    import mpmath

    mpmath.mp.dps = 60
    a, b, c = (mpmath.mpf(v) for v in (1e160, 1e160, -9.99999e159))
    t = mpmath.acos(c / mpmath.sqrt(a * b))
    relu = mpmath.sqrt(a * b) / (2 * mpmath.pi) * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t))
    assert _dual("relu", 1e160, 1e160, -9.99999e159) == pytest.approx(float(relu), rel=1e-13)
    a, b, c = (mpmath.mpf(v) for v in (5e-324, 1.0, 2.2227587494850772e-162))
    step = 1 / (2 * mpmath.pi * mpmath.sqrt(a * b - c * c))
    got = _dual("step", 5e-324, 1.0, 2.2227587494850772e-162, derivative=True)
    assert got == pytest.approx(float(step), rel=1e-10)
    assert _dual("relu", 1e154, 1.0, -1e77) == pytest.approx(3.1995202809382062e51, rel=1e-13)
    with pytest.raises(ValueOverflowError, match="exceeds float64"):
        _dual("relu3", 1e300, 1e300, 0.5e300)
    assert np.isinf(_dual("step", 1.0, 1.0, 1.0, derivative=True))


@settings(max_examples=25)
@given(st.sampled_from(["relu", "abs", "step", "relu2", "erf", "gelu"]), st.integers(-70, 70),
       st.integers(1, 3), st.sampled_from([0.0, 0.1]), st.floats(0.5, 2.0),
       st.integers(0, 2**32 - 1))
def test_kernels_symmetric_psd_and_diagonal_or_a_clear_error(name, exponent, depth, b_std,
                                                            w_std, seed):
    """At input scales 1e-70 .. 1e70: the kernels are symmetric, positive semidefinite to
    rounding, with K(x, x) equal to the kernel of x alone; or a clear hgmntk error (a
    variance outside the supported range, an overflowing E[s^2]); never a warning."""
    x = np.random.default_rng(seed).standard_normal((7, 3)) * 10.0**exponent
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            k = hgmntk.kernels(x, activation=name, depth=depth, w_std=w_std, b_std=b_std)
            single = hgmntk.kernels(x[2:3], activation=name, depth=depth, w_std=w_std,
                                    b_std=b_std)
    except (hgmntk.InvalidInputError, hgmntk.IntegrationError) as exc:
        assert "outside the range" in str(exc) or "overflow" in str(exc)
        return
    for m in (k.nngp, k.ntk):
        assert np.array_equal(m, m.T)
        finite = np.where(np.isfinite(m), m, 0.0)
        if np.all(np.isfinite(m)):
            scale = np.max(np.abs(finite))
            assert np.min(np.linalg.eigvalsh(finite / scale)) >= -1e-10
    assert k.nngp[2, 2] == pytest.approx(single.nngp[0, 0], rel=1e-14)
    assert k.ntk[2, 2] == pytest.approx(single.ntk[0, 0], rel=1e-14) or (
        np.isinf(k.ntk[2, 2]) and np.isinf(single.ntk[0, 0])
    )


@given(st.integers(-100, 100), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_relu_kernels_scale_exactly_with_the_inputs(m, depth, seed):
    """relu without bias is positively homogeneous of degree 1: K(2^m X) = 4^m K(X)."""
    x = np.random.default_rng(seed).standard_normal((5, 4))
    k = hgmntk.kernels(x, activation="relu", depth=depth)
    scaled = hgmntk.kernels(np.ldexp(x, m), activation="relu", depth=depth)
    np.testing.assert_allclose(scaled.nngp, np.ldexp(k.nngp, 2 * m), rtol=1e-14, atol=0)
    np.testing.assert_allclose(scaled.ntk, np.ldexp(k.ntk, 2 * m), rtol=1e-14, atol=0)


#: activations with closed forms that are not positively homogeneous
SMOOTH = ["erf", "gelu", "sin", "cos", "gauss", "exp", "erf(a=0.5, b=2.0, c=0.1)",
          "polynomial(coef=[0.1, 1.0, 0.5])", "Rbf(gamma=0.5)", "gaussian(b=-1.0)"]


@given(st.sampled_from(SMOOTH), st.booleans(), variances, variances, correlations)
def test_smooth_closed_forms_value_or_clear_error(name, derivative, a, b, rho):
    """Closed forms of non-homogeneous activations at every magnitude: a value within
    Cauchy-Schwarz's bound, or a clear error (variances outside 1e-150..1e150, a value
    beyond float64); never NaN, a RuntimeWarning or a silent inf."""
    c = rho * math.sqrt(a) * math.sqrt(b)
    try:
        value = _dual(name, a, b, c, derivative=derivative)
    except ValueOverflowError:
        return
    except hgmntk.CovarianceError:
        assert abs(c) > math.sqrt(a) * math.sqrt(b) * (1 - 1e-15)
        return
    except hgmntk.IntegrationError as exc:
        assert "variances within 1e-150..1e+150" in str(exc)
        assert not (1e-150 <= min(a, b) and max(a, b) <= 1e150)
        return
    assert math.isfinite(value)
    e_aa = _dual(name, a, a, a, derivative=derivative)
    e_bb = _dual(name, b, b, b, derivative=derivative)
    assert abs(value) <= math.sqrt(e_aa) * math.sqrt(e_bb) * (1 + 1e-13) + 1e-300


@pytest.mark.parametrize("a, b, rho", [(1e120, 3e119, 0.4), (1e-140, 4e-141, -0.7),
                                       (1e100, 1e-100, 0.9)])
def test_gelu_and_erf_at_extreme_variances_against_mpmath(a, b, rho):
    """The closed forms hold their digits at variances far from 1 (the textbook formulas
    in 50-digit mpmath)."""
    import mpmath as mp

    c = rho * math.sqrt(a) * math.sqrt(b)
    with mp.workdps(50):
        A, B, C = mp.mpf(a), mp.mpf(b), mp.mpf(c)
        d = mp.sqrt((A + 1) * (B + 1) - C * C)
        gelu = ((C * C + A * B * d * d) / ((A + 1) * (B + 1) * d) + C * mp.atan(C / d)) / (
            2 * mp.pi) + C / 4
        erf = 2 / mp.pi * mp.asin(2 * C / mp.sqrt((1 + 2 * A) * (1 + 2 * B)))
    assert _dual("gelu", a, b, c) == pytest.approx(float(gelu), rel=1e-13)
    assert _dual("erf", a, b, c) == pytest.approx(float(erf), rel=1e-13)


@settings(max_examples=25)
@given(st.sampled_from(["exp", "gauss"]), st.one_of(st.just(0.0), st.floats(1e-4, 700.0)),
       st.floats(1e-4, 1400.0), st.sampled_from([1.0, -1.0]))
def test_collinear_values_at_large_variances_against_closed_forms(name, a, b, sign):
    """At rho = +-1 (and a = 0) the dual is a 1-D Gaussian integral (hgmntk.collinear),
    which a quadrature over (-inf, 0, inf) missed by 6e-5 at b = 1400 (the peak of
    exp(sqrt(b) z - z^2/2) at z = 37): E[exp(U sqrt a) exp(+-U sqrt b)] =
    exp((sqrt a +- sqrt b)^2 / 2) and E[g(U sqrt a) g(+-U sqrt b)] = (1 + a + b)^(-1/2) for
    g(u) = exp(-u^2/2), in 40-digit mpmath; a value beyond float64 is a clear error."""
    import mpmath as mp

    c = sign * math.sqrt(a) * math.sqrt(b)
    with mp.workdps(40):
        A, B = mp.mpf(a), mp.mpf(b)
        if name == "exp":
            want = mp.exp((mp.sqrt(A) + sign * mp.sqrt(B)) ** 2 / 2)
        else:
            want = 1 / mp.sqrt(1 + A + B)
    try:
        got = _dual(name, a, b, c, method="hgm")
    except ValueOverflowError:
        assert want > 1.7e308
        return
    assert got == pytest.approx(float(want), rel=1e-12)
