"""The fast path of the deep-kernel recursion: float64 on blocks of the kernel matrices.

For every row block of the (n1, n2) output the recursion of :mod:`hgmntk.deep_kernels`

    Sigma_0 = W^2 x.x'/d + b^2,   rho_h = Sigma_h / sqrt(Sigma_h(x,x) Sigma_h(x',x')),
    Sigma_{h+1} = W^2 E[s s](rho_h) + b^2,   NTK_{h+1} = Sigma_{h+1} + NTK_h W^2 E[s' s'](rho_h)

runs in plain vectorised float64 (one matrix product for the dot products, the
integrators' block evaluators for the duals), while a cheap test marks each entry whose
value could have lost digits:

* a dual's block evaluator does not trust its value (near rho = +-1, or a cancellation
  inside its formula);
* Sigma_h or NTK_h is below ``CANCEL`` times a bound of its absolute rounding error (in
  units of the unit roundoff) carried along the recursion: for Sigma_0 the magnitude of
  the dot product's terms W^2 |x||x'|/d (1 + sqrt(d)/4) + b^2; then, since rho's error
  moves E by E[s's'] dc (Price's theorem),

      err(Sigma_h) = W^2 |E| + W^2 |E'| err(Sigma_{h-1}) + b^2,
      err(NTK_h) = err(Sigma_h) + W^2 |E'| err(NTK_{h-1}).

A small Sigma_0 is thus no reason for care by itself (relu's next layer does not mind),
but an odd activation that carries the cancellation on is caught.  Unmarked entries keep
~1e-13 relative accuracy.

Marked entries are redone by the same recursion on flat arrays in extended precision
(numpy longdouble, compensated dot products for Sigma_0), whose tests scale with its unit
roundoff; what is still marked there (rho within ~1e-9 of +-1, exact zeros of a sum) is
returned as index pairs for the careful path of :mod:`hgmntk.deep_kernels` (accurate
determinants and Price distances).  The diagonal comes from the careful path too.  Row
blocks run on a thread pool (numpy releases the GIL), so memory beyond the output is a
few blocks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .covariance import affine_covariance, dot2
from .integrator import BlockEvaluator, PairBlock

#: A sum that keeps less than this fraction of its error bound (in units of the unit
#: roundoff) is recomputed in higher precision.
CANCEL = 1e-2
#: Entries per block (rows x columns); a few hundred kB per temporary array.
BLOCK_ENTRIES = 1 << 15


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
) -> np.ndarray:
    """Run the layers from Sigma_0 = ``sigma`` (with error bound ``err``) in the float
    type of ``sigma``; ``ss[h]``, ``dsds[h]`` are the layers' evaluators (see
    :func:`layer_evaluators`; ``rows``, ``cols`` locate the block for them);
    ``emit(h, Sigma_h, NTK_h)`` receives every layer h = 1..depth.  Returns the mask of
    entries that failed a test (see the module docstring)."""
    cancel = CANCEL * precision_ratio(sigma.dtype)
    ntk = sigma.copy()
    ntk_err = err.copy()
    flag = np.zeros(sigma.shape, dtype=bool)
    for h, (sa, sb) in enumerate(zip(sqrt_rows, sqrt_cols), start=1):
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.clip(sigma / (sa * sb), -1, 1)
        block = PairBlock(sa, sb, rho)
        e, ok_e = ss[h - 1](block, rows, cols, "ss")
        de, ok_d = dsds[h - 1](block, rows, cols, "dsds")
        flag |= ~ok_e
        flag |= ~ok_d
        wde = w2 * de
        with np.errstate(invalid="ignore", over="ignore"):
            err = w2 * np.abs(e) + np.abs(wde) * err + b2
            sigma = w2 * e + b2
            ntk = sigma + ntk * wde
            ntk_err = err + ntk_err * np.abs(wde)
        flag |= ~(np.abs(sigma) >= cancel * err)
        flag |= ~(np.abs(ntk) >= cancel * ntk_err)
        emit(h, sigma, ntk)
    return flag


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
) -> BlockResult:
    """The recursion on float64 blocks, then on the marked entries in extended precision
    (see the module docstring).

    ``sigma_diag1[h]`` / ``sigma_diag2[h]`` are Sigma_h(x, x) of the rows / columns for
    h = 0..depth-1 (longdouble, from the careful diagonal recursion).  With ``symmetric``
    only the upper triangle is computed and mirrored, and only pairs i < j are marked.
    Returns the matrices of every layer 1..depth (``keep_all``) or of the last one.
    """
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
    rows = max(1, BLOCK_ENTRIES // max(n2, 1))
    starts = list(range(0, n1, rows))

    def slot(h: int) -> int | None:
        return h - 1 if keep_all else (0 if h == depth else None)

    def run(r0: int) -> tuple[np.ndarray, np.ndarray]:
        r1 = min(r0 + rows, n1)
        c0 = r0 if symmetric else 0
        sigma = (w2 / d) * (x1[r0:r1] @ x2[c0:].T) + b2
        err = (w2 / d) * growth * np.outer(norm1[r0:r1], norm2[c0:]) + b2

        def emit(h, s, k):
            at = slot(h)
            if at is not None:
                nngp[at][r0:r1, c0:] = s
                ntk[at][r0:r1, c0:] = k
                if symmetric:
                    nngp[at][c0:, r0:r1] = s.T
                    ntk[at][c0:, r0:r1] = k.T

        flag = recursion(
            sigma, err, [s[r0:r1, None] for s in sq1], [s[None, c0:] for s in sq2],
            ss_layers, dsds_layers, w2, b2, emit, slice(r0, r1), slice(c0, None),
        )
        if symmetric:  # pairs i < j only (the diagonal comes from the careful path)
            flag &= np.arange(r0, r1)[:, None] < np.arange(c0, n2)[None, :]
        fi, fj = np.nonzero(flag)
        return fi + r0, fj + c0

    workers = workers or min(len(starts), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(run, starts))
    else:
        found = [run(r0) for r0 in starts]
    fi = np.concatenate([f[0] for f in found])
    fj = np.concatenate([f[1] for f in found])
    extended = fi.size
    if fi.size:
        fi, fj = _extended(
            x1, x2, fi, fj, sigma_diag1, sigma_diag2, ss_layers, dsds_layers, w_std, b_std,
            slot, nngp, ntk, symmetric,
        )
    return BlockResult(nngp, ntk, fi, fj, extended)


def _extended(x1, x2, i, j, diag1, diag2, ss, dsds, w_std, b_std, slot, nngp, ntk, symmetric):
    """Redo pairs (i, j) in numpy longdouble; returns the pairs still marked."""
    ld = np.longdouble
    w2, b2 = ld(w_std) ** 2, ld(b_std) ** 2
    d = x1.shape[1]
    hi, lo = dot2(x1[i], x2[j])
    sigma = affine_covariance(float(w2), float(b2), hi, lo, d)
    err = w2 / d * np.sqrt(np.einsum("ij,ij->i", x1[i], x1[i])
                           * np.einsum("ij,ij->i", x2[j], x2[j])) + b2

    def emit(h, s, k):
        at = slot(h)
        if at is not None:
            nngp[at][i, j] = s.astype(float)
            ntk[at][i, j] = k.astype(float)
            if symmetric:
                nngp[at][j, i] = nngp[at][i, j]
                ntk[at][j, i] = ntk[at][i, j]

    flag = recursion(
        sigma, err.astype(ld), [np.sqrt(s[i]) for s in diag1], [np.sqrt(s[j]) for s in diag2],
        ss, dsds, w2, b2, emit, i, j,
    )
    return i[flag], j[flag]
