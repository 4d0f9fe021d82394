"""The precise HGM path (arbitrary-precision continuation) against closed forms and mpmath."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

import hgmntk
from hgmntk.continuation import consistent_c, continue_to, precise_values
from hgmntk.covariance import Covariances
from hgmntk.dual_activation import get_activation
from hgmntk.errors import IntegrationError


@pytest.fixture(autouse=True)
def _digits():
    with mpmath.workdps(50):
        yield


def _mp(x) -> mpmath.mpf:
    return mpmath.mpf(x.mid().str(45, radius=False))


def _relu_exact(a, b, c) -> mpmath.mpf:
    """E[relu(u) relu(v)] = sqrt(ab) (sin t + (pi - t) cos t) / (2 pi), exact inputs."""
    with mpmath.workdps(50):
        a, b, c = (mpmath.mpf(Fraction(v).numerator) / Fraction(v).denominator for v in (a, b, c))
        t = mpmath.acos(c / mpmath.sqrt(a * b))
        return mpmath.sqrt(a * b) * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t)) / (
            2 * mpmath.pi
        )


@pytest.mark.parametrize(
    "a, b, c",
    [(1.0, 1.0, 0.3), (1e-4, 3.0, -0.0173), (2.0, 0.5, 0.99999999), (100.0, 1.0, -9.99999)],
)
def test_relu_against_closed_form(a, b, c):
    val, err = continue_to(get_activation("relu"), "ss", a, b, c)
    ref = _relu_exact(a, b, c)
    assert abs(_mp(val) - ref) <= 1e-25 * abs(ref)
    assert err <= 1e-20 * abs(float(ref))


def test_sin_at_large_variance():
    # E[sin u sin v] = exp(-(a + b)/2) sinh(c): the float paths lose 1e-8 here
    a = b = 100.0
    c = 90.0
    val, _ = continue_to(get_activation("sin"), "ss", a, b, c)
    with mpmath.workdps(40):
        ref = mpmath.exp(-(a + b) / 2) * mpmath.sinh(c)
        assert abs(_mp(val) - ref) <= 1e-30 * ref


def test_subdominant_value_of_rectified_cube():
    # u^3 Y(u) at rho -> -1: the value is ~1e-17 of the other solutions of the system
    act = get_activation("relu3")
    a, b, c = 1.0, 2.0, -0.99999 * np.sqrt(2.0)
    val, _ = continue_to(act, "ss", a, b, c)
    with mpmath.workdps(40):
        A, B, C = (mpmath.mpf(Fraction(v).numerator) / Fraction(v).denominator for v in (a, b, c))
        r = C / mpmath.sqrt(A * B)
        s = mpmath.sqrt(1 - r * r)
        inner = lambda z1: mpmath.quad(  # noqa: E731
            lambda z2: (r * z1 + s * z2) ** 3 * mpmath.npdf(z2), [-r * z1 / s, mpmath.inf]
        )
        ref = (A * B) ** mpmath.mpf(1.5) * mpmath.quad(
            lambda z1: z1**3 * mpmath.npdf(z1) * inner(z1), [0, mpmath.inf]
        )
    assert abs(_mp(val) - ref) <= 1e-12 * abs(ref)


def test_consistent_c_recomputes_c_from_the_determinant():
    a, b = 3.0, 0.01
    det = 2e-13
    c = consistent_c(a, b, 0.17, det)
    assert abs(Fraction(a) * Fraction(b) - c * c - Fraction(det)) < Fraction(1, 10**45)
    assert consistent_c(a, b, 0.01, 0.03 - 1e-4) == Fraction(0.01)
    assert consistent_c(a, b, -0.17, det) == -c


def test_precise_values_batch_and_dtype():
    cov = Covariances.from_arrays(
        np.array([1.0, 2.0], dtype=np.longdouble),
        np.array([1.0, 0.5], dtype=np.longdouble),
        np.array([0.5, -0.99], dtype=np.longdouble),
    )
    vals, errs = precise_values(get_activation("relu"), "ss", cov, rtol=1e-14,
                                dtype=np.longdouble)
    assert vals.dtype == np.longdouble
    closed = hgmntk.dual("relu", [1.0, 2.0], [1.0, 0.5], [0.5, -0.99], method="closed")
    assert np.allclose(vals.astype(float), closed, rtol=1e-15, atol=0)
    assert np.all(errs < 1e-25)


def test_not_positive_definite_is_refused():
    with pytest.raises(IntegrationError, match="positive definite"):
        continue_to(get_activation("relu"), "ss", 1.0, 1.0, 1.0)


def test_stored_digits_of_initial_values():
    """Short decimals are exact; the shortest long one sets the stored accuracy."""
    from hgmntk.continuation import stored_digits

    assert stored_digits(["0", "2", "0.25"]) == 40
    assert stored_digits(["0", "1." + "0" * 159]) == 160
    assert stored_digits(["-0.025412962185935983151732740092665812262", "1." + "0" * 99]) == 38
    assert stored_digits(["1.2345678901234567890123e-7"]) == 23


def test_amplified_start_vector_is_recomputed_to_the_digits_needed(monkeypatch):
    """rho -> -1 for u^3 Y(u) amplifies the start vector's rounding by ~1e17: with the
    stored values cut to 24 digits the path recomputes them from moments, to the digits
    that amplification needs (one recomputation, not a ladder), and still meets 1e-12."""
    import dataclasses

    import hgmntk.continuation as cont

    act = get_activation("relu3")
    a, b, c = 1.0, 2.0, -0.99999 * np.sqrt(2.0)
    full, _ = continue_to(act, "ss", a, b, c)
    system = act.duals["ss"]
    short = tuple(mpmath.nstr(mpmath.mpf(v), 24, strip_zeros=False) for v in system.initial_values)
    cut = dataclasses.replace(system, initial_values=short)
    monkeypatch.setitem(act.duals, "ss", cut)
    asked = []
    real = cont.base_vector
    monkeypatch.setattr(cont, "base_vector", lambda *a: asked.append(a[2]) or real(*a))
    val, _ = continue_to(act, "ss", a, b, c)
    assert abs(_mp(val) - _mp(full)) <= 1e-14 * abs(_mp(full))
    assert len(asked) == 1 and 24 < asked[0] <= 96, asked


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_march_along_c_reads_every_target(sign):
    """One march along c at fixed (a, b) (Price's nodes: targets given by their accurate
    determinants, c = consistent_c) against the closed forms of relu and step, down to
    det / ab ~ 1e-18, where the step radii need the exactly shifted roots."""
    from hgmntk.continuation import continue_along_c

    a, b = 0.7, 1.3
    angles = [1e-9, 1e-5, 0.01, 0.5, 1.2, 0.01]  # a repeated target too
    cs = [sign * np.sqrt(a * b) * np.cos(t) for t in angles]
    dets = [a * b * np.sin(t) ** 2 for t in angles]
    with mpmath.workdps(60):
        sab = mpmath.sqrt(mpmath.mpf(a) * mpmath.mpf(b))  # the exact product
        for name in ("relu", "step"):
            vals, errs = continue_along_c(get_activation(name), "ss", a, b, cs, dets=dets)
            for c, det, val, err in zip(cs, dets, vals, errs, strict=True):
                exact = consistent_c(a, b, c, det)
                t = mpmath.acos(mpmath.mpf(exact.numerator) / exact.denominator / sab)
                ref = (
                    sab * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t)) / (2 * mpmath.pi)
                    if name == "relu" else (mpmath.pi - t) / (2 * mpmath.pi)
                )
                assert abs(_mp(val) - ref) <= 1e-25 * abs(ref), (name, det)
                assert err <= 1e-20 * abs(float(ref))


def test_precise_values_group_targets_sharing_variances():
    """precise_values sends targets sharing (a, b) and the sign of c to one march, the
    others to their own path; every value meets the closed form."""
    a = np.array([1.0, 1.0, 1.0, 2.0, 1.0])
    b = np.array([3.0, 3.0, 3.0, 0.5, 3.0])
    c = np.array([1.7, 1.2, -1.5, 0.9, 0.0])
    cov = Covariances(a, b, c, a * b - c * c)
    vals, errs = precise_values(get_activation("relu"), "ss", cov, rtol=1e-14)
    for i in range(5):
        ref = _relu_exact(a[i], b[i], c[i])
        assert abs(vals[i] - float(ref)) <= 2e-16 * abs(float(ref)), i
