"""Finite-width networks: the empirical NNGP and NTK of one randomly initialised MLP.

The network is the one whose infinite-width kernels :func:`hgmntk.kernels` computes
(neural-tangents' ``stax.serial(Dense(W, b), act, ..., act, Dense(W, b))``, NTK
parameterization, one output), at a finite ``width``:

    h^1 = (W_std / sqrt(d)) W^1 x + b_std beta^1,
    h^(l+1) = (W_std / sqrt(n)) W^(l+1) s(h^l) + b_std beta^(l+1),   l = 1..depth,

with every entry of W^l and beta^l drawn from N(0, 1) (``seed``), f(x) = h^(depth+1).

* Empirical NNGP: the read-out layer's kernel for these features,
  W_std^2 s(h^L(x)) . s(h^L(x')) / n + b_std^2 (L = depth), whose mean over the
  initialisation tends to Sigma_L.
* Empirical NTK: J(x) . J(x') over all parameters (the W^l and beta^l entries), by the
  layer-wise structured formula instead of materialising Jacobians:

      NTK(x, x') = sum_l (delta^l(x) . delta^l(x')) (W_std^2 a^(l-1)(x) . a^(l-1)(x') / n_(l-1)
                                                      + b_std^2),

  where a^0 = x (n_0 = d), a^l = s(h^l), delta^(L+1) = 1 and
  delta^l = s'(h^l) * (W_std / sqrt(n_l)) W^(l+1)^T delta^(l+1) (backpropagation), since
  df/dW^l_ij = delta^l_i (W_std / sqrt(n_(l-1))) a^(l-1)_j and df/dbeta^l_i = b_std delta^l_i.

Both converge to the exact kernels like width^(-1/2).
"""

from __future__ import annotations

import numpy as np

from .deep_kernels import Kernels, check_inputs
from .dual_activation import get_activation
from .errors import InvalidInputError


def _numeric(activation) -> tuple:
    """(s, s') as NumPy callables, or a clear error."""
    act = get_activation(activation, "gauss-hermite")
    funcs = act.numeric_functions
    if "s" not in funcs:
        raise InvalidInputError(
            f"activation {act.name!r} has no numeric expression to evaluate at finite width")
    if "ds" not in funcs:
        text = act.derivative or "none"
        raise InvalidInputError(
            f"the empirical NTK of {act.name!r} needs s'(u) as a function, but s' = {text}"
            " (a Dirac delta where s jumps has no finite-width gradient): use "
            "hgmntk.kernels for its infinite-width NTK, or an activation without jumps")
    return act, funcs["s"], funcs["ds"]


def empirical_kernels(
    x1,
    x2=None,
    *,
    activation,
    depth: int,
    width: int,
    w_std: float = 1.0,
    b_std: float = 0.0,
    seed: int = 0,
) -> Kernels:
    """The empirical NNGP and NTK of one MLP of ``width`` hidden units per layer, drawn
    with ``seed`` (see the module docstring for the network and the formulas).

    Parameters
    ----------
    x1 : array (n1, d);  x2 : array (n2, d) or None (then x2 = x1)
    activation : registered name, family member or SymPy expression (numeric s and s')
    depth : hidden layers (>= 1);  width : units per hidden layer (>= 1)
    w_std, b_std : weight and bias standard deviations (NTK parameterization)
    seed : seed of numpy's default generator for the initialisation

    Returns
    -------
    Kernels with ``.nngp`` and ``.ntk`` of shape (n1, n2), to compare with
    ``hgmntk.kernels(x1, x2, activation=..., depth=..., w_std=..., b_std=...)``.
    """
    act, s, ds = _numeric(activation)
    x1 = check_inputs(x1, "x1")
    x2 = x1 if x2 is None else check_inputs(x2, "x2")
    if x1.shape[1] != x2.shape[1]:
        raise InvalidInputError(f"x1 has {x1.shape[1]} features, x2 {x2.shape[1]}")
    for name, value, low in (("depth", depth, 1), ("width", width, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, value in (("w_std", w_std), ("b_std", b_std)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
            raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
    rng = np.random.default_rng(seed)
    n1 = x1.shape[0]
    x = np.concatenate([x1, x2]) if x2 is not x1 else x1
    fan_in = x.shape[1]
    a = x  # a^(l-1), one row per input
    grams, masks, weights = [], [], []
    with np.errstate(all="ignore"):
        for _ in range(depth):
            w = rng.standard_normal((fan_in, width))
            beta = rng.standard_normal(width)
            grams.append(_gram(a, n1, x2 is x1) * (w_std**2 / fan_in) + b_std**2)
            h = a @ w * (w_std / np.sqrt(fan_in)) + b_std * beta
            masks.append(ds(h))
            weights.append(w)
            a, fan_in = s(h), width
        w_out = rng.standard_normal(width)
        nngp = _gram(a, n1, x2 is x1) * (w_std**2 / width) + b_std**2
        # backpropagation of one output: delta^(L+1) = 1, layer by layer downwards
        ntk = nngp.copy()
        delta = np.broadcast_to(w_out * (w_std / np.sqrt(width)), a.shape) * masks[-1]
        for layer in range(depth - 1, -1, -1):
            ntk += _gram(delta, n1, x2 is x1) * grams[layer]
            if layer:
                back = delta @ weights[layer].T * (w_std / np.sqrt(width))
                delta = back * masks[layer - 1]
    if not (np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))):
        raise InvalidInputError(
            f"the empirical kernels of {act.name!r} overflow float64 at this width and "
            "these inputs (the activations' values grow beyond 1e308): smaller inputs or "
            "weight variances")
    return Kernels(nngp, ntk, act.name, depth, float(w_std), float(b_std),
                   f"empirical (width {width}, seed {seed})")


def _gram(rows: np.ndarray, n1: int, symmetric: bool) -> np.ndarray:
    """rows[:n1] . rows[n1:]^T (or rows . rows^T for one set of inputs)."""
    if symmetric:
        return rows @ rows.T
    return rows[:n1] @ rows[n1:].T
