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

import warnings
from dataclasses import dataclass, replace

import numpy as np

from .activation import Activation
from .block_kernels import block_layers, longdouble_twin, refined_diagonal
from .collinear import collinear_values
from .covariance import (
    VARIANCE_RANGE,
    Covariances,
    affine_covariance,
    dot2,
    half_power,
    two_product,
)
from .dual_activation import (
    check_variance_limit,
    choose_integrator,
    evaluate_dual,
    get_activation,
)
from .errors import HgmntkError, IntegrationError, InvalidInputError
from .progress import ProgressCallback, reporter


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
    #: pairs computed on the careful path (the rest took the fast float64 path); -1 where
    #: not counted (tiled and out-of-core kernels)
    careful_pairs: int = 0

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


def check_input_pair(x1, x2) -> tuple[np.ndarray, np.ndarray | None]:
    """(x1, x2) checked by :func:`check_inputs` (x2 None stays None), with as many
    features (columns) each."""
    x1 = check_inputs(x1, "x1")
    x2 = None if x2 is None else check_inputs(x2, "x2")
    if x2 is not None and x2.shape[1] != x1.shape[1]:
        raise InvalidInputError(
            f"x1 has {x1.shape[1]} features but x2 has {x2.shape[1]}; they must match"
        )
    return x1, x2


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
        if d <= EXACT_WEDGE_DIM:
            wedge[sel] = _wedge_from_minors(x1[i[sel]], x2[j[sel]])
            continue
        nx = np.einsum("ij,ij->i", x, x)
        ny = np.einsum("ij,ij->i", y, y)
        swap = ny > nx
        big = np.where(swap[:, None], y, x)
        nb = np.where(swap, ny, nx)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = np.where(nb > 0, np.einsum("ij,ij->i", big, diff) / nb, 0.0)
        perp = diff - alpha[:, None] * big  # the part of x - y (exact for close points)
        wedge[sel] = nb * np.einsum("ij,ij->i", perp, perp)  # normal to the larger one
    diag1 = affine_covariance(w2, b2, sq1_hi, sq1_lo, d)
    diag2 = affine_covariance(w2, b2, sq2_hi, sq2_lo, d)
    c = affine_covariance(w2, b2, dot_hi, dot_lo, d)
    w2l, b2l = ld(w2), ld(b2)
    det = w2l * w2l / (d * d) * np.maximum(wedge, 0) + w2l * b2l / d * dist2
    return diag1, diag2, c, det


#: Up to this input dimension |x ^ x'|^2 of risky pairs is summed from error-free minors.
EXACT_WEDGE_DIM = 48


def _wedge_from_minors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|x ^ y|^2 = sum_{k<l} (x_k y_l - x_l y_k)^2 row-wise, each minor from error-free
    products (Dekker), so it keeps full relative accuracy even for exactly or nearly
    collinear rows (e.g. y = 2.5 x rounded), in longdouble."""
    d = x.shape[1]
    total = np.zeros(x.shape[0], dtype=np.longdouble)
    for k in range(d - 1):
        p1, e1 = two_product(x[:, k : k + 1], y[:, k + 1 :])
        p2, e2 = two_product(x[:, k + 1 :], y[:, k : k + 1])
        minor = np.longdouble(1) * (p1 - p2) + (e1 - e2)
        total += np.einsum("ij,ij->i", minor, minor)
    return total


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
    progress: bool | ProgressCallback | None = None,
    chunks: int | None = None,
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
    progress : None (a line on stderr when it is a terminal and the job runs over 2 s),
        False (silent), True (always), or a callable (stage, done, total); see
        :mod:`hgmntk.progress`
    chunks : None (compute now, in memory) or a tile size: ``.nngp`` and ``.ntk`` are then
        lazy dask arrays of square tiles of ``chunks`` rows, each tile this function on
        its rows and columns (``pip install 'hgmntk[dask]'``; compute them with
        ``dask.compute(k.nngp, k.ntk)`` to share the tiles, on any Dask scheduler);
        :func:`hgmntk.write_kernels` writes them out-of-core instead

    Returns
    -------
    Kernels with ``.nngp`` and ``.ntk`` of shape (n1, n2), exactly neural-tangents'
    ``kernel_fn(x1, x2, ("nngp", "ntk"))`` of ``Dense(W, b), act, ..., act, Dense(W, b)``
    (Sigma_depth already is the read-out layer's kernel), computed without cancellation near
    the diagonal.  :func:`kernel_layers` returns the networks of every depth 1..depth
    from the same recursion.

    When both duals' integrators offer a block evaluator (the closed forms do), the bulk
    of the entries is computed on the fast float64 path (:mod:`hgmntk.block_kernels`) and
    only the entries it marks as possibly inaccurate on the careful path.

    Examples
    --------
    >>> import numpy as np, hgmntk
    >>> k = hgmntk.kernels(np.eye(2), activation="relu", depth=1)
    >>> k.nngp.shape
    (2, 2)
    """
    if chunks is not None:
        return _tiled(x1, x2, activation, depth, w_std, b_std, method, rtol, options, chunks)
    return _layers(
        x1, x2, activation, depth, w_std, b_std, method, rtol, options, keep_all=False,
        progress=progress,
    )[-1]


def _tiled(x1, x2, activation, depth, w_std, b_std, method, rtol, options, chunks) -> Kernels:
    """kernels(..., chunks=...): lazy dask arrays of tiles (see :mod:`hgmntk.tiles`)."""
    from .tiles import check_tile, dask_kernels, kernel_spec

    if options or rtol != 1e-12:
        raise InvalidInputError("tiled kernels (chunks=...) take the default rtol and no "
                                "integrator options")
    try:
        import dask.array  # noqa: F401
    except ImportError:
        raise InvalidInputError("chunks=... needs Dask: pip install 'hgmntk[dask]'") from None
    spec = kernel_spec(activation, depth, w_std, b_std, method)
    x1, x2 = check_input_pair(x1, x2)
    nngp, ntk = dask_kernels(spec, x1, x2, check_tile(chunks))
    return Kernels(nngp, ntk, spec.activation, spec.depth, spec.w_std, spec.b_std,
                   f"{method} (tiles of {chunks})", -1)


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
    progress: bool | ProgressCallback | None = None,
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
    return _layers(
        x1, x2, activation, depth, w_std, b_std, method, rtol, options, keep_all=True,
        progress=progress,
    )


@dataclass
class _Diagonal:
    """The careful recursion on the diagonal of one input set, per layer h = 0..depth:
    ``sigma[h]`` = Sigma_h(x, x), ``ntk[h]`` = NTK_h(x, x) (longdouble), and for h >= 1
    ``e_ss[h - 1]``, ``e_dsds[h - 1]`` = the duals at rho = 1 on Sigma_{h-1}(x, x)."""

    sigma: list[np.ndarray]
    ntk: list[np.ndarray]
    e_ss: list[np.ndarray]
    e_dsds: list[np.ndarray]


def kernel_diagonal(
    x,
    *,
    activation: str | Activation,
    depth: int,
    w_std: float = 1.0,
    b_std: float = 0.0,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP(x_i, x_i), NTK(x_i, x_i)) for every row of x: the diagonal of
    ``kernels(x, ...)`` (the same values) without its off-diagonal pairs, from the
    collinear values E[s(u)^2], E[s'(u)^2] of each layer (rho = 1, one 1-D dual per point
    and layer)."""
    act = get_activation(activation, method)
    depth, w_std, b_std = _check_params(depth, w_std, b_std)
    x = check_inputs(x, "x")
    w2, b2 = np.longdouble(w_std) ** 2, np.longdouble(b_std) ** 2
    blocks = _block_evaluators(act, method)
    diag = _diagonal(act, x, depth, w2, b2, blocks[0] if blocks is not None else None, "x")
    return np.asarray(diag.sigma[depth], dtype=float), np.asarray(diag.ntk[depth], dtype=float)


def _collinear_same(act: Activation, sigma: np.ndarray, fast) -> tuple[np.ndarray, np.ndarray]:
    """E[s(u)^2] and E[s'(u)^2] for u ~ N(0, sigma): from the fast evaluator's ``collinear``
    where it has one and vouches for the value (in sigma's long double where the evaluator
    says ``collinear_any_float``), else from the collinear 1-D integrals."""
    e = np.full(sigma.shape, np.nan, dtype=sigma.dtype)
    f = e.copy()
    todo = np.ones(sigma.shape, dtype=bool)
    if fast is not None and hasattr(fast, "collinear") and sigma.size:
        # an evaluator computing in any float type (closed forms) gets the long doubles
        keep = getattr(fast, "collinear_any_float", False)
        fe, ff, ok = fast.collinear(sigma if keep else sigma.astype(float))
        e[ok], f[ok] = fe[ok], ff[ok]
        todo = ~ok
    if np.any(todo):
        e[todo] = collinear_values(act, "ss", sigma[todo], sigma[todo], 1.0)
        f[todo] = collinear_values(act, "dsds", sigma[todo], sigma[todo], 1.0)
    return e, f


def _diagonal(act: Activation, x: np.ndarray, depth: int, w2, b2, fast=None,
              name: str = "x") -> _Diagonal:
    """Sigma_h(x, x) and NTK_h(x, x) for every row of x (collinear values, rho = 1; from
    the fast evaluator ``fast`` of the ss dual where it offers them).  Every layer's
    values are checked against :data:`SCALE_RANGE` before the next layer uses them."""
    xl = x.astype(np.longdouble)  # |x|^2 in long double: no overflow before the check
    _check_scale(w2 * np.einsum("ij,ij->i", xl, xl) / x.shape[1] + b2, "Sigma_0", name)
    hi, lo = dot2(x, x)
    sigma = affine_covariance(float(w2), float(b2), hi, lo, x.shape[1])
    out = _Diagonal([sigma], [sigma.copy()], [], [])
    for h in range(depth):
        _check_scale(out.ntk[-1], f"NTK_{h}", name)
        check_variance_limit(act, sigma, f"Sigma_{h}({name}, {name})")
        with np.errstate(over="ignore"):  # an overflowing E[s^2] is reported just below
            e, f = _collinear_same(act, sigma, fast)
        if not np.all(np.isfinite(e)):
            big = float(np.max(sigma[~np.isfinite(e)]))
            raise IntegrationError(
                f"the kernel of {act.name!r} overflows float64 at layer {h + 1}: E[s(u)^2] "
                f"is beyond 1.8e308 at variance {big:.3g} (s grows too fast); use a smaller "
                "w_std, a smaller depth or inputs of smaller norm"
            )
        with np.errstate(invalid="ignore"):
            ntk = (w2 * e + b2) + out.ntk[-1] * (w2 * f)
        sigma = w2 * e + b2
        _check_scale(sigma, f"Sigma_{h + 1}", name)
        out.sigma.append(sigma)
        out.ntk.append(ntk)
        out.e_ss.append(e)
        out.e_dsds.append(f)
    return out


def _refined(twin, diag: _Diagonal, points: np.ndarray, w_std, b_std) -> _Diagonal:
    """``diag`` with Sigma_h and E[s^2] recomputed in longdouble at ``points`` (where the
    longdouble twin of the fast evaluator vouches for them)."""
    sigma, moments, mask = refined_diagonal(twin, diag.sigma, points, w_std, b_std)
    e_ss = [np.where(mask, m, e) for m, e in zip(moments, diag.e_ss)]
    return _Diagonal(sigma, diag.ntk, e_ss, diag.e_dsds)


def _tightened(act, key, cov, res, need, rtol, method, options):
    """Re-evaluate the pairs whose value must be more accurate than ``rtol`` (``need``:
    the relative accuracy each needs where the next layer's sum cancels)."""
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero(need < rtol / 2)
    if idx.size:
        sub = evaluate_dual(act, key, cov.take(idx), method=method,
                            rtol=max(float(np.min(need[idx])), 1e-30), options=options)
        res.values[idx] = sub.values
        res.to_same[idx] = sub.to_same
        res.to_opposite[idx] = sub.to_opposite
    return res


def _pair_layers(act, x1, x2, i, j, diag1: _Diagonal, diag2: _Diagonal, depth, w_std, b_std,
                 method, rtol, options, report=None):
    """The careful recursion for the pairs (x1[i], x2[j]): per layer (Sigma_h, NTK_h) of the
    pairs in longdouble, and the names of the methods used.  Where W^2 E + b^2 or the NTK's
    sum cancels, the duals are evaluated again to the accuracy the cancellation needs.
    ``report(stage, layers done, depth)`` after each layer (all pairs go through each
    layer in one batch: splitting them would repeat the per-batch work)."""
    ld = np.longdouble
    w2, b2 = ld(w_std) ** 2, ld(b_std) ** 2
    _, _, c, det = _input_geometry(x1, x2, i, j, float(w2), float(b2))
    ntk_c = c.copy()
    used = set()
    out = []
    for h in range(depth):
        a, b = diag1.sigma[h][i], diag2.sigma[h][j]
        cov = Covariances.from_arrays(a, b, c, det, check=False)
        ss = evaluate_dual(act, "ss", cov, method=method, rtol=rtol, options=options)
        ds = evaluate_dual(act, "dsds", cov, method=method, rtol=rtol, options=options)
        with np.errstate(invalid="ignore", divide="ignore"):
            need = rtol * np.abs(w2 * ss.values + b2) / np.abs(w2 * ss.values)
            ss = _tightened(act, "ss", cov, ss, need, rtol, method, options)
            term = ntk_c * (w2 * ds.values)
            need = rtol * np.abs(w2 * ss.values + b2 + term) / np.abs(term)
            ds = _tightened(act, "dsds", cov, ds, need, rtol, method, options)
        used.update((ss.method, ds.method))
        det = _next_det(act, a, b, diag1.e_ss[h][i], diag2.e_ss[h][j], ss, w2, b2)
        c = w2 * ss.values + b2
        with np.errstate(invalid="ignore"):
            ntk_c = c + ntk_c * (w2 * ds.values)
        out.append((c, ntk_c))
        if report is not None:
            report(f"careful path ({i.size} pairs), layers", h + 1, depth)
    return out, used


def _layers(x1, x2, activation, depth, w_std, b_std, method, rtol, options, *, keep_all,
            progress=None):
    """The kernels of the kept layers (every layer 1..depth, or the last)."""
    report, close = reporter(progress, "hgmntk kernels")
    try:
        return _layers_reported(x1, x2, activation, depth, w_std, b_std, method, rtol, options,
                                keep_all, report)
    finally:
        close()


#: Variances (Sigma_h(x, x), NTK_h(x, x)) the float64 recursion supports (see
#: :data:`hgmntk.covariance.VARIANCE_RANGE`).
SCALE_RANGE = VARIANCE_RANGE


def _check_scale(values, what: str, name: str) -> None:
    """A clear error when positive finite ``values`` (a layer's Sigma or NTK on the
    diagonal, long double) leave :data:`SCALE_RANGE`; 0 and inf are exact."""
    low, high = SCALE_RANGE
    v = np.abs(np.asarray(values, dtype=np.longdouble))
    bad = np.isfinite(v) & (v > 0) & ((v < low) | (v > high))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        shown = np.format_float_scientific(v[i], precision=2)
        raise InvalidInputError(
            f"{what}({name}[{i}], {name}[{i}]) = {shown} is outside the range {low:g} .. "
            f"{high:g} that the float64 recursion supports (products of two variances would "
            "overflow or underflow); rescale the inputs (or w_std, b_std, depth)"
        )


def _layers_reported(x1, x2, activation, depth, w_std, b_std, method, rtol, options, keep_all,
                     report):
    act = get_activation(activation, method)
    depth, w_std, b_std = _check_params(depth, w_std, b_std)
    x1, x2 = check_input_pair(x1, x2)
    symmetric = x2 is None
    x2a = x1 if symmetric else x2
    n1, n2 = x1.shape[0], x2a.shape[0]
    ld = np.longdouble
    w2, b2 = ld(w_std) ** 2, ld(b_std) ** 2
    blocks = None if options else _block_evaluators(act, method)
    fast = blocks[0] if blocks is not None else None
    diag1 = _diagonal(act, x1, depth, w2, b2, fast, "x1")
    diag2 = diag1 if symmetric else _diagonal(act, x2a, depth, w2, b2, fast, "x2")
    kept = range(1, depth + 1) if keep_all else [depth]
    if blocks is not None:
        fast = block_layers(
            x1, x2a, symmetric=symmetric,
            sigma_diag1=diag1.sigma[:depth], sigma_diag2=diag2.sigma[:depth],
            ss=blocks[0], dsds=blocks[1], w_std=w_std, b_std=b_std, depth=depth,
            keep_all=keep_all, progress=report,
        )
        i, j = fast.flagged_i, fast.flagged_j
        matrices = list(zip(fast.nngp, fast.ntk))
        used = {blocks[2]}
    else:
        if symmetric:
            i, j = np.triu_indices(n1, k=1)
        else:
            i, j = (v.ravel() for v in np.meshgrid(np.arange(n1), np.arange(n2), indexing="ij"))
        matrices = [(np.empty((n1, n2)), np.empty((n1, n2))) for _ in kept]
        used = set()
    if i.size:
        d1, d2 = diag1, diag2
        twin = longdouble_twin(blocks[0], blocks[1]) if blocks is not None else None
        if twin is not None:  # a longdouble diagonal where the evaluator offers one
            d1 = _refined(twin, diag1, np.unique(np.concatenate([i, j]) if symmetric else i),
                          w_std, b_std)
            d2 = d1 if symmetric else _refined(twin, diag2, np.unique(j), w_std, b_std)
        pairs, pair_methods = _pair_layers(
            act, x1, x2a, i, j, d1, d2, depth, w_std, b_std, method, rtol, options, report
        )
        used |= pair_methods
        for (nngp, ntk), h in zip(matrices, kept):
            c, ntk_c = pairs[h - 1]
            nngp[i, j], ntk[i, j] = np.asarray(c, dtype=float), np.asarray(ntk_c, dtype=float)
            if symmetric:
                nngp[j, i], ntk[j, i] = nngp[i, j], ntk[i, j]
    layers = []
    for (nngp, ntk), h in zip(matrices, kept):
        if symmetric:
            idx = np.arange(n1)
            nngp[idx, idx] = np.asarray(diag1.sigma[h], dtype=float)
            ntk[idx, idx] = np.asarray(diag1.ntk[h], dtype=float)
        layers.append(Kernels(nngp, ntk, act.name, h, w_std, b_std, "+".join(sorted(used)),
                              int(i.size)))
    return layers


def _block_evaluators(act: Activation, method: str):
    """(ss, dsds, method name) block evaluators when both duals' integrators offer one."""
    try:
        with warnings.catch_warnings():  # the careful path warns, once
            warnings.simplefilter("ignore")
            ss_int = choose_integrator(act, "ss", method)
            ds_int = choose_integrator(act, "dsds", method)
    except HgmntkError:
        return None  # the careful path raises the user-facing error
    ss = ss_int.block_evaluator(act, "ss")
    ds = ds_int.block_evaluator(act, "dsds")
    if ss is None or ds is None:
        return None
    return ss, ds, ss_int.name if ss_int is ds_int else f"{ss_int.name}+{ds_int.name}"
