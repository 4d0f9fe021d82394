"""Mehler's expansion of a dual activation, for the fast path of the deep kernels.

With h_n(a) = E[s(sqrt(a) X) He_n(X)] / sqrt(n!), X ~ N(0, 1) (He_n the probabilists'
Hermite polynomials), Mehler's formula gives for (u, v) ~ N(0, [[a, c], [c, b]]),
rho = c / sqrt(ab),

    E[s(u) s(v)]   = sum_n h_n(a) h_n(b) rho^n,
    E[s'(u) s'(v)] = dE/dc = sum_n n h_n(a) h_n(b) rho^(n-1) / sqrt(ab)     (Price).

Both come from one Horner pass over n per pair.  For an entire activation of moderate
growth (gelu, erf, sin, cos, exp, gauss) the coefficients decay geometrically (like
(a/(1+a))^(n/2) for gelu, faster than any geometric rate for sin, cos, exp) even at
rho = +-1, so a few hundred terms reach rounding level for the variances of deep kernels.

The coefficients are computed by Gauss-Hermite quadrature with orthonormal Hermite
functions (stable at every node); a second rule with more nodes on a few probe variances
checks them, and the number of terms grows until the last ones are at rounding level.
The truncation point of each block of pairs comes from
the tails t_n(a) = (sum_{m>=n} h_m(a)^2)^(1/2) and Cauchy-Schwarz:

    |sum_{m>=n} h_m(a) h_m(b) rho^m| <= |rho|^n t_n(a) t_n(b),

and the same inequality bounds the sum's rounding by a few eps sqrt(E_aa E_bb), with
E_aa = sum_n h_n(a)^2 = E[s(u)^2].  A block's entries are sorted into |rho| levels
(``RHO_LEVELS``): each level has its own cut, so the bulk of a kernel matrix (|rho| <=
0.35) takes the fewest terms and only the entries above a level take the terms its cut
adds (Horner from the top level down, the state carried).  Each value is returned with
an absolute error bound (coefficient noise, tail, rounding), for 2-D blocks with sums
weighted by L^n at the entry's level L >= |rho| (vectors over rows and columns, Horner's
rounding by Cauchy-Schwarz), for flat pairs by their own |rho|^n where the cheap bound
(|rho| -> 1) is not small; the recursion of :mod:`hgmntk.block_kernels` carries it on; it
is infinite where a variance's coefficients failed their check or a pair's tail is above
rounding.  Only
activations whose s is entire (no Heaviside, Max, Abs, sign, Piecewise) get this evaluator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.special

from .integrator import PairBlock
from .ld_matmul import matmul

#: Below this relative error bound the cheap bounds suffice; above it the rho-weighted
#: magnitude sums are formed for a tighter bound.
REL_ERROR = 5e-15
#: The sums are cut where the Cauchy-Schwarz bound of their tail falls below this
#: (relative to sqrt(E_aa E_bb)).
COEFF_TOL = 2e-16
EPS = float(np.finfo(float).eps)
#: Largest number of terms tried.
MAX_TERMS = 2048
#: |rho| levels of a block's Horner passes: the entries up to a level get that level's
#: (shorter) cut; the bulk of a kernel matrix has |rho| <= 0.5, and its diagonal and
#: near-duplicates (|rho| -> 1) need the most terms.
RHO_LEVELS = (0.35, 0.6, 0.8)
_NOT_ENTIRE = re.compile(r"Heaviside|Max|Min|Abs|sign|Piecewise|DiracDelta|floor|ceiling")


def is_entire_expression(expression: str | None) -> bool:
    """Whether the activation's expression is built from entire functions only (a
    syntactic test: no Heaviside, Max, Min, Abs, sign, Piecewise, DiracDelta)."""
    return bool(expression) and _NOT_ENTIRE.search(expression) is None


@lru_cache(maxsize=64)
def gauss_hermite_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``nodes``-point Gauss rule of N(0, 1) in numpy longdouble:
    scipy's nodes refined by Newton's method on the orthonormal Hermite polynomial
    psi_M (psi_M' = sqrt(M) psi_(M-1)), weights 1 / sum_{n<M} psi_n(x_k)^2 (Christoffel).
    Float64 rules carry ~1e-14 relative errors in their weights, which would limit the
    coefficients to that level.  The rule is symmetric, so only the nodes x >= 0 are
    refined (x = 0 is exact for odd M), and two Newton steps take scipy's ~1e-14 to
    long double's precision (the convergence is quadratic)."""
    ld = np.longdouble
    full = scipy.special.roots_hermitenorm(nodes)[0]
    x = np.abs(full[nodes // 2:]).astype(ld)  # x >= 0, ascending (0 first for odd M)
    free = slice(nodes % 2, None)  # the odd rule's node 0 is exact
    roots = np.sqrt(np.arange(nodes + 1, dtype=ld))
    # psi_n at the outermost nodes of rules beyond ~5000 points exceeds long double's range
    # (~exp(x^2/4)); there the Newton step is skipped (scipy's node stands) and the weight,
    # below 1e-4900, is 0: no overflow warning reaches the caller
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(2):
            t = x[free]
            p0, p1 = np.ones_like(t), t.copy()
            for n in range(1, nodes):
                p0, p1 = p1, (t * p1 - roots[n] * p0) / roots[n + 1]
            step = p1 / (roots[nodes] * p0)
            x[free] = np.where(np.isfinite(step), t - step, t)
        p0, p1 = np.ones_like(x), x.copy()
        total = p0 * p0 + p1 * p1
        for n in range(1, nodes - 1):
            p0, p1 = p1, (x * p1 - roots[n] * p0) / roots[n + 1]
            total += p1 * p1
    w = np.where(np.isfinite(total), 1 / total, ld(0))
    mirror = slice(None, -1 if nodes % 2 else None)  # node 0 (odd M) once
    return (np.concatenate([-x[::-1][mirror], x]), np.concatenate([w[::-1][mirror], w]))


@lru_cache(maxsize=64)
def _hermite_functions(terms: int, nodes: int, dtype=float) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """Gauss-Hermite nodes x_k (weight N(0,1)), sqrt(w_k), and the matrix
    Phi[n, k] = sqrt(w_k) He_n(x_k)/sqrt(n!) for n < terms, by the stable recurrence of the
    orthonormal Hermite functions in longdouble, rounded to ``dtype`` at the end."""
    x, w = gauss_hermite_rule(nodes)
    sw = np.sqrt(w)
    return x.astype(dtype), sw.astype(dtype), hermite_function_matrix(x, sw, terms).astype(dtype)


def hermite_function_matrix(x: np.ndarray, sw: np.ndarray, terms: int) -> np.ndarray:
    """Phi[n, k] = sw_k He_n(x_k)/sqrt(n!) for n < terms (longdouble): the orthonormal
    Hermite functions psi_(n+1) = (x psi_n - sqrt(n) psi_(n-1)) / sqrt(n+1), started at sw,
    stable where He_n(x_k) alone would overflow."""
    ld = np.longdouble
    x, sw = np.asarray(x, dtype=ld), np.asarray(sw, dtype=ld)
    roots = np.sqrt(np.arange(terms + 1, dtype=ld))
    phi = np.empty((terms, x.size), dtype=ld)
    phi[0] = sw
    if terms > 1:
        phi[1] = x * sw
    for n in range(1, terms - 1):
        phi[n + 1] = (x * phi[n] - roots[n] * phi[n - 1]) / roots[n + 1]
    return phi


def horner_shift(e: np.ndarray, de: np.ndarray, d2: np.ndarray, rho: np.ndarray) -> None:
    """One Horner step, in place, of e(rho) = sum_n c_n rho^n with e' and e''/2:
    (e'', e', e) <- (rho e'' + e', rho e' + e, rho e); the caller then adds c_n to e.
    (Shared by the plain and the kinked Mehler evaluators.)"""
    d2 *= rho
    d2 += de
    de *= rho
    de += e
    e *= rho


def level_horner(ha: np.ndarray, hb: np.ndarray, rho: np.ndarray, absrho: np.ndarray,
                 levels, cuts, level=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(e, e', e''/2) of e(rho) = sum_n ha[n] hb[n] rho^n by Horner over a block (2-D:
    ha[n] over the rows, hb[n] over the columns; or flat pairs), each entry with only the
    terms of its |rho| level: the entries up to levels[k] need cuts[k] terms (cuts
    increasing).  From the top level down, the terms cuts[k-1]..cuts[k]-1 run on the
    entries above levels[k-1] (gathered), carrying the Horner state of the entries above
    the next level; the whole block's pass starts where they leave it.  (Shared with
    :mod:`hgmntk.kink_mehler`.)  2-D float64 blocks run the compiled twin
    :func:`hgmntk.fused.level_horner` (the same steps per entry), with each entry's level
    index ``level`` where the caller has it (else found here)."""
    if rho.ndim == 2 and rho.dtype == ha.dtype == hb.dtype == np.float64:
        # 2-D float64 blocks: the compiled twin, each entry with its level's cut
        from . import fused

        if level is None:
            level = np.searchsorted(np.asarray(levels[:-1], dtype=float), absrho, side="left")
        cut = np.asarray(cuts, dtype=np.int64)[level]
        return fused.level_horner(np.ascontiguousarray(ha.T), np.ascontiguousarray(hb.T),
                                  np.ascontiguousarray(rho), cut)
    return array_level_horner(ha, hb, rho, absrho, levels, cuts)


def array_level_horner(ha, hb, rho, absrho, levels, cuts):
    """:func:`level_horner` in numpy expressions (flat pairs, long double)."""
    flat = rho.ndim == 1
    e, de, d2 = (np.zeros(rho.shape, dtype=rho.dtype) for _ in range(3))
    carried = None
    for k in range(len(levels) - 1, 0, -1):
        at = np.nonzero(absrho > levels[k - 1])  # flat blocks: at = (pairs,)
        flat_at = np.ravel_multi_index(at, rho.shape)
        rh = rho[at]
        state = [np.zeros(rh.shape, dtype=rho.dtype) for _ in range(3)]
        if carried is not None:  # the entries above the next level are among these
            inside = np.searchsorted(flat_at, carried[0])
            for mine, theirs in zip(state, carried[1:]):
                mine[inside] = theirs
        lo, top = int(cuts[k - 1]), int(cuts[k])
        hai, hbj = ha[lo:top, at[0]], hb[lo:top, at[-1]]
        eh, deh, d2h = state
        for n in range(top - lo - 1, -1, -1):
            horner_shift(eh, deh, d2h, rh)
            eh += hai[n] * hbj[n]
        carried = (flat_at, eh, deh, d2h)
    if carried is not None:
        for full, part in zip((e, de, d2), carried[1:]):
            full.flat[carried[0]] = part
    for n in range(int(cuts[0]) - 1, -1, -1):
        horner_shift(e, de, d2, rho)
        e += ha[n] * hb[n] if flat else ha[n][:, None] * hb[n][None, :]
    return e, de, d2


def _node_values(s, variances: np.ndarray, nodes: int, terms: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """(Phi, sqrt(w_k) s(sqrt(a) x_k)) in the float type of ``variances``."""
    dtype = np.asarray(variances).dtype.type
    x, sw, phi = _hermite_functions(terms, nodes, dtype)
    with np.errstate(all="ignore"):
        values = s(np.sqrt(variances)[None, :] * x[:, None]) * sw[:, None]
    values[~np.isfinite(values)] = np.nan
    return phi, values


def hermite_coefficients(s, variances: np.ndarray, terms: int, nodes: int) -> np.ndarray:
    """h_n(a) = E[s(sqrt(a) X) He_n(X)]/sqrt(n!) for n < terms and every a (shape
    (terms, len(variances))) by ``nodes``-point Gauss-Hermite quadrature, in the float
    type of ``variances`` (float64 or longdouble)."""
    phi, values = _node_values(s, variances, nodes, terms)
    return matmul(phi, values)


@dataclass
class _Layer:
    """Coefficients for one layer's variances (rows, then columns)."""

    h: np.ndarray  # (terms, n): h_n(a)
    tail: np.ndarray  # (terms + 1, n): t_n = (sum_{m>=n} h_m^2)^(1/2) / sqrt(E_aa)
    dtail: np.ndarray  # (terms + 1, n): (sum_{m>=n} m h_m^2)^(1/2) / dnorm
    norm: np.ndarray  # sqrt(E_aa) = (sum_n h_n^2)^(1/2)
    dnorm: np.ndarray  # (sum_n n h_n^2)^(1/2) = sqrt(a E[s'(u)^2])
    l1: np.ndarray  # sum_n |h_n|
    dl1: np.ndarray  # sum_n n |h_n|
    good: np.ndarray  # the coefficients passed their check


def _tails(weighted: np.ndarray, norm: np.ndarray) -> np.ndarray:
    tail = np.sqrt(np.cumsum(weighted[::-1], axis=0)[::-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.vstack([tail, np.zeros((1, tail.shape[1]))]) / norm


def _block_tails(layer: _Layer, ia: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, ...]:
    """max t_n(a) over the columns ia, the same over ib, and the derivative's tails (a
    flat block names each column once per pair: the distinct ones are gathered)."""
    ia, ib = np.unique(ia), np.unique(ib)
    return (np.max(layer.tail[:, ia], axis=1), np.max(layer.tail[:, ib], axis=1),
            np.max(layer.dtail[:, ia], axis=1), np.max(layer.dtail[:, ib], axis=1))


def _cut(tails: tuple[np.ndarray, ...], r: float) -> int:
    """The smallest n with r^(n-1) max t_n(a) max t_n(b) (and the same for the
    derivative's tails) at most ``COEFF_TOL``, ``tails`` from :func:`_block_tails`."""
    ta, tb, dta, dtb = tails
    n_all = np.arange(ta.size)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        rn = r ** np.maximum(n_all - 1, 0)
        bound = np.maximum(rn * ta * tb, rn * dta * dtb)
    below = np.flatnonzero(bound <= COEFF_TOL)
    return int(below[0]) if below.size else ta.size - 1


#: Horner's rounding: a few roundings of the partial sums (the terms decay).
HORNER_ROUNDINGS = 4.0


def level_factor(values: np.ndarray, levels, counts, level: np.ndarray, rows: bool,
                 derivative: bool = False, root: bool = False) -> np.ndarray:
    """A row or column factor of the error bounds by |rho| level, on a 2-D block: for
    each entry (its level index in ``level``, rows x columns) sum_{n < counts[k]} w(n)
    values[n, i] at its level L_k, with w(n) = L_k^n (or n L_k^(n-1) with
    ``derivative``), i the entry's row (``rows``) or column; its square root with
    ``root`` (Cauchy-Schwarz factors).  Shared with :mod:`hgmntk.kink_mehler`."""
    table = []
    for r, c in zip(levels, counts):
        n = np.arange(int(c))
        with np.errstate(under="ignore"):
            weights = n * r ** np.maximum(n - 1, 0) if derivative else r ** n
        table.append(weights @ values[: int(c)])
    table = np.sqrt(np.array(table)) if root else np.array(table)
    index = np.arange(table.shape[1])
    return table[level, index[:, None] if rows else index[None, :]]


def _level_bounds(layer: _Layer, ia, ib, ha, hb, levels, cuts, level, tail_e, tail_d):
    """Error bounds of a 2-D block's sums, each entry at its |rho| level L >= |rho| (with
    that level's cut c): coefficient noise EPS (|s_a| sum_n |h_n(b)| L^n + |s_b| sum_n
    |h_n(a)| L^n), the tail, and Horner's rounding of sum_n |h_n(a) h_n(b)| L^n <=
    (sum_n h_n(a)^2 L^n)^(1/2) (sum_n h_n(b)^2 L^n)^(1/2) (Cauchy-Schwarz); the same for
    the derivative's sums with n L^(n-1).  Every factor is a vector over the rows or the
    columns (a few matrix-vector products per level), so no per-term pass is needed."""
    abs_a, abs_b = np.abs(ha), np.abs(hb)

    def factor(values, row_side, derivative=False, root=False):
        return level_factor(values, levels, cuts, level, row_side, derivative, root)

    na, nb = layer.norm[ia][:, None], layer.norm[ib][None, :]
    da, db = layer.dnorm[ia][:, None], layer.dnorm[ib][None, :]
    rounding = HORNER_ROUNDINGS * EPS
    err_e = (EPS * (na * factor(abs_b, False) + nb * factor(abs_a, True)) + tail_e * na * nb
             + rounding * factor(abs_a**2, True, root=True)
             * factor(abs_b**2, False, root=True))
    err_d = (EPS * (na * factor(abs_b, False, True) + nb * factor(abs_a, True, True))
             + tail_d * da * db
             + rounding * factor(abs_a**2, True, True, True)
             * factor(abs_b**2, False, True, True))
    return err_e, err_d


def _pair_bounds(layer: _Layer, rho, ia, ib, ha, hb, n_hi, tail_e, tail_d, ok, e, de):
    """Error bounds of flat pairs' sums: the cheap ones with |rho| -> 1 (coefficient
    noise EPS (|s_a| sum_n |h_n(b)| + |s_b| sum_n |h_n(a)|), the tolerance, Horner's
    rounding of |s_a||s_b|) first, then, where they are not small enough, sums weighted
    by each pair's own |rho|^n."""
    na, nb = layer.norm[ia], layer.norm[ib]
    da, db = layer.dnorm[ia], layer.dnorm[ib]
    rounding = HORNER_ROUNDINGS * EPS
    err_e = EPS * (na * layer.l1[ib] + nb * layer.l1[ia]) + (COEFF_TOL + rounding) * na * nb
    err_d = (EPS * (na * layer.dl1[ib] + nb * layer.dl1[ia])
             + (COEFF_TOL + rounding) * da * db)
    recheck = ok & ((err_e > REL_ERROR * np.abs(e)) | (err_d > REL_ERROR * np.abs(de)))
    if np.any(recheck):
        at = np.flatnonzero(recheck)
        r = np.abs(rho[at])
        mag, dmag = np.zeros(at.size), np.zeros(at.size)
        la, dla, lb, dlb = (np.zeros(at.size) for _ in range(4))
        for n in range(n_hi - 1, -1, -1):
            dmag = dmag * r + mag
            dla = dla * r + la
            dlb = dlb * r + lb
            xa, xb = np.abs(ha[n][at]), np.abs(hb[n][at])
            mag = mag * r + xa * xb
            la = la * r + xa
            lb = lb * r + xb
        # the tail: each pair's own Cauchy-Schwarz bound at the cut (not the
        # tolerance), which vanishes with rho like the sum itself
        err_e[at] = (EPS * (na[at] * lb + nb[at] * la) + tail_e[at] * na[at] * nb[at]
                     + rounding * mag)
        err_d[at] = (EPS * (na[at] * dlb + nb[at] * dla) + tail_d[at] * da[at] * db[at]
                     + rounding * dmag)
    return err_e, err_d


class MehlerDual:
    """Block evaluator of E[s s] and E[s' s'] of an entire activation (module docstring).

    ``prepare(sa, sb)`` computes the coefficients for one layer's variances (sa, sb the
    square roots of the rows' and the columns' variances) and returns the per-layer
    evaluator ``f(block, rows, cols, key)`` (rows, cols: the block's slices).
    """

    def __init__(self, s, s_ld=None):
        self.s = s
        self.s_ld = s_ld
        self._cache: dict[bytes, _Layer] = {}
        self._twin: LongDoubleMehler | None = None

    def extended(self) -> LongDoubleMehler | None:
        """The expansion in numpy longdouble (:class:`LongDoubleMehler`, from the
        longdouble activation ``s_ld``), for the few pairs whose float64 bound is too weak
        after a cancellation between layers; None without ``s_ld`` or where longdouble is
        no wider than float64."""
        if self.s_ld is None or np.finfo(np.longdouble).eps >= EPS:
            return None
        if self._twin is None:
            self._twin = LongDoubleMehler(self.s_ld)
        return self._twin

    def collinear(self, variances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(E[s(u)^2], E[s'(u)^2], ok) for u ~ N(0, a) at every variance a: sum_n h_n(a)^2
        and sum_n n h_n(a)^2 / a, the diagonal of the deep kernels (positive sums, accurate
        to rounding where the coefficients passed their check, ``ok``)."""
        a = np.asarray(variances, dtype=float)
        unique, where = np.unique(a, return_inverse=True)
        layer = self.coefficients(unique)
        norm, dnorm, good = layer.norm[where], layer.dnorm[where], layer.good[where]
        return norm**2, dnorm**2 / a, good & (a > 0)

    def coefficients(self, variances: np.ndarray) -> _Layer:
        """:meth:`compute_coefficients`, cached for the last few variance arrays."""
        variances = np.ascontiguousarray(variances, dtype=float)
        key = variances.tobytes()
        if key not in self._cache:
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self.compute_coefficients(variances)
        return self._cache[key]

    def compute_coefficients(self, variances: np.ndarray) -> _Layer:
        """Coefficients, their tails and checks for an array of variances.

        The number of terms doubles (from 64, up to ``MAX_TERMS``) until the last
        coefficients of a few probe variances (smallest, largest, quantiles) are at
        rounding level, where a second quadrature with more nodes confirms them; then all
        variances are done at once, and each is checked for the same convergence."""
        probe = np.unique(np.quantile(variances, np.linspace(0, 1, 9), method="nearest"))
        terms = 64
        while True:
            nodes = terms + 96
            h = hermite_coefficients(self.s, probe, terms, nodes)
            norm = np.sqrt(np.sum(h * h, axis=0))
            with np.errstate(invalid="ignore"):
                done = np.max(np.abs(h[-32:]), axis=0) <= 8 * EPS * norm
            if np.all(done) or terms >= MAX_TERMS:
                break
            terms *= 2
        finer = hermite_coefficients(self.s, probe, terms, nodes + nodes // 2)
        with np.errstate(invalid="ignore"):
            agree = np.max(np.abs(finer - h), axis=0) <= 8 * EPS * norm
        h = hermite_coefficients(self.s, variances, terms, nodes)
        n = np.arange(terms)[:, None]
        sq, dsq = h * h, n * h * h
        norm, dnorm = np.sqrt(np.sum(sq, axis=0)), np.sqrt(np.sum(dsq, axis=0))
        with np.errstate(invalid="ignore"):
            good = np.max(np.abs(h[-32:]), axis=0) <= 8 * EPS * norm
        good &= np.all(np.isfinite(h), axis=0) & (norm > 0) & (dnorm > 0)
        if not np.all(agree & done):  # quadrature errors grow with the variance
            good &= variances < np.min(probe[~(agree & done)])
        l1, dl1 = np.sum(np.abs(h), axis=0), np.sum(n * np.abs(h), axis=0)
        return _Layer(h, _tails(sq, norm), _tails(dsq, dnorm), norm, dnorm, l1, dl1, good)

    def prepare(self, sa: np.ndarray, sb: np.ndarray):
        """The evaluator for one layer: rows with sqrt-variances ``sa``, columns ``sb``."""
        variances = np.concatenate([sa, sb]) ** 2
        unique, where = np.unique(variances, return_inverse=True)
        layer = self.coefficients(unique)
        rows, cols = where[: sa.size], where[sa.size :]
        return lambda block, r, c, key: self._evaluate(layer, rows[r], cols[c], block, key)

    def _evaluate(self, layer: _Layer, ia, ib, block: PairBlock, key: str):
        cached = block.cache.get("mehler")
        if cached is None:
            cached = block.cache["mehler"] = self._sums(layer, block, ia, ib)
        e, err_e, de, err_d, slope = cached
        return (e, err_e, None) if key == "ss" else (de, err_d, slope)

    @staticmethod
    def _sums(layer: _Layer, block: PairBlock, ia: np.ndarray, ib: np.ndarray):
        """One Horner pass for E, dE/drho and d2E/drho2 over a 2-D block (ia, ib: the
        coefficient columns of its rows and columns), with error bounds (module docstring):
        E' = dE/dc and its slope dE'/dc = E''/(ab)."""
        rho = np.asarray(block.rho, dtype=float)  # longdouble pairs: float64 sums
        flat = rho.ndim == 1

        def outer(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return x * y if flat else x[:, None] * y[None, :]

        # cuts: the smallest n with r^n t_n(a) t_n(b) (and the derivative's tail) below
        # the tolerance over the block, for r = each level of RHO_LEVELS below max |rho|
        # and for max |rho| itself: the entries up to a level need only its cut
        absrho = np.abs(rho)
        r_hi = float(np.max(absrho))
        levels = [r for r in RHO_LEVELS if r < r_hi] + [r_hi]
        tails = _block_tails(layer, ia, ib)
        cuts = np.maximum.accumulate([_cut(tails, r) for r in levels])
        n_hi = int(cuts[-1])
        h = layer.h
        ha, hb = h[:n_hi, ia], h[:n_hi, ib]
        # each pair's |rho| level: its cut for the sums and its own tail bound
        level = np.searchsorted(np.asarray(levels[:-1]), absrho, side="left")
        e, de, d2 = level_horner(ha, hb, rho, absrho, levels, cuts, level)
        d2 *= 2
        cut = cuts[level]
        with np.errstate(under="ignore"):
            rn = absrho ** np.maximum(cut - 1, 0)
        ca, cb = (ia, ib) if flat else (ia[:, None], ib[None, :])
        tail_e = rn * layer.tail[cut, ca] * layer.tail[cut, cb]
        tail_d = rn * layer.dtail[cut, ca] * layer.dtail[cut, cb]
        tail = np.maximum(tail_e, tail_d)
        ok = outer(layer.good[ia], layer.good[ib]) & (tail <= COEFF_TOL)
        if flat:
            err_e, err_d = _pair_bounds(layer, rho, ia, ib, ha, hb, n_hi, tail_e, tail_d, ok,
                                        e, de)
        else:
            err_e, err_d = _level_bounds(layer, ia, ib, ha, hb, levels, cuts, level, tail_e,
                                         tail_d)
        err_e[~ok] = np.inf
        err_d[~ok] = np.inf
        sab = np.asarray(block.sa * block.sb, dtype=float)
        de /= sab
        err_d /= sab
        slope = np.abs(d2) / (sab * sab) + err_d / sab
        return e, err_e, de, err_d, slope


#: Largest Gauss-Hermite rule the longdouble expansion tries.
MAX_NODES_LD = 4096


class LongDoubleMehler:
    """Mehler's expansion in numpy longdouble for a few pairs (flat blocks): the tier of
    :mod:`hgmntk.block_kernels` between the float64 one and the careful path.

    Per call, only the terms a block needs are formed: with r = max |rho| over the block,
    T terms such that T r^(T-1) <= eps/8 and T >= 1/ln(1/r) (so that m r^(m-1) decreases
    beyond T).  Each variance's coefficients h_n (n < T) and E_aa = E[s(u)^2] come from one
    Gauss-Hermite rule, whose size doubles until two rules (M and 3M/2 nodes) agree to
    8 eps sqrt(E_aa) on probe variances.  With t(a) = (E_aa - sum_{n<T} h_n^2 + 16 eps
    E_aa)^(1/2) >= (sum_{n>=T} h_n^2)^(1/2), Cauchy-Schwarz bounds the tails of E and of
    dE/drho by |rho|^T t(a) t(b) and T |rho|^(T-1) t(a) t(b); coefficient noise
    (16 eps sqrt(E_aa) each) and Horner's rounding are weighted by |rho|^n per pair.
    """

    def __init__(self, s_ld):
        self.s = s_ld
        self.eps = float(np.finfo(np.longdouble).eps)
        self._cache: dict[tuple[bytes, int], tuple] = {}

    def _rule_size(self, variances: np.ndarray, terms: int) -> tuple[int, float]:
        """Nodes for ``terms`` coefficients of the largest variances, and the largest
        variance below which two rules agree (inf if all probes do)."""
        probe = np.unique(np.quantile(variances, np.linspace(0, 1, 9), method="nearest"))
        nodes = max(128, terms + 32)
        while True:
            coarse = self._moments(probe, terms, nodes)
            fine = self._moments(probe, terms, nodes + nodes // 2)
            norm = np.sqrt(fine[1])
            with np.errstate(invalid="ignore"):
                agree = (np.max(np.abs(fine[0] - coarse[0]), axis=0) <= 8 * self.eps * norm) & (
                    np.abs(fine[1] - coarse[1]) <= 8 * self.eps * fine[1])
            if np.all(agree) or nodes >= MAX_NODES_LD:
                limit = np.inf if np.all(agree) else float(np.min(probe[~agree]))
                return nodes + nodes // 2, limit
            nodes *= 2

    def _moments(self, variances: np.ndarray, terms: int, nodes: int):
        """(h_n for n < terms, E_aa) by the ``nodes``-point rule."""
        phi, values = _node_values(self.s, variances, nodes, terms)
        return matmul(phi, values), np.sum(values * values, axis=0)

    def _layer(self, variances: np.ndarray, terms: int):
        """(h, sqrt(E_aa), tail bound t, good) for unique longdouble variances."""
        key = (variances.tobytes(), terms)
        if key not in self._cache:
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            nodes, limit = self._rule_size(variances, terms)
            h, e_aa = self._moments(variances, terms, nodes)
            rest = np.maximum(e_aa - np.sum(h * h, axis=0), 0) + 16 * self.eps * e_aa
            good = np.isfinite(e_aa) & (e_aa > 0) & np.all(np.isfinite(h), axis=0)
            good &= variances < limit
            self._cache[key] = (h, np.sqrt(e_aa), np.sqrt(rest), good)
        return self._cache[key]

    def second_moments(self, variances) -> tuple[np.ndarray, np.ndarray]:
        """(E[s(u)^2] for u ~ N(0, a), ok) in longdouble: the diagonal of the pairs that
        take this tier (a float64 diagonal would carry its rounding into them)."""
        a = np.asarray(variances, dtype=np.longdouble)
        unique, where = np.unique(a, return_inverse=True)
        _, norm, _, good = self._layer(unique, 2)
        return (norm * norm)[where], (good & (unique > 0))[where]

    @staticmethod
    def _terms(r: float, tol: float) -> int:
        if r <= 0:
            return 2
        least = 1 / np.log(1 / r) if r < 1 else np.inf
        for t in range(2, MAX_TERMS + 1):
            if t >= least and t * r ** (t - 1) <= tol:
                return t
        return MAX_TERMS

    def prepare(self, sa, sb):
        """The evaluator of a layer; it takes each flat block's own (longdouble) variances,
        so ``sa``, ``sb`` (float64) are not used."""
        return lambda block, rows, cols, key: self._evaluate(block, key)

    def _evaluate(self, block: PairBlock, key: str):
        cached = block.cache.get("mehler-ld")
        if cached is None:
            cached = block.cache["mehler-ld"] = self._sums(block)
        e, err_e, de, err_d, slope = cached
        return (e, err_e, None) if key == "ss" else (de, err_d, slope)

    def _sums(self, block: PairBlock):
        ld = np.longdouble
        eps = self.eps
        rho = np.asarray(block.rho, dtype=ld)
        sa, sb = np.asarray(block.sa, dtype=ld), np.asarray(block.sb, dtype=ld)
        unique, where = np.unique(np.concatenate([sa * sa, sb * sb]), return_inverse=True)
        ia, ib = where[: sa.size], where[sa.size:]
        r = np.abs(rho)
        terms = self._terms(float(np.max(r)) if r.size else 0.0, eps / 8)
        h, norm, rest, good = self._layer(unique, terms)
        ha, hb = h[:, ia], h[:, ib]
        e, de, d2 = (np.zeros(rho.shape, ld) for _ in range(3))
        mag, dmag, la, lb, dla, dlb = (np.zeros(rho.shape, ld) for _ in range(6))
        for n in range(terms - 1, -1, -1):
            d2 = d2 * rho + de
            de = de * rho + e
            e = e * rho + ha[n] * hb[n]
            xa, xb = np.abs(ha[n]), np.abs(hb[n])
            dmag = dmag * r + mag
            dla = dla * r + la
            dlb = dlb * r + lb
            mag = mag * r + xa * xb
            la = la * r + xa
            lb = lb * r + xb
        d2 *= 2
        na, nb = norm[ia], norm[ib]
        with np.errstate(under="ignore"):
            tails = rest[ia] * rest[ib]
            tail_e = r**terms * tails
            tail_d = terms * r ** (terms - 1) * tails
            tail_2 = terms * terms * r ** max(terms - 2, 0) * tails
        noise = 16 * eps
        err_e = noise * (na * lb + nb * la) + 4 * eps * mag + tail_e
        err_d = noise * (na * dlb + nb * dla) + 4 * eps * dmag + tail_d
        ok = good[ia] & good[ib]
        err_e[~ok] = np.inf
        err_d[~ok] = np.inf
        sab = sa * sb
        de /= sab
        err_d /= sab
        slope = (np.abs(d2) + tail_2) / (sab * sab) + err_d / sab
        return e, err_e, de, err_d, slope
