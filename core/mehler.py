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
E_aa = sum_n h_n(a)^2 = E[s(u)^2].  Each value is returned with an absolute error bound
(coefficient noise, tail, rounding; sums weighted by |rho|^n where the cheap bound is not
small) that the recursion of :mod:`hgmntk.block_kernels` carries on; it is infinite where
a variance's coefficients failed their check or a pair's tail is above rounding.  Only
activations whose s is entire (no Heaviside, Max, Abs, sign, Piecewise) get this evaluator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.special

from .integrator import PairBlock

#: Below this relative error bound the cheap bounds suffice; above it the rho-weighted
#: magnitude sums are formed for a tighter bound.
REL_ERROR = 5e-15
#: The sums are cut where the Cauchy-Schwarz bound of their tail falls below this
#: (relative to sqrt(E_aa E_bb)).
COEFF_TOL = 2e-16
EPS = float(np.finfo(float).eps)
#: Largest number of terms tried.
MAX_TERMS = 2048
_NOT_ENTIRE = re.compile(r"Heaviside|Max|Min|Abs|sign|Piecewise|DiracDelta|floor|ceiling")


def is_entire_expression(expression: str | None) -> bool:
    """Whether the activation's expression is built from entire functions only (a
    syntactic test: no Heaviside, Max, Min, Abs, sign, Piecewise, DiracDelta)."""
    return bool(expression) and _NOT_ENTIRE.search(expression) is None


def gauss_hermite_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``nodes``-point Gauss rule of N(0, 1) in numpy longdouble:
    scipy's nodes refined by Newton's method on the orthonormal Hermite polynomial
    psi_M (psi_M' = sqrt(M) psi_(M-1)), weights 1 / sum_{n<M} psi_n(x_k)^2 (Christoffel).
    Float64 rules carry ~1e-14 relative errors in their weights, which would limit the
    coefficients to that level."""
    ld = np.longdouble
    x = scipy.special.roots_hermitenorm(nodes)[0].astype(ld)
    roots = np.sqrt(np.arange(nodes + 1, dtype=ld))
    for _ in range(3):
        p0, p1 = np.ones_like(x), x.copy()
        for n in range(1, nodes):
            p0, p1 = p1, (x * p1 - roots[n] * p0) / roots[n + 1]
        x = x - p1 / (roots[nodes] * p0)
    p0, p1 = np.ones_like(x), x.copy()
    total = p0 * p0 + p1 * p1
    for n in range(1, nodes - 1):
        p0, p1 = p1, (x * p1 - roots[n] * p0) / roots[n + 1]
        total += p1 * p1
    return x, 1 / total


@lru_cache(maxsize=8)
def _hermite_functions(terms: int, nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes x_k (weight N(0,1)), sqrt(w_k), and the matrix
    Phi[n, k] = sqrt(w_k) He_n(x_k)/sqrt(n!) for n < terms, by the stable recurrence of the
    orthonormal Hermite functions in longdouble, rounded to float64 at the end."""
    ld = np.longdouble
    x, w = gauss_hermite_rule(nodes)
    sw = np.sqrt(w)
    roots = np.sqrt(np.arange(terms + 1, dtype=ld))
    phi = np.empty((terms, nodes), dtype=ld)
    phi[0] = sw
    if terms > 1:
        phi[1] = x * sw
    for n in range(1, terms - 1):
        phi[n + 1] = (x * phi[n] - roots[n] * phi[n - 1]) / roots[n + 1]
    return x.astype(float), sw.astype(float), phi.astype(float)


def hermite_coefficients(s, variances: np.ndarray, terms: int, nodes: int) -> np.ndarray:
    """h_n(a) = E[s(sqrt(a) X) He_n(X)]/sqrt(n!) for n < terms and every a (shape
    (terms, len(variances))) by ``nodes``-point Gauss-Hermite quadrature."""
    x, sw, phi = _hermite_functions(terms, nodes)
    with np.errstate(all="ignore"):
        values = s(np.sqrt(variances)[None, :] * x[:, None]) * sw[:, None]
    values[~np.isfinite(values)] = np.nan
    return phi @ values


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


class MehlerDual:
    """Block evaluator of E[s s] and E[s' s'] of an entire activation (module docstring).

    ``prepare(sa, sb)`` computes the coefficients for one layer's variances (sa, sb the
    square roots of the rows' and the columns' variances) and returns the per-layer
    evaluator ``f(block, rows, cols, key)`` (rows, cols: the block's slices).
    """

    def __init__(self, s):
        self.s = s
        self._cache: dict[bytes, _Layer] = {}

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

        # cut: the smallest n with max |rho|^n t_n(a) t_n(b) (and the derivative's tail)
        # below the tolerance over the block
        r = float(np.max(np.abs(rho)))
        n_all = np.arange(layer.tail.shape[0])
        with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
            rn = r ** np.maximum(n_all - 1, 0)
            bound = np.maximum(
                rn * np.max(layer.tail[:, ia], axis=1) * np.max(layer.tail[:, ib], axis=1),
                rn * np.max(layer.dtail[:, ia], axis=1) * np.max(layer.dtail[:, ib], axis=1),
            )
        below = np.flatnonzero(bound <= COEFF_TOL)
        n_cut = int(below[0]) if below.size else layer.h.shape[0]
        h = layer.h
        ha, hb = h[:n_cut, ia], h[:n_cut, ib]
        e = np.zeros(rho.shape)
        de = np.zeros(rho.shape)
        d2 = np.zeros(rho.shape)
        for n in range(n_cut - 1, -1, -1):
            d2 *= rho
            d2 += de
            de *= rho
            de += e
            e *= rho
            e += outer(ha[n], hb[n])
        d2 *= 2
        # each pair's own tail bound at the cut (the cut is shared by the block)
        with np.errstate(under="ignore"):
            rn = np.abs(rho) ** max(n_cut - 1, 0)
        tail = rn * np.maximum(outer(layer.tail[n_cut, ia], layer.tail[n_cut, ib]),
                               outer(layer.dtail[n_cut, ia], layer.dtail[n_cut, ib]))
        ok = outer(layer.good[ia], layer.good[ib]) & (tail <= COEFF_TOL)
        na = layer.norm[ia] if flat else layer.norm[ia][:, None]
        nb = layer.norm[ib] if flat else layer.norm[ib][None, :]
        da = layer.dnorm[ia] if flat else layer.dnorm[ia][:, None]
        db = layer.dnorm[ib] if flat else layer.dnorm[ib][None, :]
        l1a, l1b = (layer.l1[ia], layer.l1[ib]) if flat else (layer.l1[ia][:, None],
                                                               layer.l1[ib][None, :])
        dl1a, dl1b = (layer.dl1[ia], layer.dl1[ib]) if flat else (layer.dl1[ia][:, None],
                                                                   layer.dl1[ib][None, :])
        # error estimates: coefficient noise (~eps norm each, as measured against closed
        # forms), the tail, and Horner's rounding with the cheap magnitude bound
        # sqrt(E_aa E_bb) first ...
        root = 4.0  # Horner: a few roundings of the partial sums (terms decay)
        err_e = EPS * (na * l1b + nb * l1a)
        err_d = EPS * (na * dl1b + nb * dl1a)
        err_e += (COEFF_TOL + root * EPS) * na * nb
        err_d += (COEFF_TOL + root * EPS) * da * db
        # ... and sums weighted by |rho|^n where that bound is not small enough
        recheck = ok & ((err_e > REL_ERROR * np.abs(e)) | (err_d > REL_ERROR * np.abs(de)))
        if np.any(recheck):
            if flat:
                ri = rj = np.flatnonzero(recheck)
                at = (ri,)
            else:
                ri, rj = np.nonzero(recheck)
                at = (ri, rj)
            r = np.abs(rho[at])
            mag, dmag = np.zeros(ri.size), np.zeros(ri.size)
            la, dla, lb, dlb = (np.zeros(ri.size) for _ in range(4))
            for n in range(n_cut - 1, -1, -1):
                dmag = dmag * r + mag
                dla = dla * r + la
                dlb = dlb * r + lb
                xa, xb = np.abs(ha[n][ri]), np.abs(hb[n][rj])
                mag = mag * r + xa * xb
                la = la * r + xa
                lb = lb * r + xb
            nai, nbj = layer.norm[ia][ri], layer.norm[ib][rj]
            dai, dbj = layer.dnorm[ia][ri], layer.dnorm[ib][rj]
            # the tail: each pair's own Cauchy-Schwarz bound at the cut (not the
            # tolerance), which vanishes with rho like the sum itself
            tail_e = rn[at] * layer.tail[n_cut, ia][ri] * layer.tail[n_cut, ib][rj]
            tail_d = rn[at] * layer.dtail[n_cut, ia][ri] * layer.dtail[n_cut, ib][rj]
            err_e[at] = EPS * (nai * lb + nbj * la) + tail_e * nai * nbj + root * EPS * mag
            err_d[at] = EPS * (nai * dlb + nbj * dla) + tail_d * dai * dbj + root * EPS * dmag
        err_e[~ok] = np.inf
        err_d[~ok] = np.inf
        sab = np.asarray(block.sa * block.sb, dtype=float)
        de /= sab
        err_d /= sab
        slope = np.abs(d2) / (sab * sab) + err_d / sab
        return e, err_e, de, err_d, slope
