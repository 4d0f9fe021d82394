"""Finite-width networks (hgmntk.empirical_kernels) against the Jacobian and the limit.

* The structured NTK formula equals J J^T of the network's output with respect to all its
  parameters, the Jacobian taken here by Richardson-extrapolated central differences of
  an independent forward pass written in this file (width 32, depth 2), to 1e-10.
* The empirical kernels converge to hgmntk.kernels like width^(-1/2): the fitted slope of
  the relative Frobenius distance against the width (64..8192, mean over 3 seeds) is
  -0.5 +- 0.1 for relu, erf and resin.
"""

from __future__ import annotations

import numpy as np
import pytest

import hgmntk
from hgmntk.dual_activation import get_activation
from hgmntk.errors import InvalidInputError

W_STD, B_STD = 1.3, 0.2


def _parameters(d: int, width: int, depth: int, seed: int) -> list[np.ndarray]:
    """The initialisation empirical_kernels draws: per layer W (fan_in x width) and beta,
    then the read-out weights, plus a read-out bias (any value: f's gradient in it is
    b_std whatever it is)."""
    rng = np.random.default_rng(seed)
    params, fan_in = [], d
    for _ in range(depth):
        params += [rng.standard_normal((fan_in, width)), rng.standard_normal(width)]
        fan_in = width
    return params + [rng.standard_normal(width), np.array([0.3])]


def _forward(params: list[np.ndarray], x: np.ndarray, s) -> np.ndarray:
    """f(x) for each row of x: the network of the module docstring, written out."""
    a = x
    for w, beta in zip(params[:-2:2], params[1:-2:2]):
        a = s(a @ w * (W_STD / np.sqrt(a.shape[1])) + B_STD * beta)
    return a @ params[-2] * (W_STD / np.sqrt(a.shape[1])) + B_STD * params[-1][0]


def _jacobian(params, x, s, h=1e-4) -> np.ndarray:
    """df(x_i)/dp for every parameter p: central differences at h and h/2, extrapolated
    (error O(h^4))."""
    columns = []
    for p in params:
        for index in np.ndindex(p.shape):
            def diff(step, p=p, index=index):
                keep = p[index]
                p[index] = keep + step
                up = _forward(params, x, s)
                p[index] = keep - step
                down = _forward(params, x, s)
                p[index] = keep
                return (up - down) / (2 * step)

            columns.append((4 * diff(h / 2) - diff(h)) / 3)
    return np.stack(columns, axis=1)


def _smallest_preactivation(params, x, s) -> float:
    a, smallest = x, np.inf
    for w, beta in zip(params[:-2:2], params[1:-2:2]):
        h = a @ w * (W_STD / np.sqrt(a.shape[1])) + B_STD * beta
        smallest = min(smallest, float(np.min(np.abs(h))))
        a = s(h)
    return smallest


@pytest.mark.parametrize("name", ["erf", "gelu", "relu", "Heaviside(u)*sin(u) + u/3"])
def test_structured_ntk_equals_the_jacobian_gram(name):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3))
    width, depth = 32, 2
    s = get_activation(name).numeric_functions["s"]
    # the first seed whose pre-activations all keep 1e-3 from the kink at 0 (the
    # differences move them by at most ~2e-4), so that s is smooth where it is sampled
    seed = next(k for k in range(100)
                if _smallest_preactivation(_parameters(3, width, depth, k), x, s) > 1e-3)
    params = _parameters(3, width, depth, seed)
    jac = _jacobian(params, x, s)
    k = hgmntk.empirical_kernels(x, activation=name, depth=depth, width=width,
                                 w_std=W_STD, b_std=B_STD, seed=seed)
    assert k.ntk == pytest.approx(jac @ jac.T, rel=1e-10, abs=1e-10 * np.abs(k.ntk).max())
    a = x
    for w, beta in zip(params[:-2:2], params[1:-2:2]):
        a = s(a @ w * (W_STD / np.sqrt(a.shape[1])) + B_STD * beta)
    nngp = W_STD**2 * (a @ a.T) / width + B_STD**2
    assert k.nngp == pytest.approx(nngp, rel=1e-13)
    # x2: the cross kernel is the block of the joint one
    k12 = hgmntk.empirical_kernels(x[:2], x[2:], activation=name, depth=depth, width=width,
                                   w_std=W_STD, b_std=B_STD, seed=seed)
    assert k12.ntk == pytest.approx(k.ntk[:2, 2:], rel=1e-13)


@pytest.mark.parametrize("name", ["relu", "erf", "resin"])
def test_converges_like_inverse_square_root_of_width(name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 5))
    exact = hgmntk.kernels(x, activation=name, depth=2, w_std=W_STD, b_std=B_STD)
    widths = 2 ** np.arange(6, 14)
    for kind in ("nngp", "ntk"):
        ref = getattr(exact, kind)
        distance = [np.mean([
            np.linalg.norm(getattr(hgmntk.empirical_kernels(
                x, activation=name, depth=2, width=int(w), w_std=W_STD, b_std=B_STD,
                seed=seed), kind) - ref) / np.linalg.norm(ref)
            for seed in range(3)]) for w in widths]
        slope = np.polyfit(np.log(widths), np.log(distance), 1)[0]
        assert -0.6 <= slope <= -0.4, (kind, slope, distance)


def test_bad_input_is_a_clear_error():
    x = np.ones((3, 2))
    with pytest.raises(InvalidInputError, match="Dirac delta"):
        hgmntk.empirical_kernels(x, activation="step", depth=1, width=8)
    for bad in ({"width": 0}, {"depth": 0}, {"width": 2.5}, {"w_std": -1.0}):
        args = {"activation": "relu", "depth": 1, "width": 8, **bad}
        with pytest.raises(InvalidInputError):
            hgmntk.empirical_kernels(x, **args)
    with pytest.raises(InvalidInputError):
        hgmntk.empirical_kernels(np.array([[np.nan, 1.0]]), activation="relu", depth=1,
                                 width=8)


def test_cli_writes_the_same_kernels(tmp_path):
    from hgmntk.cli import main

    x = np.random.default_rng(3).standard_normal((6, 4))
    np.save(tmp_path / "x.npy", x)
    code = main(["empirical", "--x1", str(tmp_path / "x.npy"), "--activation", "gelu",
                 "--depth", "2", "--width", "48", "--seed", "5", "--w-std", "1.2",
                 "--out", str(tmp_path / "e.npz")])
    assert code == 0
    k = hgmntk.empirical_kernels(x, activation="gelu", depth=2, width=48, seed=5, w_std=1.2)
    with np.load(tmp_path / "e.npz") as saved:
        assert np.array_equal(saved["ntk"], k.ntk) and np.array_equal(saved["nngp"], k.nngp)
