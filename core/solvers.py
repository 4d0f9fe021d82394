"""Solvers of kernel ridge regression for training sets beyond a dense factorisation.

The method table of :class:`hgmntk.KernelRegressor` (``solver=``):

============ ========================================================================
``dense``    Cholesky of K(X, X) + lam I (in memory: 8 n^2 bytes per matrix).
``cg``       the same system (K + lam I) alpha = y by conjugate gradients, matrix-free:
             K's row tiles are kept in memory up to ``cache_gib`` and recomputed at each
             iteration beyond it; preconditioned by the Nystrom approximation
             K ~ K_nM K_MM^-1 K_Mn of M centres (Woodbury).  Exact up to ``tol``.
``nystrom``  Falkon (Rudi et al. 2017; Meanti et al. 2020): the estimator restricted to M
             centres C (a uniform sample of X), f(x) = K(x, C) beta with
             (K_nM' K_nM + lam K_MM) beta = K_nM' y, solved by conjugate gradients with
             Falkon's preconditioner from K_MM.  Memory n M (tiles cached) or a few M^2
             (K_nM' K_nM accumulated in one pass), never n^2; an approximation whose error
             falls as M grows.
``auto``     ``dense`` up to :data:`AUTO_DENSE_MAX` training points, ``nystrom`` above.
============ ========================================================================

Every iterative solve stops when the relative residual of its (preconditioned) system is
below ``tol`` and raises :class:`~hgmntk.errors.ConvergenceError` when ``max_iter``
iterations do not get there; :class:`SolveReport` keeps the iterations and the residual.
Kernel tiles are :func:`hgmntk.kernels` blocks (:mod:`hgmntk.tiles`), computed in this
process or on a Dask cluster (``client``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from .errors import ConvergenceError, InvalidInputError
from .progress import ProgressCallback
from .tiles import KernelSpec, spans

SOLVERS = ("auto", "dense", "cg", "nystrom")

#: ``solver="auto"`` factorises densely up to this many training points (K, its factor and
#: the NNGP take 3 x 8 n^2 bytes: 2.4 GB here) and uses ``nystrom`` above.
AUTO_DENSE_MAX = 10_000

def chosen_solver(solver: str, n: int) -> str:
    """The solver that ``solver`` (a name of :data:`SOLVERS`) means for n training points:
    ``auto`` is ``dense`` up to :data:`AUTO_DENSE_MAX`, ``nystrom`` above."""
    if solver not in SOLVERS:
        raise InvalidInputError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    if solver == "auto":
        return "dense" if n <= AUTO_DENSE_MAX else "nystrom"
    return solver


#: Centres of ``nystrom`` (and of ``cg``'s preconditioner) unless given: min(n, this).
DEFAULT_CENTRES = 5_000


#: Entries of a row tile of the iterative solvers unless ``chunks`` gives its rows (the
#: memory of one tile's computation is a small multiple of 8 bytes times this).
TILE_ENTRIES = 2**22


@dataclass(frozen=True)
class SolveReport:
    """How a kernel system was solved: ``iterations`` and the final relative ``residual``
    (0 and the Cholesky's backward residual estimate is not computed for ``dense``)."""

    solver: str
    iterations: int = 0
    residual: float = 0.0
    tol: float = 0.0
    centres: int = 0


def _row_tile(spec: KernelSpec, which: str, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """K(x, z) of the chosen kernel ("nngp" or "ntk")."""
    return getattr(spec.kernels(x, z), which)


def _tile_product(tile: np.ndarray, v: np.ndarray, gram: bool) -> np.ndarray:
    """tile v, or tile' (tile v) when ``gram``."""
    u = tile @ v
    return tile.T @ u if gram else u


def _transposed_product(tile: np.ndarray, part: np.ndarray) -> np.ndarray:
    """tile' part."""
    return tile.T @ part


def _columns_of(tile: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return tile[:, idx]


def _on_fresh_tile(fn: Callable, spec: KernelSpec, which: str, x: np.ndarray,
                   z: np.ndarray, *args) -> np.ndarray:
    """fn(tile, *args) of a tile computed here and dropped."""
    return fn(_row_tile(spec, which, x, z), *args)


class KernelOperator:
    """The n x m matrix K(X, Z) of one kernel (``"nngp"`` or ``"ntk"``), in row tiles.

    Row tiles of ``tile`` rows (default: about :data:`TILE_ENTRIES` entries) are computed
    on first use, in this process or on ``client``'s Dask cluster
    (where they stay, in the workers' memory); they are kept when all of them fit in
    ``cache_gib`` GiB and recomputed at every product otherwise.  Products:
    :meth:`matmat` (K V), :meth:`rmatmat` (K' U, with U given tile by tile through a
    callback) and :meth:`gram` (K' K V, one pass).
    """

    def __init__(self, spec: KernelSpec, kernel: str, x: np.ndarray, z: np.ndarray, *,
                 tile: int | None = None, client=None, cache_gib: float = 4.0,
                 progress: ProgressCallback | None = None, label: str = "K") -> None:
        if kernel not in ("nngp", "ntk"):
            raise InvalidInputError(f"kernel must be 'nngp' or 'ntk', got {kernel!r}")
        self.spec, self.which = spec, kernel
        self.x, self.z = x, z
        if tile is None:  # about TILE_ENTRIES entries a tile
            tile = max(1, TILE_ENTRIES // max(z.shape[0], 1))
        self.rows = spans(x.shape[0], tile)
        self.client = client
        self.cache = 8.0 * x.shape[0] * z.shape[0] <= cache_gib * 2**30
        self.progress = progress
        self.label = label
        self.passes = 0
        self._tiles: list | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(n, m)."""
        return self.x.shape[0], self.z.shape[0]

    def _compute(self) -> list:
        """The tiles (arrays here, futures on a cluster), reporting progress."""
        n_tiles = len(self.rows)
        stage = f"{self.label} tiles ({self.shape[0]}x{self.shape[1]})"
        if self.client is None:
            out = []
            for k, (r0, r1) in enumerate(self.rows):
                out.append(_row_tile(self.spec, self.which, self.x[r0:r1], self.z))
                if self.progress is not None:
                    self.progress(stage, k + 1, n_tiles)
            return out
        from dask.distributed import as_completed

        zf = self.client.scatter(self.z, broadcast=True, hash=False)
        out = [self.client.submit(_row_tile, self.spec, self.which, self.x[r0:r1], zf,
                                  pure=False) for r0, r1 in self.rows]
        for k, future in enumerate(as_completed(out)):
            future.result()  # raises a worker's error here
            if self.progress is not None:
                self.progress(stage, k + 1, n_tiles)
        return out

    def tiles(self) -> list:
        """The row tiles (computed now unless cached)."""
        if self._tiles is not None:
            return self._tiles
        tiles = self._compute()
        self.passes += 1
        if self.cache:
            self._tiles = tiles
        return tiles

    def _map(self, fn: Callable, *shared, each: list | None = None) -> list:
        """[fn(tile_k, *each[k], *shared)] over the row tiles.  Cached tiles are used as
        they are; tiles that are not cached are computed, used and dropped one at a time
        (here) or inside one task each (on a cluster), so memory holds a tile, never the
        matrix."""
        each = each if each is not None else [()] * len(self.rows)
        fresh = not self.cache and self._tiles is None
        if self.client is None:
            if fresh:
                self.passes += 1
                return [_on_fresh_tile(fn, self.spec, self.which, self.x[r0:r1], self.z,
                                       *e, *shared) for (r0, r1), e in zip(self.rows, each)]
            return [fn(t, *e, *shared) for t, e in zip(self.tiles(), each)]
        shared = tuple(self.client.scatter(a, broadcast=True, hash=False)
                       if isinstance(a, np.ndarray) else a for a in shared)
        if fresh:
            self.passes += 1
            zf = self.client.scatter(self.z, broadcast=True, hash=False)
            futures = [self.client.submit(_on_fresh_tile, fn, self.spec, self.which,
                                          self.x[r0:r1], zf, *e, *shared, pure=False)
                       for (r0, r1), e in zip(self.rows, each)]
        else:
            futures = [self.client.submit(fn, t, *e, *shared, pure=False)
                       for t, e in zip(self.tiles(), each)]
        return self.client.gather(futures)

    def matmat(self, v: np.ndarray) -> np.ndarray:
        """K v (v: m x k)."""
        return np.concatenate(self._map(_tile_product, v, False))

    def gram(self, v: np.ndarray) -> np.ndarray:
        """K' (K v) in one pass over the tiles."""
        return np.sum(self._map(_tile_product, v, True), axis=0)

    def rmatmat(self, u: np.ndarray) -> np.ndarray:
        """K' u (u: n x k) in one pass over the tiles."""
        return np.sum(self._map(_transposed_product,
                                each=[(u[r0:r1],) for r0, r1 in self.rows]), axis=0)

    def normal_equations(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K'K, K'u) in one pass over freshly computed tiles that are not kept: for K
        beyond the cache (m x m memory; on a cluster, one partial sum per worker)."""
        m = self.shape[1]
        if self.client is None:
            g = np.zeros((m, m), order="F")
            ku = np.zeros((m, u.shape[1]))
            stage = f"{self.label} tiles ({self.shape[0]}x{m}), K'K"
            for k, (r0, r1) in enumerate(self.rows):
                tile = _row_tile(self.spec, self.which, self.x[r0:r1], self.z)
                _accumulate(g, ku, tile, u[r0:r1])
                if self.progress is not None:
                    self.progress(stage, k + 1, len(self.rows))
        else:
            workers = max(1, len(self.client.scheduler_info()["workers"]))
            zf = self.client.scatter(self.z, broadcast=True, hash=False)
            groups = [grp for grp in (self.rows[k::workers] for k in range(workers)) if grp]
            parts = self.client.gather([
                self.client.submit(_normal_part, self.spec, self.which,
                                   [self.x[r0:r1] for r0, r1 in grp], zf,
                                   [u[r0:r1] for r0, r1 in grp], pure=False)
                for grp in groups])
            g, ku = parts[0]
            for g_part, ku_part in parts[1:]:
                g += g_part
                ku += ku_part
        self.passes += 1
        return _symmetrised(g), ku

    def columns(self, idx: np.ndarray) -> np.ndarray:
        """K[:, idx]."""
        return np.concatenate(self._map(_columns_of, idx))

    def release(self) -> None:
        """Forget the cached tiles (here or on the cluster)."""
        self._tiles = None


def _accumulate(g: np.ndarray, ku: np.ndarray, tile: np.ndarray, u: np.ndarray) -> None:
    """g += tile' tile (its upper triangle, in place by BLAS syrk: g must be Fortran-ordered),
    ku += tile' u."""
    from scipy.linalg.blas import dsyrk

    out = dsyrk(1.0, tile, beta=1.0, c=g, trans=1, overwrite_c=1)
    if out is not g:  # pragma: no cover - f2py copied: g was not Fortran-contiguous
        raise AssertionError("the Gram accumulator must be a Fortran-ordered float64 array")
    ku += tile.T @ u


def _symmetrised(g: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose upper triangle syrk filled (in place)."""
    lower = np.tril_indices(g.shape[0], -1)
    g[lower] = g.T[lower]
    return g


def _normal_part(spec: KernelSpec, which: str, xs: list, z: np.ndarray,
                 us: list) -> tuple[np.ndarray, np.ndarray]:
    """(sum tile' tile, sum tile' u) over the row tiles xs (one worker's share)."""
    g = np.zeros((z.shape[0], z.shape[0]), order="F")
    ku = np.zeros((z.shape[0], us[0].shape[1]))
    for x, u in zip(xs, us):
        _accumulate(g, ku, _row_tile(spec, which, x, z), u)
    return g, ku


def conjugate_gradients(apply: Callable[[np.ndarray], np.ndarray], rhs: np.ndarray, *,
                        precondition: Callable[[np.ndarray], np.ndarray] | None = None,
                        tol: float, max_iter: int, what: str) -> tuple[np.ndarray, int, float]:
    """x with apply(x) = rhs (apply symmetric positive definite), each column of rhs its own
    conjugate-gradient run (vectorised).  Stops when every column's residual
    ||rhs - apply(x)|| / ||rhs|| is below ``tol``; raises ConvergenceError after
    ``max_iter`` iterations.  Returns (x, iterations, largest relative residual)."""
    b = rhs.reshape(rhs.shape[0], -1)
    norm = np.linalg.norm(b, axis=0)
    norm[norm == 0] = 1.0
    x = np.zeros_like(b)
    r = b.copy()
    z = precondition(r) if precondition else r
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    residual = float(np.max(np.linalg.norm(r, axis=0) / norm))
    it = 0
    while residual > tol:
        if it == max_iter:
            raise ConvergenceError(
                f"{what}: conjugate gradients did not converge in {max_iter} iterations "
                f"(relative residual {residual:.2e} > tol {tol:g}); raise max_iter, raise the "
                "ridge (a better-conditioned system), or use more centres"
            )
        ap = apply(p)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(rz > 0, rz / np.einsum("ij,ij->j", p, ap), 0.0)
        x += step * p
        r -= step * ap
        z = precondition(r) if precondition else r
        rz_new = np.einsum("ij,ij->j", r, z)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = z + np.where(rz > 0, rz_new / rz, 0.0) * p
        rz = rz_new
        it += 1
        residual = float(np.max(np.linalg.norm(r, axis=0) / norm))
        if not np.isfinite(residual):
            raise ConvergenceError(
                f"{what}: conjugate gradients broke down (non-finite residual after {it} "
                "iterations); the system is not positive definite: raise the ridge")
    return x.reshape(rhs.shape), it, residual


def gram(a: np.ndarray, rows: int = 1024) -> np.ndarray:
    """a' a, accumulated over blocks of ``rows`` rows of a by in-place syrk (a single
    syrk with a long inner dimension is what crashed the threaded OpenBLAS, see
    :func:`cholesky_lower`)."""
    g = np.zeros((a.shape[1], a.shape[1]), order="F")
    no_rhs = np.zeros((a.shape[1], 0))
    for r0 in range(0, a.shape[0], rows):
        block = a[r0:r0 + rows]
        _accumulate(g, no_rhs, block, block[:, :0])
    return _symmetrised(g)


def _upper_cholesky(matrix: np.ndarray, what: str) -> np.ndarray:
    """Upper-triangular T with T'T = matrix + a jitter of n eps max(diag) (the centres'
    kernel is positive semidefinite, often singular to rounding)."""
    m = matrix.shape[0]
    jitter = m * np.finfo(float).eps * max(float(np.max(np.diag(matrix))), 1e-300)
    try:
        return cholesky_lower(matrix + jitter * np.eye(m)).T
    except linalg.LinAlgError as exc:
        raise InvalidInputError(
            f"{what} is not positive definite even with a jitter of {jitter:.2e}; "
            "remove duplicate training points or use fewer centres"
        ) from exc


#: Cholesky factorisations of larger matrices go block by block (see :func:`cholesky_lower`).
CHOLESKY_BLOCK = 2048


def cholesky_lower(a: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L' = a, computed in place in ``a`` (returned).

    Up to 4 :data:`CHOLESKY_BLOCK` rows, LAPACK's potrf; beyond, a right-looking blocked
    factorisation (potrf of diagonal blocks, triangular solves, general matrix products
    for the trailing update).  The bundled multi-threaded OpenBLAS crashed the process
    (SIGSEGV in potrf's threaded syrk) on 17 000 x 17 000 and larger matrices with two
    threads here; the blocked form keeps every LAPACK call small and avoids syrk.
    Raises ``linalg.LinAlgError`` where ``a`` is not positive definite.
    """
    n, nb = a.shape[0], CHOLESKY_BLOCK
    if n <= 4 * nb:
        a[:] = linalg.cholesky(a, lower=True, check_finite=False)
        return a
    for k in range(0, n, nb):
        e = min(k + nb, n)
        l11 = linalg.cholesky(a[k:e, k:e], lower=True, check_finite=False)
        a[k:e, k:e] = l11
        a[k:e, e:] = 0.0
        if e < n:
            l21 = linalg.solve_triangular(l11, a[e:, k:e].T, lower=True,
                                          check_finite=False).T
            a[e:, k:e] = l21
            # a product with a copy: numpy would send l21 @ l21.T to syrk
            a[e:, e:] -= l21 @ np.ascontiguousarray(l21.T)
    return a


def pick_centres(n: int, m: int, seed: int | None) -> np.ndarray:
    """m distinct indices of 0..n-1, uniformly at random (sorted)."""
    return np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))


def falkon(k_nm: KernelOperator, k_mm: np.ndarray, y: np.ndarray, ridge: float, *,
           tol: float, max_iter: int) -> tuple[np.ndarray, SolveReport]:
    """beta with (K_nM' K_nM + lam K_MM) beta = K_nM' y (Falkon's Nystrom estimator).

    Preconditioner (Rudi et al. 2017, in this scaling): with K_MM = T'T and
    A'A = (n/M) T T' + lam I (upper Cholesky factors), K_nM' K_nM ~ (n/M) K_MM^2 makes
    H = K_nM' K_nM + lam K_MM ~ (AT)'(AT); CG runs on B' H B gamma = B' K_nM' y with
    B = T^-1 A^-1, and beta = B gamma.  K_nM' K_nM v is formed from K_nM's tiles where
    they fit the cache, else from G = K_nM' K_nM accumulated in one pass (n m^2 flops
    against one kernel evaluation per iteration).
    """
    n, m = k_nm.shape
    t = _upper_cholesky(k_mm, "the centres' kernel K_MM")
    a = _upper_cholesky((n / m) * gram(t.T) + ridge * np.eye(m), "Falkon's preconditioner")

    def b_apply(g):
        return linalg.solve_triangular(t, linalg.solve_triangular(a, g), check_finite=False)

    def bt_apply(w):
        return linalg.solve_triangular(
            a, linalg.solve_triangular(t, w, trans="T", check_finite=False),
            trans="T", check_finite=False)

    y2 = y.reshape(n, -1)
    if k_nm.cache:  # the tiles stay in memory: K_nM'(K_nM v) at each iteration
        def normal_product(v):
            return k_nm.gram(v)

        rhs = bt_apply(k_nm.rmatmat(y2))
    else:  # one pass: G = K_nM' K_nM (m x m) and K_nM' y, then iterations on G
        g_mat, kty = k_nm.normal_equations(y2)

        def normal_product(v):
            return g_mat @ v

        rhs = bt_apply(kty)

    def h_apply(g):
        v = b_apply(g)
        return bt_apply(normal_product(v) + ridge * (k_mm @ v))

    gamma, it, res = conjugate_gradients(h_apply, rhs, tol=tol, max_iter=max_iter,
                                         what="the Nystrom (Falkon) solve")
    beta = b_apply(gamma)
    return beta.reshape((m,) + y.shape[1:]), SolveReport("nystrom", it, res, tol, m)


def nystrom_cg(k_nn: KernelOperator, centres: np.ndarray, y: np.ndarray, ridge: float, *,
               tol: float, max_iter: int) -> tuple[np.ndarray, SolveReport]:
    """alpha with (K + lam I) alpha = y by preconditioned conjugate gradients, matrix-free.

    Preconditioner: P = L L' + lam I with L = K_nM T^-1 (K_MM = T'T), the Nystrom
    approximation of K; P^-1 r = (r - L (lam I + L'L)^-1 L' r) / lam (Woodbury).  Needs
    lam > 0.
    """
    if not ridge > 0:
        raise InvalidInputError("solver='cg' needs a ridge > 0 (K itself may be singular)")
    n = k_nn.shape[0]
    k_nm = k_nn.columns(centres)
    t = _upper_cholesky(k_nm[centres], "the centres' kernel K_MM")
    lmat = linalg.solve_triangular(t, k_nm.T, trans="T", check_finite=False).T  # K_nM T^-1
    del k_nm
    inner = (cholesky_lower(gram(lmat) + ridge * np.eye(lmat.shape[1])), True)

    def precondition(r):
        return (r - lmat @ linalg.cho_solve(inner, lmat.T @ r)) / ridge

    def apply(v):
        return k_nn.matmat(v) + ridge * v

    alpha, it, res = conjugate_gradients(apply, y.reshape(n, -1), precondition=precondition,
                                         tol=tol, max_iter=max_iter,
                                         what="the conjugate-gradient solve")
    return alpha.reshape(y.shape), SolveReport("cg", it, res, tol, len(centres))
