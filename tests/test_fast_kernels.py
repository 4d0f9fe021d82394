"""The fast path of the deep kernels (float64 blocks, extended-precision redo, careful path)
against an independent mpmath recursion of the arc-cosine kernels.

The data mix generic points with every hard case of the recursion: exact duplicates,
near-duplicates (1e-8 apart), collinear and anti-collinear points, near-anti-collinear
points, and pairs whose dot product cancels (x.x' ~ 0).  Every entry of NNGP and NTK, at
every depth, must agree to 1e-12 relative.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import hgmntk
from hgmntk import block_kernels
from tests.conftest import mp_kernels as mp_recursion

TOL = 1e-12
# name -> (n, alpha, beta): s(u) = alpha u^n Y(u) + beta (-u)^n Y(-u)
FAMILY = {
    "relu": (1, 1, 0),
    "step": (0, 1, 0),
    "abs": (1, 1, 1),
    "leaky_relu": (1, 1, mpmath.mpf(-1) / 10),
    "relu2": (2, 1, 0),
    "relu3": (3, 1, 0),
}


def _j(n, t):
    pi, s, c = mpmath.pi, mpmath.sin(t), mpmath.cos(t)
    return [
        pi - t,
        s + (pi - t) * c,
        3 * s * c + (pi - t) * (1 + 2 * c**2),
        4 * s + 11 * s * c**2 + (pi - t) * (6 * c**3 + 9 * c),
    ][n]


def _dual(n, al, be, a, b, c):
    """E[s s] of the family in mpmath (n = -1: the delta term of s' for n = 0)."""
    det = a * b - c * c
    if n == -1:
        return (al - be) ** 2 / (2 * mpmath.pi * mpmath.sqrt(det)) if det > 0 else mpmath.inf
    t = mpmath.atan2(mpmath.sqrt(max(det, 0)), c)
    bracket = (al**2 + be**2) * _j(n, t) + 2 * al * be * _j(n, mpmath.pi - t)
    return (a * b) ** (mpmath.mpf(n) / 2) * bracket / (2 * mpmath.pi)


def mp_kernels(X, name, depth, w_std, b_std, dps=130):
    """[(NNGP, NTK)] of depths 1..depth by the arc-cosine recursion at ``dps`` digits."""
    n, al, be = FAMILY[name]
    dn, dal, dbe = (n - 1, n * al, -n * be) if n else (-1, al, be)
    return mp_recursion(X, lambda a, b, c: _dual(n, al, be, a, b, c),
                        lambda a, b, c: _dual(dn, dal, dbe, a, b, c), depth, w_std, b_std, dps)


def hard_points(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((14, 4))
    step = np.zeros(4)
    step[2] = 1e-8
    ortho = base[1] - (base[1] @ base[0]) / (base[0] @ base[0]) * base[0]  # x.x' ~ 0
    return np.vstack([
        base,
        base[0], base[1] + step,  # duplicate, near-duplicate
        2.5 * base[2], -0.5 * base[3],  # collinear, anti-collinear
        -base[4] + 10 * step,  # nearly anti-collinear
        ortho,
    ])


@pytest.mark.parametrize("name", list(FAMILY))
@pytest.mark.parametrize("w_std,b_std", [(1.5, 0.1), (1.0, 0.0)])
def test_fast_path_matches_mpmath(name, w_std, b_std):
    X = hard_points()
    layers = hgmntk.kernel_layers(X, activation=name, depth=3, w_std=w_std, b_std=b_std)
    ref = mp_kernels(X, name, 3, w_std, b_std)
    for k, (r_nngp, r_ntk) in zip(layers, ref):
        for got, want in ((k.nngp, r_nngp), (k.ntk, r_ntk)):
            inf = np.isinf(want)
            assert np.array_equal(np.isinf(got), inf), (name, k.depth)
            # exact zeros (anti-collinear relu pairs without bias) come out of the
            # 130-digit reference as rounding noise
            scale = np.where(np.abs(want) < 1e-100, 1e-100, np.abs(want))
            rel = np.abs(got[~inf] - want[~inf]) / scale[~inf]
            assert rel.max() <= TOL, (name, k.depth, rel.max())


def test_every_tier_gives_the_same_kernels(monkeypatch):
    """Sending every entry past the float64 tier (to the extended-precision redo and, where
    that fails its tests, the careful path), then every entry to the careful path, changes
    no entry by more than rounding."""
    X = hard_points(1)

    def run():
        return hgmntk.kernels(X, activation="leaky_relu", depth=3, w_std=1.4, b_std=0.2)

    fast = run()
    monkeypatch.setattr(block_kernels, "EPS64", 1.0)  # float64 bounds fail, longdouble's not
    extended = run()
    monkeypatch.setattr(block_kernels, "REL_TARGET", 0.0)  # every entry on the careful path
    careful = run()
    for other in (extended, careful):
        np.testing.assert_allclose(fast.nngp, other.nngp, rtol=1e-13, atol=0)
        np.testing.assert_allclose(fast.ntk, other.ntk, rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "gelu"])
def test_small_blocks_tile_the_whole_matrix(monkeypatch, name):
    """Blocks of 7 rows by 9 columns (strips cut into chunks, the symmetric kernel's upper
    triangle mirrored; ragged edges) give the one-block kernels: exactly symmetric, equal
    to rounding, and the cross kernel's blocks cover every entry."""
    X = np.vstack([hard_points(3), np.random.default_rng(4).standard_normal((23, 4))])
    whole = hgmntk.kernels(X, activation=name, depth=3, b_std=0.1)
    cross_whole = hgmntk.kernels(X[:17], X[17:], activation=name, depth=3, b_std=0.1)
    monkeypatch.setattr(block_kernels, "TILE_ROWS", 7)
    monkeypatch.setattr(block_kernels, "BLOCK_ENTRIES", 63)
    assert len(block_kernels._tiles(X.shape[0], X.shape[0], True)) > 10
    tiled = hgmntk.kernels(X, activation=name, depth=3, b_std=0.1)
    cross = hgmntk.kernels(X[:17], X[17:], activation=name, depth=3, b_std=0.1)
    for got, want in ((tiled, whole), (cross, cross_whole)):
        for a, b in ((got.nngp, want.nngp), (got.ntk, want.ntk)):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    assert np.array_equal(tiled.nngp, tiled.nngp.T) and np.array_equal(tiled.ntk, tiled.ntk.T)


def test_cross_kernels_use_the_fast_path_too():
    X = hard_points(2)
    full = hgmntk.kernels(X, activation="relu3", depth=2, b_std=0.3)
    cross = hgmntk.kernels(X[:9], X[9:], activation="relu3", depth=2, b_std=0.3)
    np.testing.assert_allclose(cross.ntk, full.ntk[:9, 9:], rtol=1e-13)
    np.testing.assert_allclose(cross.nngp, full.nngp[:9, 9:], rtol=1e-13)


@pytest.mark.parametrize("name", ["relu", "abs", "leaky_relu"])
def test_angle_table_of_the_hgm_matches_the_closed_form(name):
    """The HGM's block evaluator for homogeneous duals (a Chebyshev table of the angle
    function) agrees with the arc-cosine closed form wherever it vouches for a value."""
    from hgmntk.dual_activation import get_activation
    from hgmntk.integrator import PairBlock
    from hgmntk.plugins.builtin_integrators import angle_evaluator

    act = get_activation(name)
    rho = np.linspace(-1, 1, 2001)[1:-1]
    sa, sb = np.full(rho.shape, 1.3), np.full(rho.shape, 0.7)
    for key in ("ss", "dsds"):
        table = angle_evaluator(act, key)
        assert table is not None
        block = PairBlock(sa, sb, rho)
        got, err, _ = table(block)
        want, _, _ = act.closed_forms[key].block(PairBlock(sa, sb, rho))
        ok = np.isfinite(err)
        assert ok.mean() > 0.8
        bound = np.maximum(2 * err[ok], 1e-14 * np.abs(want[ok]))
        assert np.all(np.abs(got[ok] - want[ok]) <= bound), (key, ok.mean())


def _erf_kernels(X, depth, w_std, b_std, dps=50):
    """[(NNGP, NTK)] of erf networks by its closed forms in mpmath:
    E = (2/pi) asin(2c / sqrt((1+2a)(1+2b))), E' = (4/pi) / sqrt((1+2a)(1+2b) - 4c^2)."""
    def ss(a, b, c):
        return 2 / mpmath.pi * mpmath.asin(2 * c / mpmath.sqrt((1 + 2 * a) * (1 + 2 * b)))

    def dsds(a, b, c):
        return 4 / mpmath.pi / mpmath.sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * c**2)

    return mp_recursion(X, ss, dsds, depth, w_std, b_std, dps)


def test_erf_kernels_through_cancelling_layers():
    """erf networks with a small bias: W^2 E + b^2 cancels for some pairs (E < 0), which
    magnifies the float64 Hermite coefficients' rounding; the longdouble expansion keeps
    every entry, the cancelling ones included, within 1e-12 of the closed-form recursion,
    with few pairs left to the careful path."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 10))
    layers = hgmntk.kernel_layers(X, activation="erf", depth=3, w_std=1.5, b_std=0.05)
    ref = _erf_kernels(X, 3, 1.5, 0.05)
    for k, (nngp, ntk) in zip(layers, ref):
        for got, want in ((k.nngp, nngp), (k.ntk, ntk)):
            assert np.max(np.abs(got - want) / np.abs(want)) <= TOL, k.depth
    smallest = np.min(np.abs(ref[-1][0]) / np.max(np.abs(ref[-1][0])))
    assert smallest < 1e-4  # the data do hold a cancelling pair
    if np.finfo(np.longdouble).eps < np.finfo(float).eps:
        assert layers[-1].careful_pairs <= 2


def test_compiled_recursion_repeats_the_numpy_expressions_bitwise():
    """The compiled float64 loops (hgmntk.fused) against the numpy expressions they
    replace, on one block: every layer's Sigma and NTK bitwise, the same marked entries,
    with bounds that are infinite or NaN somewhere, or a missing slope (all marked)."""
    rng = np.random.default_rng(3)
    n, m = 7, 11
    sa = [rng.uniform(0.5, 2, (n, 1)) for _ in range(3)]
    sb = [rng.uniform(0.5, 2, (1, m)) for _ in range(3)]
    sigma = rng.uniform(-1, 1, (n, m)) * sa[0] * sb[0]
    sigma[0, 0] = 2 * sa[0][0, 0] * sb[0][0, 0]  # beyond rho = 1: clipped
    err = np.abs(rng.standard_normal((n, m))) * 1e-16

    def evaluator(layer, missing_slope):
        def evaluate(block, rows, cols, key):
            value = np.sin(3 * block.rho) * block.sab + 0.01 * layer
            bound = 1e-16 * np.abs(value) + (1e-13 if layer == 2 else 0.0)
            if key == "ss":
                bound = bound.copy()
                bound[1, 2] = np.inf
                return value, bound, None
            slope = None if missing_slope and layer == 1 else np.abs(np.cos(block.rho))
            bound = bound.copy()
            bound[2, 3] = np.nan
            return np.cos(block.rho), bound, slope
        return evaluate

    for rho_absolute, missing_slope in ((True, False), (False, False), (True, True)):
        layers = [evaluator(h, missing_slope) for h in range(3)]
        got = {}
        for name, run in (("fused", block_kernels._fused_recursion),
                          ("numpy", block_kernels._array_recursion)):
            kept: list = []

            def emit(h, s, k, kept=kept):
                kept.append((s.copy(), k.copy()))

            flag = run(sigma.copy(), err.copy(), sa, sb, layers, layers, 2.25, 0.0025, emit,
                       slice(0, n), slice(0, m), None, rho_absolute)
            got[name] = flag, kept
        assert np.array_equal(got["fused"][0], got["numpy"][0])
        assert got["fused"][0].any() and (missing_slope or not got["fused"][0].all())
        for (s1, k1), (s2, k2) in zip(got["fused"][1], got["numpy"][1]):
            assert np.array_equal(s1, s2) and np.array_equal(k1, k2)


def test_compiled_block_writer_mirrors_symmetric_outputs():
    """fused.write_block: a block off the diagonal lands with its transpose; one on the
    diagonal (c0 == r0) fills the square from its upper triangle only."""
    from hgmntk import fused

    mat = np.full((6, 6), np.nan)
    values = np.arange(12.0).reshape(3, 4)
    fused.write_block(mat, values, 0, 2, True)
    assert np.array_equal(mat[0:3, 2:6], values) and np.array_equal(mat[2:6, 0:3], values.T)
    square = np.arange(9.0).reshape(3, 3)
    mat = np.full((3, 3), np.nan)
    fused.write_block(mat, square, 0, 0, True)
    upper = np.triu(square)
    assert np.array_equal(mat, upper + np.triu(square, 1).T)
    plain = np.full((3, 4), np.nan)
    fused.write_block(plain, values, 0, 0, False)
    assert np.array_equal(plain, values)


@pytest.mark.parametrize("rho_absolute", [True, False])
def test_compiled_layer_steps_match_the_numpy_steps_with_their_bounds(rho_absolute):
    """fused.correlations / fused.layer_update against block_kernels.array_correlations /
    array_update on random data with NaN and infinite inputs: values and bounds bitwise,
    so the compiled path marks exactly the entries the numpy one would."""
    from hgmntk import fused

    rng = np.random.default_rng(5)
    n, m = 9, 13
    sa, sb = rng.uniform(0.1, 3, (n, 1)), rng.uniform(0.1, 3, (1, m))
    sigma = rng.uniform(-1.2, 1.2, (n, m)) * sa * sb
    sa[4, 0] = 0.0  # a zero variance: 0/0 and x/0 as numpy gives them, no exception
    sigma[4, :3] = sigma[5, :] = 0.0
    err = np.abs(rng.standard_normal((n, m))) * 1e-15
    err[0, 1] = np.inf
    eps = float(np.finfo(float).eps)
    want = block_kernels.array_correlations(sigma, err, sa, sb, eps, rho_absolute)
    got = fused.correlations(sigma, err, sa, sb, eps, rho_absolute)
    for x, y in zip(got, want):
        assert np.array_equal(x, y, equal_nan=True)
    arrays = [rng.standard_normal((n, m)) for _ in range(7)]
    ntk, ntk_err, e, err_e, de, err_d, slope = arrays
    ntk_err, err_e, err_d, slope = (np.abs(x) * 1e-14 for x in (ntk_err, err_e, err_d, slope))
    err_d[2, 2], err_e[3, 4] = np.nan, np.inf
    for has_slope in (True, False):
        want = block_kernels.array_update(err, ntk, ntk_err, e, err_e, de, err_d,
                                          slope if has_slope else None, 2.25, 0.01, eps)
        flag = np.zeros((n, m), dtype=bool)
        got = fused.layer_update(err, ntk, ntk_err, e, err_e, de, err_d, slope, has_slope,
                                 2.25, 0.01, eps, block_kernels.REL_TARGET, True, flag)
        for x, y in zip(got, want):
            assert np.array_equal(x, y, equal_nan=True)
        bad = ~(want[1] <= block_kernels.REL_TARGET * np.abs(want[0]))
        bad |= ~(want[3] <= block_kernels.REL_TARGET * np.abs(want[2]))
        assert np.array_equal(flag, bad) and bad.any()
        assert not bad.all() or not has_slope


def test_compiled_pair_dot2_matches_the_vectorised_dot2():
    """fused.pair_dot2 gathers the pairs itself and gives Dot2's hi + lo bitwise (the
    same error-free operations), and the norms' products to rounding."""
    from hgmntk import fused
    from hgmntk.covariance import dot2

    rng = np.random.default_rng(8)
    x1, x2 = rng.standard_normal((20, 7)), rng.standard_normal((15, 7))
    x2[3] = x1[4] * (1 + 1e-12)  # a near-duplicate
    x2[5] -= (x2[5] @ x1[6]) / (x1[6] @ x1[6]) * x1[6]  # nearly orthogonal to x1[6]
    i, j = rng.integers(0, 20, 50), rng.integers(0, 15, 50)
    i[:2], j[:2] = [4, 6], [3, 5]
    hi, lo, norms = fused.pair_dot2(x1, x2, i, j)
    want_hi, want_lo = dot2(x1[i], x2[j])
    assert np.array_equal(hi, want_hi) and np.array_equal(lo, want_lo)
    want = np.linalg.norm(x1[i], axis=1) * np.linalg.norm(x2[j], axis=1)
    assert np.allclose(norms, want, rtol=1e-14, atol=0)


def test_compiled_first_layer_matches_its_numpy_expression():
    """fused.first_layer: Sigma_0 = (W^2/d) x.x' + b^2 and its rounding bound, bitwise the
    numpy expressions it replaced."""
    from hgmntk import fused

    rng = np.random.default_rng(9)
    x1, x2 = rng.standard_normal((6, 4)), rng.standard_normal((5, 4))
    n1, n2 = np.linalg.norm(x1, axis=1), np.linalg.norm(x2, axis=1)
    w2d, b2, growth = 2.25 / 4, 0.0025, 1 + np.sqrt(4) / 4
    eps = np.finfo(float).eps
    sigma, err = fused.first_layer(x1 @ x2.T, n1, n2, w2d, b2, growth, eps)
    assert np.array_equal(sigma, w2d * (x1 @ x2.T) + b2)
    assert np.array_equal(err, eps * (w2d * growth * np.outer(n1, n2) + b2))
