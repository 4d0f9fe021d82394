"""NNGP and NTK kernels of deep fully connected networks at infinite width.

The convention is neural-tangents' ``stax.serial(Dense(W, b), act, ..., act, Dense(1))``
with ``parameterization="ntk"`` (see the reference README):

    Sigma_0(x, x') = W^2 x.x'/d + b^2,  NTK_0 = Sigma_0,
    Sigma_h = W^2 E[s(u)s(v)] + b^2,  SigmaDot_h = W^2 E[s'(u)s'(v)],
    NTK_h = Sigma_h + NTK_{h-1} SigmaDot_h,   (u, v) ~ N(0, Sigma_{h-1} block at (x, x')).

Every pair carries its determinant det_h = Sigma_h(x,x) Sigma_h(x',x') - Sigma_h(x,x')^2 as a
separate, accurately computed quantity:

    det_0 = W^4/d^2 |x ^ x'|^2 + W^2 b^2/d |x - x'|^2,
    det_h = W^4 (E11 E22 - E12^2) + W^2 b^2 (E11 + E22 - 2 E12),

with the two brackets formed from the distances of E12 to its collinear values (Price's
theorem, :mod:`hgmntk.dual`), never by subtracting nearly equal numbers.  Near-duplicate
inputs therefore keep full accuracy, and exact duplicates or collinear inputs give
det = 0 exactly, where the collinear formulas apply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .activation import Activation
from .collinear import collinear_values
from .covariance import Covariances, affine_covariance, dot2, half_power
from .dual_activation import evaluate_dual, get_activation
from .errors import InvalidInputError


@dataclass(frozen=True)
class Kernels:
    """NNGP and NTK matrices of shape (n1, n2) (and how they were computed)."""

    nngp: np.ndarray
    ntk: np.ndarray
    activation: str
    depth: int
    w_std: float
    b_std: float
    method: str

    def replace(self, **changes) -> Kernels:
        """A copy with some fields changed (the object itself is immutable)."""
        return replace(self, **changes)


def check_inputs(x, name: str) -> np.ndarray:
    """A finite 2-D float array (n, d); clear errors otherwise."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric array: {exc}") from exc
    if arr.ndim == 1:
        raise InvalidInputError(
            f"{name} must be 2-D (n_points, n_features), got shape {arr.shape}; use "
            "x.reshape(1, -1) for one point or x.reshape(-1, 1) for scalar features"
        )
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInputError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InvalidInputError(
            f"{name} contains NaN or infinite values (first at row {i}, column {j}); "
            "clean or impute the data first"
        )
    return arr


def _check_params(depth, w_std, b_std) -> tuple[int, float, float]:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise InvalidInputError(f"depth must be an integer >= 1, got {depth!r}")
    out = []
    for name, v in (("w_std", w_std), ("b_std", b_std)):
        try:
            f = float(v)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name} must be a number, got {v!r}") from exc
        if not np.isfinite(f) or f < 0:
            raise InvalidInputError(f"{name} must be a finite number >= 0, got {v!r}")
        out.append(f)
    return int(depth), out[0], out[1]


def _input_geometry(x1, x2, i, j, w2: float, b2: float, chunk: int = 65536):
    """Layer-0 covariances of pairs (x1[i], x2[j]) in numpy longdouble: (diag1, diag2, c, det).

    x.x' and the squared norms come from compensated dot products (Dot2), so Sigma_0 is
    correct to extended precision; det_0 = W^4/d^2 |x ^ x'|^2 + W^2 b^2/d |x - x'|^2 uses
    cheap formulas where they are accurate and explicit differences / projections for
    near-parallel or near-equal pairs.
    """
    d = x1.shape[1]
    sq1_hi, sq1_lo = dot2(x1, x1)
    sq2_hi, sq2_lo = dot2(x2, x2)
    dot_hi = np.empty(i.size)
    dot_lo = np.empty(i.size)
    for s in range(0, i.size, chunk):
        dot_hi[s : s + chunk], dot_lo[s : s + chunk] = dot2(
            x1[i[s : s + chunk]], x2[j[s : s + chunk]]
        )
    ld = np.longdouble
    sq1 = ld(1) * sq1_hi + sq1_lo
    sq2 = ld(1) * sq2_hi + sq2_lo
    dot = ld(1) * dot_hi + dot_lo
    n1, n2 = sq1[i], sq2[j]
    wedge = n1 * n2 - dot * dot
    dist2 = n1 + n2 - 2 * dot
    risky = (wedge <= 1e-3 * n1 * n2) | (dist2 <= 1e-3 * (n1 + n2))
    idx = np.flatnonzero(risky)
    for s in range(0, idx.size, chunk):
        sel = idx[s : s + chunk]
        x, y = x1[i[sel]].astype(ld), x2[j[sel]].astype(ld)
        diff = x - y
        dist2[sel] = np.einsum("ij,ij->i", diff, diff)
        nx = np.einsum("ij,ij->i", x, x)  # same arithmetic as below: exact zero for y = x
        ny = np.einsum("ij,ij->i", y, y)
        swap = ny > nx
        big = np.where(swap[:, None], y, x)
        small = np.where(swap[:, None], x, y)
        nb = np.where(swap, ny, nx)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = np.where(nb > 0, np.einsum("ij,ij->i", big, small) / nb, 0.0)
        perp = small - alpha[:, None] * big
        wedge[sel] = nb * np.einsum("ij,ij->i", perp, perp)
    diag1 = affine_covariance(w2, b2, sq1_hi, sq1_lo, d)
    diag2 = affine_covariance(w2, b2, sq2_hi, sq2_lo, d)
    c = affine_covariance(w2, b2, dot_hi, dot_lo, d)
    w2l, b2l = ld(w2), ld(b2)
    det = w2l * w2l / (d * d) * np.maximum(wedge, 0) + w2l * b2l / d * dist2
    return diag1, diag2, c, det


def _homogeneous_terms(act: Activation, a, b):
    """For a homogeneous pair: (E11 E22 - E1^2, E11 E22 - Em1^2, E11+E22-2E1, E11+E22-2Em1)."""
    data = act.collinear["ss"]
    k = act.pair_homogeneity("ss")[0]
    e0, ep = data.same, data.opposite
    ak, bk = half_power(a, k), half_power(b, k)
    diff2 = (ak - bk) ** 2
    return (
        np.zeros_like(a),
        (ak * bk) ** 2 * (e0 - ep) * (e0 + ep),
        e0 * diff2,
        e0 * diff2 + 2 * (e0 - ep) * ak * bk,
    )


def _next_det(act, a, b, e11, e22, ss, w2, b2):
    """det of the next layer's covariance for each pair (see module docstring)."""
    values, to_same, to_opp = ss.values, ss.to_same, ss.to_opposite
    e1 = values + to_same
    em1 = values - to_opp
    data = act.collinear.get("ss")
    if data is not None and data.kind == "homogeneous" and act.pair_homogeneity("ss"):
        cs_same, cs_opp, q_same, q_opp = _homogeneous_terms(act, a, b)
    else:
        cs_same, cs_opp = e11 * e22 - e1 * e1, e11 * e22 - em1 * em1
        q_same, q_opp = e11 + e22 - 2 * e1, e11 + e22 - 2 * em1
    near_same = ss.to_same <= np.abs(ss.to_opposite)
    p = np.where(
        near_same,
        cs_same + to_same * (2 * e1 - to_same),
        cs_opp - to_opp * (2 * em1 + to_opp),
    )
    q = np.where(near_same, q_same + 2 * to_same, q_opp - 2 * to_opp)
    return w2 * w2 * np.maximum(p, 0.0) + w2 * b2 * np.maximum(q, 0.0)


def kernels(
    x1,
    x2=None,
    *,
    activation: str | Activation,
    depth: int,
    w_std: float = 1.0,
    b_std: float = 0.0,
    method: str = "auto",
    rtol: float = 1e-12,
    **options,
) -> Kernels:
    """NNGP and NTK of a depth-``depth`` fully connected network at infinite width.

    Parameters
    ----------
    x1 : array (n1, d);  x2 : array (n2, d) or None (then x2 = x1, symmetric output)
    activation : registered name or SymPy expression string (any expression with a
        quadrature method; exact methods derive its Pfaffian system)
    depth : number of hidden layers (>= 1)
    w_std, b_std : weight and bias standard deviations (NTK parameterization)
    method : integrator for the duals ("auto", "closed", "hgm", "gauss-hermite", ...)

    Returns
    -------
    Kernels with ``.nngp`` and ``.ntk`` of shape (n1, n2), exactly neural-tangents'
    ``kernel_fn(x1, x2, ("nngp", "ntk"))`` of ``Dense(W, b), act, ..., act, Dense(W, b)``
    (Sigma_depth already is the read-out layer's kernel), computed without cancellation near
    the diagonal.  :func:`kernel_layers` returns the networks of every depth 1..depth
    from the same recursion.

    Examples
    --------
    >>> import numpy as np, hgmntk
    >>> k = hgmntk.kernels(np.eye(2), activation="relu", depth=1)
    >>> k.nngp.shape
    (2, 2)
    """
    return kernel_layers(
        x1, x2, activation=activation, depth=depth, w_std=w_std, b_std=b_std,
        method=method, rtol=rtol, **options,
    )[-1]


def kernel_layers(
    x1,
    x2=None,
    *,
    activation: str | Activation,
    depth: int,
    w_std: float = 1.0,
    b_std: float = 0.0,
    method: str = "auto",
    rtol: float = 1e-12,
    **options,
) -> list[Kernels]:
    """[kernels(..., depth=1), ..., kernels(..., depth=depth)] from one recursion.

    Layer h of the recursion Sigma_h, NTK_h (see the module docstring) is the output of
    the depth-h network, so a sweep over depths costs no more than the deepest network.

    Examples
    --------
    >>> import numpy as np, hgmntk
    >>> [k.depth for k in hgmntk.kernel_layers(np.eye(2), activation="relu", depth=3)]
    [1, 2, 3]
    """
    act = get_activation(activation, method)
    depth, w_std, b_std = _check_params(depth, w_std, b_std)
    x1 = check_inputs(x1, "x1")
    symmetric = x2 is None
    x2a = x1 if symmetric else check_inputs(x2, "x2")
    if x2a.shape[1] != x1.shape[1]:
        raise InvalidInputError(
            f"x1 has {x1.shape[1]} features but x2 has {x2a.shape[1]}; they must match"
        )
    n1, n2 = x1.shape[0], x2a.shape[0]
    if symmetric:
        i, j = np.triu_indices(n1, k=1)
    else:
        i, j = (v.ravel() for v in np.meshgrid(np.arange(n1), np.arange(n2), indexing="ij"))
    diag1, diag2, c, det = _input_geometry(x1, x2a, i, j, w_std**2, b_std**2)
    if symmetric:
        diag2 = diag1
    # the recursion runs in extended precision: NTK entries can be small differences of
    # O(1) terms (Sigma_h and NTK_{h-1} SigmaDot_h of opposite signs)
    ld = np.longdouble
    w2, b2 = ld(w_std) ** 2, ld(b_std) ** 2
    ntk_c, ntk_d1, ntk_d2 = c.copy(), diag1.copy(), diag2.copy()
    used = set()
    layers = []
    for h in range(1, depth + 1):
        a, b = diag1[i], diag2[j]
        cov = Covariances.from_arrays(a, b, c, det, check=False)
        ss = evaluate_dual(act, "ss", cov, method=method, rtol=rtol, options=options)
        ds = evaluate_dual(act, "dsds", cov, method=method, rtol=rtol, options=options)
        used.update((ss.method, ds.method))
        e_d1 = collinear_values(act, "ss", diag1, diag1, 1.0)
        e_d2 = e_d1 if symmetric else collinear_values(act, "ss", diag2, diag2, 1.0)
        f_d1 = collinear_values(act, "dsds", diag1, diag1, 1.0)
        f_d2 = f_d1 if symmetric else collinear_values(act, "dsds", diag2, diag2, 1.0)
        det = _next_det(act, a, b, e_d1[i], e_d2[j], ss, w2, b2)
        c = w2 * ss.values + b2
        with np.errstate(invalid="ignore"):
            ntk_c = c + ntk_c * (w2 * ds.values)
            ntk_d1 = (w2 * e_d1 + b2) + ntk_d1 * (w2 * f_d1)
            ntk_d2 = ntk_d1 if symmetric else (w2 * e_d2 + b2) + ntk_d2 * (w2 * f_d2)
        diag1 = w2 * e_d1 + b2
        diag2 = diag1 if symmetric else w2 * e_d2 + b2
        nngp, ntk = _assemble(n1, n2, i, j, c, ntk_c, diag1, ntk_d1, symmetric)
        layers.append(Kernels(nngp, ntk, act.name, h, w_std, b_std, "+".join(sorted(used))))
    return layers


def _assemble(n1, n2, i, j, c, ntk_c, diag, ntk_diag, symmetric):
    """The (n1, n2) float matrices from the pair values (and the diagonal if symmetric)."""
    nngp = np.empty((n1, n2))
    ntk = np.empty((n1, n2))
    nngp[i, j], ntk[i, j] = np.asarray(c, dtype=float), np.asarray(ntk_c, dtype=float)
    if symmetric:
        nngp[j, i], ntk[j, i] = nngp[i, j], ntk[i, j]
        idx = np.arange(n1)
        nngp[idx, idx] = np.asarray(diag, dtype=float)
        ntk[idx, idx] = np.asarray(ntk_diag, dtype=float)
    return nngp, ntk
