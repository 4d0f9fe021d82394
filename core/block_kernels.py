"""The fast path of the deep-kernel recursion: float64 on blocks of the kernel matrices.

For every block of the (n1, n2) output the recursion of :mod:`hgmntk.deep_kernels`

    Sigma_0 = W^2 x.x'/d + b^2,   rho_h = Sigma_h / sqrt(Sigma_h(x,x) Sigma_h(x',x')),
    Sigma_{h+1} = W^2 E[s s](rho_h) + b^2,   NTK_{h+1} = Sigma_{h+1} + NTK_h W^2 E[s' s'](rho_h)

runs in plain vectorised float64 (one matrix product for the dot products, the
integrators' block evaluators for the duals), carrying an absolute error bound of every
entry along:

* Sigma_0: the unit roundoff times the dot product's terms W^2 |x||x'|/d (1 + sqrt(d)/4)
  + b^2 (sqrt(d) is the typical growth of summed roundings);
* each evaluator returns its value's own error bound (infinite where it cannot vouch for
  it: near rho = +-1, a cancellation inside its formula, unconverged coefficients) and, for
  E[s's'], its slope |dE[s's']/dc| = |E[s''s'']|; the error of c (the previous bound plus
  the rounding of rho and arccos) moves E by E[s's'] dc (Price's theorem) and E[s's'] by
  slope dc:

      err(Sigma_h) = W^2 (err(E) + |E'| err(Sigma_{h-1})) + eps (W^2 |E| + b^2),
      err(NTK_h) = err(Sigma_h) + W^2 |E'| err(NTK_{h-1})
                   + W^2 |NTK_{h-1}| (err(E') + slope err(Sigma_{h-1})) + rounding.

An entry is marked where a bound exceeds ``REL_TARGET`` of its value at some layer: a
small Sigma_0 is thus no reason for care by itself (relu's next layer does not mind), but
an odd activation that carries the cancellation on is caught.

Marked entries are redone by the same recursion on flat arrays in extended precision
(numpy longdouble, compensated dot products for Sigma_0), whose tests scale with its unit
roundoff; what is still marked there (rho within ~1e-9 of +-1, exact zeros of a sum) is
returned as index pairs for the careful path of :mod:`hgmntk.deep_kernels` (accurate
determinants and Price distances), after one more pass where the evaluator has a
longdouble twin (``extended()``: Mehler's expansion computed in longdouble throughout, on
a diagonal recomputed in longdouble; a cancellation between layers magnifies the float64
coefficients' rounding, which the first extended pass keeps).  The
diagonal comes from the careful path too.  On float64 blocks the recursion's own
arithmetic (rho, the layer update with its bounds, the writes of a block and its mirror
image) runs as compiled loops (:mod:`hgmntk.fused`, one pass each instead of some thirty
numpy passes per layer; the same operations in the same order, so the same values and
bounds); the extended-precision passes keep the numpy expressions.  Blocks (strips of
``TILE_ROWS`` rows cut into column chunks, see :func:`_tiles`) run on a thread pool
(numpy and the compiled loops release the GIL), so memory beyond the output is a few
blocks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .covariance import affine_covariance, dot2
from .integrator import BlockEvaluator, PairBlock

#: Entries whose error bound exceeds this fraction of their value are redone.
REL_TARGET = 2e-13
EPS64 = float(np.finfo(np.float64).eps)
EPS_LD = np.finfo(np.longdouble).eps
#: Entries per block (rows x columns); a few hundred kB per temporary array.
BLOCK_ENTRIES = 3 << 13
#: Rows of a block of a symmetric output (its transpose is written in rows this long).
TILE_ROWS = 64


@dataclass
class BlockResult:
    """Kernel matrices of the kept layers and the pairs that need the careful path."""

    nngp: list[np.ndarray]
    ntk: list[np.ndarray]
    flagged_i: np.ndarray
    flagged_j: np.ndarray
    extended: int  # entries redone in extended precision


def precision_ratio(dtype) -> float:
    """Unit roundoff of ``dtype`` relative to float64's (1 for float64, ~5e-4 for x87
    longdouble): tests written for float64 scale by it."""
    return float(np.finfo(dtype).eps / np.finfo(np.float64).eps)


def layer_evaluators(evaluator, sa: list[np.ndarray], sb: list[np.ndarray]) -> list:
    """Per-layer evaluators ``f(block, rows, cols, key)``: an evaluator with ``prepare``
    (e.g. :class:`hgmntk.mehler.MehlerDual`) sets itself up for each layer's variances
    (square roots ``sa[h]`` of the rows', ``sb[h]`` of the columns'); a plain one ignores
    rows, cols and key."""
    prepare = getattr(evaluator, "prepare", None)
    if prepare is not None:
        return [prepare(x, y) for x, y in zip(sa, sb)]
    return [lambda block, rows, cols, key: evaluator(block)] * len(sa)


def recursion(
    sigma: np.ndarray,
    err: np.ndarray,
    sqrt_rows: list[np.ndarray],
    sqrt_cols: list[np.ndarray],
    ss: list,
    dsds: list,
    w2,
    b2,
    emit: Callable[[int, np.ndarray, np.ndarray], None],
    rows=slice(None),
    cols=slice(None),
    checked=None,
    rho_absolute: bool = True,
) -> np.ndarray:
    """Run the layers from Sigma_0 = ``sigma`` (with absolute error bound ``err``) in the
    float type of ``sigma``; ``ss[h]``, ``dsds[h]`` are the layers' evaluators (see
    :func:`layer_evaluators`; ``rows``, ``cols`` locate the block for them);
    ``emit(h, Sigma_h, NTK_h)`` receives every layer h = 1..depth.  Returns the mask of
    entries whose error bound exceeds ``REL_TARGET`` of the value at a layer in
    ``checked`` (default: every layer; the others are intermediate values whose errors
    only matter through the bounds carried on).  The rounding of rho counts as an error
    of c of 2 eps (|c| + sqrt(ab)) with ``rho_absolute`` (evaluators that take arccos(rho),
    whose rounding is absolute), else of 2 eps |c| (evaluators using rho and sqrt(ab)
    only, e.g. the smooth closed forms: rho = c / sqrt(ab) is within eps of its relative
    value)."""
    if sigma.dtype == np.float64 and sigma.ndim == 2:
        return _fused_recursion(sigma, err, sqrt_rows, sqrt_cols, ss, dsds, w2, b2, emit,
                                rows, cols, checked, rho_absolute)
    return _array_recursion(sigma, err, sqrt_rows, sqrt_cols, ss, dsds, w2, b2, emit, rows,
                            cols, checked, rho_absolute)


def _array_recursion(sigma, err, sqrt_rows, sqrt_cols, ss, dsds, w2, b2, emit, rows, cols,
                     checked, rho_absolute):
    """:func:`recursion` in numpy expressions, in any float type (long double included)."""
    eps = float(np.finfo(sigma.dtype).eps)
    ntk = sigma
    ntk_err = err
    flag = None
    for h, (sa, sb) in enumerate(zip(sqrt_rows, sqrt_cols), start=1):
        rho, sab, err = array_correlations(sigma, err, sa, sb, eps, rho_absolute)
        block = PairBlock(sa, sb, rho, sab=sab)
        e, err_e, _ = ss[h - 1](block, rows, cols, "ss")
        de, err_d, slope = dsds[h - 1](block, rows, cols, "dsds")
        sigma, err, ntk, ntk_err = array_update(err, ntk, ntk_err, e, err_e, de, err_d, slope,
                                                w2, b2, eps)
        # an unusable bound (an evaluator's infinite one, or NaN from inf * 0) carries on
        # to the next layers' bounds (every bound adds the previous ones), so testing the
        # checked layers marks it
        if checked is None or h in checked:
            bad = ~(err <= REL_TARGET * np.abs(sigma))
            bad |= ~(ntk_err <= REL_TARGET * np.abs(ntk))
            flag = bad if flag is None else flag | bad
        emit(h, sigma, ntk)
    return flag if flag is not None else np.zeros(sigma.shape, dtype=bool)


def array_correlations(sigma, err, sa, sb, eps: float, rho_absolute: bool):
    """rho = clip(Sigma / sab, -1, 1), sab = sa sb, and the error of c grown by the rounding
    of rho (and of arccos(rho) with ``rho_absolute``): err + 2 eps (|Sigma| (+ sab)).
    Returns (rho, sab, err); :func:`hgmntk.fused.correlations` is its compiled twin."""
    sab = sa * sb
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.divide(sigma, sab)
    np.clip(rho, -1, 1, out=rho)
    abs_sigma = np.abs(sigma)
    if rho_absolute:
        abs_sigma += sab
    abs_sigma *= 2 * eps
    return rho, sab, err + abs_sigma


def array_update(err, ntk, ntk_err, e, err_e, de, err_d, slope, w2, b2, eps: float):
    """One layer: Sigma' = W^2 E + b^2 and NTK' = Sigma' + NTK W^2 E' from E, E' (with
    their bounds err_e, err_d and the slope of E', None for unknown) and the bounds err
    of c and ntk_err of NTK: c's error moves E by E[s's'] dc (Price) and E' by its slope,

        err' = eps |Sigma'| + W^2 (|E'| err + err_e) + 2 eps b^2,
        ntk_err' = (eps |NTK| + ntk_err) W^2 |E'| + W^2 |NTK| (slope err + err_d)
                   + err' + eps |Sigma'|.

    Returns (Sigma', err', NTK', ntk_err'); :func:`hgmntk.fused.layer_update` is its
    compiled twin (the same operations in the same order)."""
    wde = w2 * de
    with np.errstate(invalid="ignore", over="ignore"):
        if slope is None:
            d_err = np.full_like(err, np.inf)
        else:
            d_err = slope * err
            d_err += err_d
        new = w2 * e
        new += b2
        # rounding of w2 E + b2: eps (w2 |E| + b2) <= eps (|new| + 2 b2)
        abs_new = np.abs(new)
        abs_de = np.abs(de)
        abs_de *= err
        abs_de += err_e
        abs_de *= w2
        new_err = abs_new * eps
        new_err += abs_de
        new_err += eps * 2 * b2
        abs_ntk = np.abs(ntk)
        ntk_new = ntk * wde
        ntk_new += new
        # rounding of new + NTK w2 E': eps (|new| + |NTK w2 E'|)
        t = abs_ntk * eps
        t += ntk_err
        np.abs(wde, out=wde)
        t *= wde
        abs_ntk *= w2
        abs_ntk *= d_err
        t += abs_ntk
        t += new_err
        t += eps * abs_new
    return new, new_err, ntk_new, t


def _fused_recursion(sigma, err, sqrt_rows, sqrt_cols, ss, dsds, w2, b2, emit, rows, cols,
                     checked, rho_absolute):
    """:func:`recursion` on float64 (n, m) blocks by the compiled loops of
    :mod:`hgmntk.fused` (the same operations in the same order, one pass each)."""
    from . import fused  # here, not at import: numba loads with the first kernel

    eps = EPS64
    ntk, ntk_err = sigma, err
    flag = np.zeros(sigma.shape, dtype=bool)
    w2, b2 = float(w2), float(b2)
    for h, (sa, sb) in enumerate(zip(sqrt_rows, sqrt_cols), start=1):
        sa2, sb2 = np.atleast_2d(sa), np.atleast_2d(sb)
        rho, sab, err = fused.correlations(sigma, err, sa2, sb2, eps, rho_absolute)
        block = PairBlock(sa, sb, rho, sab=sab)
        e, err_e, _ = ss[h - 1](block, rows, cols, "ss")
        de, err_d, slope = dsds[h - 1](block, rows, cols, "dsds")
        check = checked is None or h in checked
        sigma, err, ntk, ntk_err = fused.layer_update(
            err, ntk, ntk_err, *_full(sigma.shape, e, err_e, de, err_d, slope),
            slope is not None, w2, b2, eps, REL_TARGET, check, flag)
        emit(h, sigma, ntk)
    return flag


def _full(shape, *arrays):
    """Arrays as C-contiguous float64 of ``shape`` (broadcast where an evaluator returned a
    smaller shape or a scalar; None, an unused slope: zeros), the one layout the compiled
    loops are built for."""
    out = []
    for a in arrays:
        a = np.zeros(shape) if a is None else np.asarray(a, dtype=np.float64)
        if a.shape != shape:
            a = np.broadcast_to(a, shape)
        out.append(np.ascontiguousarray(a))
    return tuple(out)


def block_layers(
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    symmetric: bool,
    sigma_diag1: list[np.ndarray],
    sigma_diag2: list[np.ndarray],
    ss: BlockEvaluator,
    dsds: BlockEvaluator,
    w_std: float,
    b_std: float,
    depth: int,
    keep_all: bool,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BlockResult:
    """The recursion on float64 blocks, then on the marked entries in extended precision
    (see the module docstring).

    ``sigma_diag1[h]`` / ``sigma_diag2[h]`` are Sigma_h(x, x) of the rows / columns for
    h = 0..depth-1 (longdouble, from the careful diagonal recursion).  With ``symmetric``
    only the upper triangle is computed and mirrored, and only pairs i < j are marked.
    Returns the matrices of every layer 1..depth (``keep_all``) or of the last one.
    ``progress(stage, done, total)`` is called with the entries done after each block.
    """
    from . import fused

    n1, n2 = x1.shape[0], x2.shape[0]
    d = x1.shape[1]
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    kept = depth if keep_all else 1
    nngp = [np.empty((n1, n2)) for _ in range(kept)]
    ntk = [np.empty((n1, n2)) for _ in range(kept)]
    norm1 = np.sqrt(np.einsum("ij,ij->i", x1, x1))
    norm2 = norm1 if symmetric else np.sqrt(np.einsum("ij,ij->i", x2, x2))
    sq1 = [np.sqrt(s.astype(float)) for s in sigma_diag1]
    sq2 = [np.sqrt(s.astype(float)) for s in sigma_diag2]
    growth = 1 + np.sqrt(d) / 4
    ss_layers = layer_evaluators(ss, sq1, sq2)
    dsds_layers = layer_evaluators(dsds, sq1, sq2)
    tiles = _tiles(n1, n2, symmetric)
    rho_absolute = not (getattr(ss, "relative_rho", False) and getattr(dsds, "relative_rho", False))

    def slot(h: int) -> int | None:
        return h - 1 if keep_all else (0 if h == depth else None)

    checked = None if keep_all else {depth}
    entries_done = [0]
    lock = threading.Lock()

    def run(tile: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        r0, r1, c0, c1 = tile
        sigma, err = fused.first_layer(x1[r0:r1] @ x2[c0:c1].T, norm1[r0:r1], norm2[c0:c1],
                                       w2 / d, b2, float(growth), EPS64)

        def emit(h, s, k):
            at = slot(h)
            if at is not None:
                # with the mirror image (of the upper triangle where c0 == r0)
                fused.write_block(nngp[at], s, r0, c0, symmetric)
                fused.write_block(ntk[at], k, r0, c0, symmetric)

        flag = recursion(
            sigma, err, [s[r0:r1, None] for s in sq1], [s[None, c0:c1] for s in sq2],
            ss_layers, dsds_layers, w2, b2, emit, slice(r0, r1), slice(c0, c1), checked,
            rho_absolute,
        )
        if symmetric and c0 == r0:  # pairs i < j only (the diagonal: careful path)
            flag &= np.arange(r0, r1)[:, None] < np.arange(c0, c1)[None, :]
        fi, fj = np.nonzero(flag)
        if progress is not None:
            with lock:
                entries_done[0] += (r1 - r0) * (c1 - c0)
                done = entries_done[0]
            progress("fast path (entries)", done, total)
        return fi + r0, fj + c0

    total = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in tiles)
    workers = workers or min(len(tiles), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(run, tiles))
    else:
        found = [run(tile) for tile in tiles]
    fi = np.concatenate([f[0] for f in found])
    fj = np.concatenate([f[1] for f in found])
    extended = fi.size
    if fi.size:
        fi, fj = _compensated(x1, x2, fi, fj, sq1, sq2, ss_layers, dsds_layers, w_std, b_std,
                              slot, nngp, ntk, symmetric, checked, rho_absolute)
    if fi.size:
        fi, fj = _extended(
            x1, x2, fi, fj, sigma_diag1, sigma_diag2, ss_layers, dsds_layers, w_std, b_std,
            slot, nngp, ntk, symmetric, checked, rho_absolute,
        )
    twin = longdouble_twin(ss, dsds)
    if fi.size and twin is not None:
        fi, fj = _longdouble_pass(
            twin, x1, x2, fi, fj, sigma_diag1, sigma_diag2, sq1, sq2, w_std, b_std, slot,
            nngp, ntk, symmetric, checked,
        )
    return BlockResult(nngp, ntk, fi, fj, extended)


def _tiles(n1: int, n2: int, symmetric: bool) -> list[tuple[int, int, int, int]]:
    """The (r0, r1, c0, c1) blocks of the output, about ``BLOCK_ENTRIES`` entries each:
    strips of ``TILE_ROWS`` rows cut into column chunks.  With ``symmetric`` only the
    chunks on or right of the diagonal (c0 >= r0; the first chunk of a strip starts on
    the diagonal), so each is also written transposed below it in rows of ``TILE_ROWS``
    contiguous entries, not in scattered columns."""
    rows = min(TILE_ROWS, n1) if symmetric else max(1, min(n1, BLOCK_ENTRIES // max(n2, 1)))
    width = max(1, BLOCK_ENTRIES // rows)
    tiles = []
    for r0 in range(0, n1, rows):
        r1 = min(r0 + rows, n1)
        for c0 in range(r0 if symmetric else 0, n2, width):
            tiles.append((r0, r1, c0, min(c0 + width, n2)))
    return tiles


def longdouble_twin(ss, dsds):
    """The longdouble twin of a block evaluator serving both duals (``extended()``, e.g.
    :class:`hgmntk.mehler.LongDoubleMehler`), or None."""
    return getattr(ss, "extended", lambda: None)() if ss is dsds else None


def refined_diagonal(twin, sigma: list[np.ndarray], points: np.ndarray, w_std, b_std):
    """Sigma_h(x, x) for h = 0..len(sigma)-1 recomputed in longdouble at ``points`` by the
    evaluator's longdouble twin (its ``second_moments``), Sigma_0 kept.  Returns a copy of
    ``sigma`` with the entries of the points the twin vouched for replaced, E[s^2] per
    layer h = 0..len(sigma)-2 as full arrays (NaN elsewhere), and the mask of those
    points."""
    ld = np.longdouble
    w2, b2 = ld(w_std) ** 2, ld(b_std) ** 2
    values = []
    moments = []
    good = np.ones(points.size, dtype=bool)
    current = sigma[0][points]
    for _ in range(1, len(sigma)):
        e, ok = twin.second_moments(current)
        good &= ok
        moments.append(e)
        current = w2 * e + b2
        values.append(current)
    mask = np.zeros(sigma[0].size, dtype=bool)
    mask[points[good]] = True
    new = [sigma[0].copy()]
    full = []
    for h, (v, e) in enumerate(zip(values, moments), start=1):
        new.append(sigma[h].copy())
        new[h][points[good]] = v[good]
        full.append(np.full(sigma[0].size, np.nan, dtype=ld))
        full[-1][points[good]] = e[good]
    return new, full, mask


def _longdouble_pass(twin, x1, x2, i, j, diag1, diag2, sq1, sq2, w_std, b_std, slot, nngp,
                     ntk, symmetric, checked):
    """Redo pairs (i, j) once more with an evaluator computing in longdouble throughout
    (``twin``, e.g. :class:`hgmntk.mehler.LongDoubleMehler`), on a diagonal recomputed in
    longdouble for their points (a float64 diagonal's rounding would pass into them);
    returns the pairs still marked."""
    if symmetric:  # one set of points on both sides
        d1, _, ok1 = refined_diagonal(twin, diag1, np.unique(np.concatenate([i, j])), w_std,
                                      b_std)
        d2, ok2 = d1, ok1
    else:
        d1, _, ok1 = refined_diagonal(twin, diag1, np.unique(i), w_std, b_std)
        d2, _, ok2 = refined_diagonal(twin, diag2, np.unique(j), w_std, b_std)
    keep = ok1[i] & ok2[j]
    if not np.any(keep):
        return i, j
    evaluators = layer_evaluators(twin, sq1, sq2)
    ri, rj = _extended(x1, x2, i[keep], j[keep], d1, d2, evaluators, evaluators, w_std,
                       b_std, slot, nngp, ntk, symmetric, checked)
    return np.concatenate([i[~keep], ri]), np.concatenate([j[~keep], rj])


def _compensated(x1, x2, i, j, sq1, sq2, ss, dsds, w_std, b_std, slot, nngp, ntk, symmetric,
                 checked, rho_absolute=True):
    """Redo pairs (i, j) in float64 from a Sigma_0 formed by compensated dot products
    (correctly rounded to float64): most marked entries are marked for the cancellation
    of x.x' alone (nearly orthogonal inputs, which an odd activation carries on), and
    need no extended precision after it.  Returns the pairs still marked."""
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    d = x1.shape[1]
    sigma, norms = _pair_sigma0(x1, x2, i, j, w2, b2)
    sigma = sigma.astype(float)
    # rounding to float64, plus the double-double forming's own error
    err = (EPS64 / 2) * np.abs(sigma) + (2 * float(EPS_LD)) * (w2 / d * norms + b2)
    flag = recursion(sigma, err, [s[i] for s in sq1], [s[j] for s in sq2], ss, dsds, w2, b2,
                     _pair_emitter(i, j, slot, nngp, ntk, symmetric), i, j, checked,
                     rho_absolute)
    return i[flag], j[flag]


def _pair_sigma0(x1, x2, i, j, w2: float, b2: float):
    """Sigma_0 of the pairs (x1[i], x2[j]) from compensated dot products (long double,
    accurate where x.x' cancels) and the products of their norms |x1[i]| |x2[j]|."""
    if x1.dtype == np.float64 and x2.dtype == np.float64:
        from . import fused

        hi, lo, norms = fused.pair_dot2(np.ascontiguousarray(x1), np.ascontiguousarray(x2),
                                        np.asarray(i, dtype=np.int64),
                                        np.asarray(j, dtype=np.int64))
    else:
        hi, lo = dot2(x1[i], x2[j])
        norms = np.sqrt(np.einsum("ij,ij->i", x1[i], x1[i])
                        * np.einsum("ij,ij->i", x2[j], x2[j]))
    return affine_covariance(w2, b2, hi, lo, x1.shape[1]), norms


def _pair_emitter(i, j, slot, nngp, ntk, symmetric):
    """``emit(h, Sigma_h, NTK_h)`` writing pairs (i, j) of the kept layers as float64 (and
    (j, i) for a symmetric output)."""
    def emit(h, s, k):
        at = slot(h)
        if at is not None:
            nngp[at][i, j] = s.astype(float, copy=False)
            ntk[at][i, j] = k.astype(float, copy=False)
            if symmetric:
                nngp[at][j, i] = nngp[at][i, j]
                ntk[at][j, i] = ntk[at][i, j]

    return emit


def _extended(x1, x2, i, j, diag1, diag2, ss, dsds, w_std, b_std, slot, nngp, ntk, symmetric,
              checked, rho_absolute=True):
    """Redo pairs (i, j) in numpy longdouble; returns the pairs still marked."""
    ld = np.longdouble
    w2, b2 = ld(w_std) ** 2, ld(b_std) ** 2
    d = x1.shape[1]
    sigma, norms = _pair_sigma0(x1, x2, i, j, float(w2), float(b2))
    err = EPS_LD * (w2 / d * norms + b2)
    flag = recursion(
        sigma, err.astype(ld), [np.sqrt(s[i]) for s in diag1], [np.sqrt(s[j]) for s in diag2],
        ss, dsds, w2, b2, _pair_emitter(i, j, slot, nngp, ntk, symmetric), i, j, checked,
        rho_absolute,
    )
    return i[flag], j[flag]
