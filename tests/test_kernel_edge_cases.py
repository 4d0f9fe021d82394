"""Degenerate and nearly degenerate inputs against an independent mpmath recursion.

The reference is the arc-cosine recursion of Cho and Saul (2009) evaluated at 60 digits:
it shares no code with hgmntk.  Naive float64 loses half the digits on near-duplicates
(1 - rho ~ 1e-17 is below double resolution) and gives NaN on collinear pairs.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import hgmntk

TOL = 1e-12


def mp_relu_kernels(X, depth, w_std, b_std, dps=60):
    """NNGP and NTK of a ReLU network (neural-tangents convention) in mpmath."""
    with mpmath.workdps(dps):
        n, d = X.shape
        xs = [[mpmath.mpf(float(v)) for v in row] for row in X]
        w2, b2 = mpmath.mpf(w_std) ** 2, mpmath.mpf(b_std) ** 2
        sig = [
            [w2 * mpmath.fsum(p * q for p, q in zip(xs[i], xs[j])) / d + b2 for j in range(n)]
            for i in range(n)
        ]
        ntk = [row[:] for row in sig]
        for _ in range(depth):
            new = [[None] * n for _ in range(n)]
            dot = [[None] * n for _ in range(n)]
            for i in range(n):
                for j in range(n):
                    a, b, c = sig[i][i], sig[j][j], sig[i][j]
                    r = c / mpmath.sqrt(a * b)
                    r = min(max(r, mpmath.mpf(-1)), mpmath.mpf(1))
                    t = mpmath.acos(r)
                    e = (
                        mpmath.sqrt(a * b)
                        / (2 * mpmath.pi)
                        * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t))
                    )
                    new[i][j] = w2 * e + b2
                    dot[i][j] = w2 * (mpmath.pi - t) / (2 * mpmath.pi)
            ntk = [[new[i][j] + ntk[i][j] * dot[i][j] for j in range(n)] for i in range(n)]
            sig = new
        to = lambda m: np.array([[float(v) for v in row] for row in m])  # noqa: E731
        return to(sig), to(ntk)


def _points(kind: str) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 4))
    if kind == "duplicates":
        return np.vstack([base, base[:2]])
    if kind == "near-duplicates":
        step = np.zeros(4)
        step[1] = 1e-8
        return np.vstack([base, base[0] + step, base[1] - 3 * step])
    if kind == "collinear":
        return np.vstack([base, 2 * base[0], -0.5 * base[1]])
    if kind == "sphere":
        return base / np.linalg.norm(base, axis=1, keepdims=True)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["duplicates", "near-duplicates", "collinear", "sphere"])
@pytest.mark.parametrize("w_std,b_std", [(1.0, 0.0), (1.5, 0.1)])
@pytest.mark.parametrize("method", ["closed", "hgm"])
def test_relu_degenerate_inputs(kind, w_std, b_std, method):
    X = _points(kind)
    depth = 3
    k = hgmntk.kernels(X, activation="relu", depth=depth, w_std=w_std, b_std=b_std, method=method)
    ref_nngp, ref_ntk = mp_relu_kernels(X, depth, w_std, b_std)
    for got, ref in ((k.nngp, ref_nngp), (k.ntk, ref_ntk)):
        assert np.all(np.isfinite(got))
        rel = np.abs(got - ref) / np.abs(ref)
        assert rel.max() <= TOL, (kind, rel.max())


def test_cross_kernel_equals_symmetric_blocks():
    X = _points("near-duplicates")
    full = hgmntk.kernels(X, activation="relu", depth=2, b_std=0.2)
    cross = hgmntk.kernels(X[:3], X[3:], activation="relu", depth=2, b_std=0.2)
    np.testing.assert_allclose(cross.ntk, full.ntk[:3, 3:], rtol=1e-14)
    np.testing.assert_allclose(cross.nngp, full.nngp[:3, 3:], rtol=1e-14)


def test_step_ntk_diagonal_is_infinite_but_off_diagonal_finite():
    X = _points("sphere")
    k = hgmntk.kernels(X, activation="step", depth=2, b_std=0.1)
    assert np.all(np.isinf(np.diag(k.ntk)))
    off = k.ntk[~np.eye(len(X), dtype=bool)]
    assert np.all(np.isfinite(off))
    assert np.all(np.isfinite(k.nngp))


def test_dual_at_zero_correlation_by_hgm():
    """rho = 0 exactly (the angle ODE has nothing to integrate): E = E[s(u)] E[s(v)], for
    gelu a b / (2 pi sqrt((1 + a)(1 + b))) by Stein's lemma."""
    a, b = np.array([1.0, 0.5]), np.array([2.0, 0.5])
    got = hgmntk.dual("gelu", a, b, np.zeros(2), method="hgm")
    want = a * b / (2 * np.pi * np.sqrt((1 + a) * (1 + b)))
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_overflowing_kernel_is_a_clear_error():
    """exp's second layer at W_std 1.5: E[e^(2u)] = e^(2 Sigma_1) with Sigma_1 ~ 4e5 is
    beyond float64 -- a clear error, not an OverflowError from deep inside."""
    from hgmntk.errors import IntegrationError

    X = np.random.default_rng(0).standard_normal((6, 10)) * 3
    with pytest.raises(IntegrationError, match="overflows float64 at layer"):
        hgmntk.kernels(X, activation="exp", depth=2, w_std=1.5, b_std=0.05)


@pytest.mark.parametrize("activation", ["relu", "step", "erf", "gelu", "resin"])
def test_kernel_diagonal_is_the_diagonal_of_the_kernels(activation):
    """hgmntk.kernel_diagonal gives bitwise the diagonal of hgmntk.kernels (regression's
    predictive variances use it instead of the whole test kernel)."""
    x = np.random.default_rng(4).standard_normal((25, 3))
    k = hgmntk.kernels(x, activation=activation, depth=3, w_std=1.4, b_std=0.3)
    nngp, ntk = hgmntk.kernel_diagonal(x, activation=activation, depth=3, w_std=1.4,
                                       b_std=0.3)
    assert np.array_equal(nngp, np.diag(k.nngp)) and np.array_equal(ntk, np.diag(k.ntk))
