"""Mehler's expansion for activations with a kink at 0, its slow part summed in closed form.

An activation s(u) = g(u) + Y(u) k(u) with g, k entire and k(0) = 0 (continuous, kinked at
0: resin = Y(u) sin u, elu) has Hermite coefficients that decay only algebraically (like
n^(-5/4) for a kink), so Mehler's series sum_n h_n(a) h_n(b) rho^n converges far too slowly
near rho = +-1.  The slow part is the kink's low Taylor terms: with T(u) = sum_{m<M} k_m u^m
(k_m = k^(m)(0)/m!, M = ``ORDER``) and p(u) = Y(u) T(u), the rest r = s - p is C^(M-1) and

    E[s(u) s(v)] = E[p(u) p(v)] + sum_n c_n rho^n,
    c_n = h_n(a) h_n(b) - q_n(a) q_n(b) = r_n(a) h_n(b) + q_n(a) r_n(b),

with h_n, q_n, r_n = h_n - q_n the normalised Hermite coefficients of s, p, r at variances
a, b; c_n decays like n^(-(M+3)/2).  The rectified polynomial's dual is a finite sum,

    E[p(u) p(v)] = sum_{m,l} alpha_m(a) alpha_l(b) J_(m,l)(rho),   alpha_m(a) = k_m a^(m/2),

of the quadrant moments J_(m,l)(rho) = E[Y(X) X^m Y(Z) Z^l] ((X, Z) standard, correlation
rho), which Stein's identity E[X f] = E[d_X f] + rho E[d_Z f] gives per pair:

    J_(m,l) = (m-1) J_(m-2,l) + [m=1] D_l + rho (l J_(m-1,l-1) + [l=0] D_(m-1)),
    J_(0,0) = (pi - theta) / (2 pi),
    D_j = E[delta(X) Y(Z) Z^j] = (1 - rho^2)^(j/2) mu_j / sqrt(2 pi),

mu_j = E[Y(X) X^j].  Price's theorem gives E[s's'] = dE/dc with dJ_(m,l)/drho = m l
J_(m-1,l-1), and the slope d2E/dc2 (with its delta(u) delta(v) term k_1^2 sqrt(ab) /
(2 pi sqrt(1 - rho^2)) in rho units) the same way.

Numerics.  The monomial sums cancel: their terms are as large as E[Y(X) (sum_m |alpha_m|
X^m)^2] (e^(2a)-like), so the alpha-sums (q_n = sum_m alpha_m E[Y X^m He_n]/sqrt(n!) and the
quadratic forms) run in numpy longdouble where float64 would lose digits (chosen per block
from the forms' magnitudes), with alpha identical in both (any p with the kink's jets gives an
exact identity).  h_n comes from Gauss-Legendre quadrature on each half-line (each side is
smooth), in orthonormal Hermite functions from a longdouble-refined rule.  The side of the
kink (Y(u) T(u) or, for s(-u), the mirror) is the one with the smaller |p| at the largest
variance: elu's kink function grows like e^u on u > 0 only.  Absolute error bounds follow
:mod:`hgmntk.mehler`: coefficient noise and Horner's rounding, the series' tail by
Cauchy-Schwarz, |rho|^n (t_n(a) |s_b| + |p_a| t_n(b)) with t_n the tail of r's coefficients
(the computed ones and a power-law rest, or Parseval's identity), and the closed part's
rounding, 2 M eps times the same forms with |alpha| on J(|rho|) (all terms positive there).

Large variances.  Those magnitudes grow like exp(2a): at a = 20 (resin, rho -> 1) the
closed part and the series are both near 1.9e9 for E = 0.18.  Variances above
``DAMP_FROM`` damp the polynomial instead: p(u) = Y(u) P(u) exp(-beta u^2 / 2), P the
Taylor polynomial of k(u) exp(beta u^2 / 2) (the same jets at 0, so r keeps its smoothness),
beta = ``DAMP_WIDTH`` / a for each variance a above ``DAMP_FROM`` (0 below: those are as
before).  The Gaussian factors fold into the covariance, L' = (L^-1 + diag(beta_a,
beta_b))^-1, and the closed part stays a finite sum of quadrant moments at rho' (see
:meth:`KinkedMehlerDual._closed_damped`); q_n comes from the half-line rules like h_n, p
being as large as s there.

Where |rho| <= ``PLAIN_RHO`` the plain series sum_n h_n(a) h_n(b) rho^n converges
geometrically and needs no closed part (p = 0): most pairs of a kernel matrix take it.  The
longdouble twin (:meth:`KinkedMehlerDual.extended`) runs the same code in longdouble for the
pairs whose float64 bounds are too weak after a cancellation between layers (elu's kernels
cross zero), with only the terms each |rho| bin needs.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import lru_cache

import mpmath
import numpy as np
import scipy.special

from .integrator import PairBlock
from .ld_matmul import matmul
from .mehler import hermite_function_matrix, horner_shift, level_factor, level_horner

EPS = float(np.finfo(float).eps)
LD = np.longdouble
EPS_LD = float(np.finfo(LD).eps)
_PI_LD = LD("3.14159265358979323846264338327950288")
#: Taylor terms of the kink summed in closed form (u^0 .. u^(ORDER-1)).
ORDER = 16
#: Largest number of series terms tried.
MAX_TERMS = 1024
#: The series is cut where its tail bound falls below this (relative to |s_a| |s_b|).
COEFF_TOL = 2e-16
#: Below this relative error bound the cheap bounds (rho = 1 weights) suffice.
REL_ERROR = 5e-15
#: Pairs with |rho| up to this take the plain series sum_n h_n(a) h_n(b) rho^n (it
#: converges geometrically there); the kink's closed part serves the others.
PLAIN_RHO = 0.8
#: Variances above this damp the kink's Taylor polynomial by exp(-beta u^2/2):
#: undamped, E[p(u)^2] grows like exp(2a) and the closed part and the series cancel (resin
#: at a = 20, rho -> 1: both near 1.9e9 for E = 0.18).
DAMP_FROM = 7.0
#: beta times the variance: the damping's width in the standardised variable (the Hermite
#: coefficients of exp(-gamma X^2/2) decay like (gamma / (1 + gamma))^(n/2)).
DAMP_WIDTH = 2.0
#: Variances per thread when a coefficient layer is computed in parallel.
COEFF_CHUNK = 256
#: Largest half-line rule of the vectorised collinear expectations (beyond: variances
#: above ~1e4, left to the adaptive quadrature).
MAX_COLLINEAR_NODES = 4096
#: A block's closed part runs in longdouble where float64 rounding would exceed this
#: fraction of |s_a| |s_b|.
FLOAT_ROUNDING = 1e-15


@dataclass
class KinkSplit:
    """s = g + Y(u) k(u): numeric sides (f, g, f', g') with f = g + k on u > 0 and g on
    u < 0, the same in longdouble (``sides_ld``, None without longdouble functions), and the
    Taylor coefficients k_m (m < ORDER, longdouble) of the kink k = f - g at 0."""

    sides: tuple
    sides_ld: tuple | None
    taylor: np.ndarray

    def mirrored(self) -> KinkSplit:
        """The split of s(-u) (same duals): sides g(-u) and f(-u), kink -k(-u)."""

        def mirror(sides):
            if sides is None:
                return None
            f, g, df, dg = sides
            return (lambda u: g(-u), lambda u: f(-u), lambda u: -dg(-u), lambda u: -df(-u))

        signs = -((-1.0) ** np.arange(self.taylor.size)).astype(LD)
        return KinkSplit(mirror(self.sides), mirror(self.sides_ld), signs * self.taylor)


def entire_sides(expression: str | None):
    """(f, g) as sympy expressions in u: the activation on u > 0 and on u < 0, when both
    are built from entire functions (a jump or a kink at 0 allowed); None otherwise (no
    expression, a Dirac term, or a break point away from 0)."""
    import sympy

    from .expressions import U, parse_activation_expression
    from .mehler import is_entire_expression

    if not expression or "DiracDelta" in expression:  # a delta at 0 is no side's
        return None
    try:
        expr = parse_activation_expression(expression)
    except Exception:  # noqa: BLE001 - not an expression this evaluator can split
        return None
    pos, neg = sympy.Symbol("p", positive=True), sympy.Symbol("q", negative=True)
    f = expr.subs(U, pos).subs(pos, U)
    g = expr.subs(U, neg).subs(neg, U)
    if not (is_entire_expression(str(f)) and is_entire_expression(str(g))):
        return None
    return f, g


def kink_split(expression: str, order: int = ORDER) -> KinkSplit | None:
    """Split an activation expression into its sides u > 0 and u < 0 when both are built
    from entire functions, the kink k = f - g is not identically zero, and k(0) = 0
    (continuous at 0); None otherwise (entire, a jump, or a break point away from 0)."""
    import sympy

    from .expressions import U, lambdify_activation
    from .longdouble import lambdify_longdouble

    sides = entire_sides(expression)
    if sides is None:
        return None
    f, g = sides
    k = sympy.simplify(f - g)
    if k == 0 or sympy.simplify(k.subs(U, 0)) != 0:
        return None
    series = sympy.series(k, U, 0, order).removeO()
    taylor = np.array([LD(str(sympy.N(series.coeff(U, m), 30))) for m in range(order)])
    if not np.all(np.isfinite(taylor)) or not np.any(taylor):
        return None
    texts = [str(e) for e in (f, g, sympy.diff(f, U), sympy.diff(g, U))]
    sides = tuple(lambdify_activation(t) for t in texts)
    if any(fn is None for fn in sides):
        return None
    sides_ld = tuple(lambdify_longdouble(t) for t in texts)
    return KinkSplit(sides, None if any(fn is None for fn in sides_ld) else sides_ld, taylor)


def half_line_expectations(f, g, a: np.ndarray, b: np.ndarray, sign: np.ndarray):
    """E[s(sqrt(a) U) s(sign sqrt(b) U)], U ~ N(0, 1), for s = f on u > 0 and g on u < 0
    (numeric callables, each side smooth), by the half-line Gauss-Legendre rules of the
    coefficients (float64, vectorised over the arrays), each checked by a rule with 3/2
    the nodes: (values, ok), ok where the two agree to 16 ulps of E|s s| and the value is
    not below 1e-3 of E|s s| (a cancellation that float64 sums cannot resolve)."""
    values, ok = np.zeros(a.shape), np.zeros(a.shape, dtype=bool)
    top = float(np.max(np.maximum(np.sqrt(a), np.sqrt(b)))) if a.size else 0.0
    nodes, length = _rule(2, top)
    if nodes > MAX_COLLINEAR_NODES:  # huge variances: the adaptive quadrature's job
        return values, ok
    chunk = max(1, (1 << 20) // nodes)  # a few MB of node values at a time
    for lo in range(0, a.size, chunk):
        at = slice(lo, lo + chunk)
        sa, sb = np.sqrt(a[at]), sign[at] * np.sqrt(b[at])
        results = []
        for size in (nodes, nodes + nodes // 2):
            x, sw, _ = _half_line_functions(2, size, length)
            total, magnitude = np.zeros(sa.shape), np.zeros(sa.shape)
            with np.errstate(all="ignore"):
                for z in (x, -x):  # the half-lines u > 0 and u < 0
                    u, v = z[:, None] * sa[None, :], z[:, None] * sb[None, :]
                    su = np.where(u > 0, f(u), g(u))
                    sv = np.where(v > 0, f(v), g(v))
                    terms = (sw * sw)[:, None] * su * sv
                    total += np.sum(terms, axis=0)
                    magnitude += np.sum(np.abs(terms), axis=0)
            results.append((total, magnitude))
        (coarse, _), (fine, magnitude) = results
        with np.errstate(invalid="ignore"):
            ok[at] = ((np.abs(fine - coarse) <= 16 * EPS * magnitude)
                      & (np.abs(fine) > 1e-3 * magnitude) & np.isfinite(fine))
        values[at] = fine
    return values, ok


#: |rho| levels of the error bounds of a 2-D block (each entry's weights L^n at the
#: smallest level L >= |rho|).
BOUND_LEVELS = (0.2, 0.35, 0.5, 0.65, 0.8)


@lru_cache(maxsize=4)
def _half_moments(count: int) -> np.ndarray:
    """mu_j = E[Y(X) X^j] = 2^(j/2) Gamma((j+1)/2) / (2 sqrt(pi)), j < count (longdouble,
    from 30 digits)."""
    with mpmath.workdps(30):
        return np.array([LD(mpmath.nstr(mpmath.mpf(2) ** (mpmath.mpf(j) / 2)
                                        * mpmath.gamma(mpmath.mpf(j + 1) / 2)
                                        / (2 * mpmath.sqrt(mpmath.pi)), 25))
                         for j in range(count)])


def damped_taylor(k: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """P[i, m], m < len(k): the Taylor coefficients of k(u) exp(beta_i u^2 / 2) for each
    beta_i (longdouble), so that P(u) exp(-beta_i u^2 / 2) has the jets of k at 0 to order
    len(k) - 1 (P = k where beta_i = 0)."""
    half = np.asarray(beta, dtype=LD) / 2
    out = np.zeros((half.size, k.size), dtype=LD)
    for m in range(k.size):
        weight = np.ones(half.size, dtype=LD)  # (beta/2)^j / j!
        for j in range(m // 2 + 1):
            out[:, m] += k[m - 2 * j] * weight
            weight = weight * half / (j + 1)
    return out


def gauss_derivative(c: np.ndarray, beta) -> np.ndarray:
    """Coefficients (one more per row) of C'(u) - beta u C(u) for each row of ``c`` and its
    beta: (C(u) exp(-beta u^2/2))' = (C' - beta u C) exp(-beta u^2/2)."""
    out = np.zeros((c.shape[0], c.shape[1] + 1), dtype=c.dtype)
    out[:, : c.shape[1] - 1] += np.arange(1, c.shape[1]) * c[:, 1:]
    out[:, 1:] -= np.asarray(beta, dtype=c.dtype)[:, None] * c
    return out


@lru_cache(maxsize=8)
def _rectified_hermite(order: int, terms: int) -> np.ndarray:
    """H[m, n] = E[Y(X) X^m He_n(X)] / sqrt(n!) (m < order, n < terms) in longdouble, from
    30-digit mpmath: m! He_(n-m-1)(0) phi(0) / sqrt(n!) for n > m (integrate by parts m
    times), sum_j [x^j]He_n mu_(m+j) otherwise."""
    out = np.zeros((order, terms), dtype=LD)
    with mpmath.workdps(30):
        phi0 = 1 / mpmath.sqrt(2 * mpmath.pi)
        mu = [mpmath.mpf(2) ** (mpmath.mpf(j) / 2) * mpmath.gamma(mpmath.mpf(j + 1) / 2)
              / (2 * mpmath.sqrt(mpmath.pi)) for j in range(2 * order + 2)]
        he0 = [mpmath.mpf(1), mpmath.mpf(0)]  # He_j(0)
        for j in range(2, terms):
            he0.append(-(j - 1) * he0[j - 2])
        for m in range(order):
            for n in range(terms):
                if n > m:
                    value = mpmath.factorial(m) * he0[n - m - 1] * phi0
                else:
                    coeffs = np.polynomial.hermite_e.herme2poly([0] * n + [1]).round()
                    value = sum(int(c) * mu[m + j] for j, c in enumerate(coeffs) if c)
                out[m, n] = LD(mpmath.nstr(value / mpmath.sqrt(mpmath.factorial(n)), 25))
    return out


@lru_cache(maxsize=64)
def gauss_legendre_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``nodes``-point Gauss-Legendre rule on [-1, 1] in numpy
    longdouble: scipy's nodes refined by Newton's method on P_M (three-term recurrence),
    weights 2 / ((1 - x^2) P_M'(x)^2).  Float64 rules of a thousand nodes carry ~1e-14
    relative errors in their weights, which would limit the coefficients to that level.
    The rule is symmetric: only the nodes x >= 0 are refined (x = 0 is exact for odd M),
    by two Newton steps (quadratic convergence from scipy's ~1e-15)."""
    full = scipy.special.roots_legendre(nodes)[0]
    x = np.abs(full[nodes // 2:]).astype(LD)  # x >= 0, ascending (0 first for odd M)
    free = slice(nodes % 2, None)

    def legendre(x):
        p0, p1 = np.ones_like(x), x.copy()
        for n in range(1, nodes):
            p0, p1 = p1, ((2 * n + 1) * x * p1 - n * p0) / (n + 1)
        return p1, nodes * (x * p1 - p0) / (x * x - 1)  # P_M, P_M'

    for _ in range(2):
        p, dp = legendre(x[free])
        x[free] = x[free] - p / dp
    _, dp = legendre(x)
    w = 2 / ((1 - x * x) * dp * dp)
    mirror = slice(None, -1 if nodes % 2 else None)  # node 0 (odd M) once
    return np.concatenate([-x[::-1][mirror], x]), np.concatenate([w[::-1][mirror], w])


@lru_cache(maxsize=32)
def _half_line_functions(terms: int, nodes: int, length: float, dtype=float):
    """Gauss-Legendre nodes x_k on [0, length], sqrt(W_k) with W_k = w_k phi(x_k), and
    Phi[n, k] = sqrt(W_k) He_n(x_k)/sqrt(n!) (orthonormal Hermite functions by their stable
    recurrence in longdouble), rounded to ``dtype``."""
    t, w = gauss_legendre_rule(nodes)
    x = (t + 1) * LD(length) / 2
    weight = w * LD(length) / 2 * np.exp(-x * x / 2) / np.sqrt(2 * _PI_LD)
    sw = np.sqrt(weight)
    return x.astype(dtype), sw.astype(dtype), hermite_function_matrix(x, sw, terms).astype(dtype)


def _rule(terms: int, sqrt_a_max: float) -> tuple[int, float]:
    """(nodes, length) of the half-line rule for ``terms`` coefficients up to variance
    sqrt_a_max^2: the interval covers the Hermite functions' support and the activation's
    growth; the nodes resolve both oscillations.  sqrt_a_max is first rounded up to a
    power of 2^(1/8) (at least 1/4), so that nearby variances share one rule: building a
    rule and its Hermite-function matrix in longdouble costs far more than using it for
    the few variances of a batch of pairs."""
    top = 2.0 ** (math.ceil(8 * math.log2(max(sqrt_a_max, 0.25))) / 8)
    length = max(math.sqrt(4 * terms + 2) + 9, 2 * top + 12)
    length = 4 * math.ceil(length / 4)  # a few sizes, so that the rules are reused
    return 64 * math.ceil((terms + top * length + 64) / 64), length


def damping(variances: np.ndarray, plain: bool = False) -> np.ndarray:
    """beta per variance: 0 up to ``DAMP_FROM`` (and for the plain series), else
    ``DAMP_WIDTH`` / a (the damping exp(-beta u^2/2) has the same width in every damped
    variable)."""
    a = np.asarray(variances, dtype=float)
    if plain:
        return np.zeros(a.shape)
    with np.errstate(divide="ignore"):
        return np.where(a > DAMP_FROM, DAMP_WIDTH / a, 0.0)


@dataclass
class _KinkLayer:
    """Coefficients for one layer's unique variances."""

    h: np.ndarray  # (terms, n) coefficients of s
    q: np.ndarray  # (terms, n) coefficients of p (rounded from longdouble)
    r: np.ndarray  # h - q
    tail: np.ndarray  # (terms + 1, n): tails of r, with the power-law rest
    dtail: np.ndarray  # (terms + 1, n): tails of sqrt(n) r_n
    norm: np.ndarray  # |s_a| = E[s^2]^(1/2)
    dnorm: np.ndarray  # (a E[s'^2])^(1/2)
    pnorm: np.ndarray  # |p_a|
    dpnorm: np.ndarray  # (a E[p'^2])^(1/2)
    l1: np.ndarray  # sum_n |h_n| + |q_n|
    dl1: np.ndarray  # sum_n n (|h_n| + |q_n|)
    noise: np.ndarray  # max_n |error of h_n| + |error of q_n| (see compute_coefficients)
    alpha: np.ndarray  # (n, ORDER) longdouble: alpha_m(a) = k_m a^(m/2) (undamped)
    poly: np.ndarray  # (n, ORDER) longdouble: P, the kink's Taylor polynomial, damped
    beta: np.ndarray  # (n,) its damping: p(u) = Y(u) P(u) exp(-beta u^2 / 2)
    variance: np.ndarray  # (n,)
    good: np.ndarray
    e_ss: np.ndarray
    e_dsds: np.ndarray


class KinkedMehlerDual:
    """Block evaluator of E[s s] and E[s' s'] for s = g + Y k (module docstring), with the
    interface of :class:`hgmntk.mehler.MehlerDual` (``prepare``, ``collinear``)."""

    def __init__(self, split: KinkSplit, dtype=float):
        self.splits = (split, split.mirrored())
        self.plain = KinkSplit(split.sides, split.sides_ld, np.zeros_like(split.taylor))
        self.order = split.taylor.size
        self.dtype = dtype
        self.eps = float(np.finfo(dtype).eps)
        ratio = self.eps / EPS
        self.coeff_tol, self.rel_error = COEFF_TOL * ratio, REL_ERROR * ratio
        # two converged rules differ by their sums' rounding: a float64 sum over ~1000
        # nodes reaches 8 eps of the norm now and then (resin at variance 2), which is no
        # sign of an unconverged rule (noise = 2 x the difference enters the bounds anyway)
        self._agree = 64 if dtype is LD else 32
        self._cache: dict[tuple, _KinkLayer] = {}
        self._lock = threading.Lock()
        self._twin: KinkedMehlerDual | None = None

    def extended(self) -> KinkedMehlerDual | None:
        """The same expansion in numpy longdouble throughout (coefficients from
        longdouble sides, sums, bounds at its unit roundoff), for the few pairs whose float64
        bound is too weak after a cancellation between layers; None without longdouble
        sides, where longdouble is no wider than float64, or for the twin itself."""
        if self.dtype is LD or self.splits[0].sides_ld is None or EPS_LD >= EPS:
            return None
        if self._twin is None:
            self._twin = KinkedMehlerDual(self.splits[0], LD)
        return self._twin

    # --- coefficients -------------------------------------------------------------
    def _sides(self, split: KinkSplit, sqrt_a, x, sw, derivative=False):
        f, g, df, dg = split.sides_ld if self.dtype is LD else split.sides
        f, g = (df, dg) if derivative else (f, g)
        with np.errstate(all="ignore"):
            u = x[:, None] * sqrt_a[None, :]
            pos = f(u) * sw[:, None]
            neg = g(-u) * sw[:, None]
        return pos, neg

    def _alpha(self, split: KinkSplit, variances: np.ndarray) -> np.ndarray:
        m = np.arange(self.order)
        with np.errstate(all="ignore"):
            return split.taylor[None, :] * np.asarray(variances, dtype=LD)[:, None] ** (
                m[None, :] / LD(2))

    def _moments(self, split, variances, terms, nodes, length, only_h=False):
        """(h, E[s^2], E[s'^2]) by the half-line rules; (h,) with ``only_h``."""
        x, sw, phi = _half_line_functions(terms, nodes, length, self.dtype)
        sa = np.sqrt(np.asarray(variances, dtype=self.dtype))
        pos, neg = self._sides(split, sa, x, sw)
        sign = (-1.0) ** np.arange(terms)
        h = matmul(phi, pos) + sign[:, None] * matmul(phi, neg)
        if only_h:
            return (h,)
        dpos, dneg = self._sides(split, sa, x, sw, derivative=True)
        return h, _squares(self.dtype, pos, neg), _squares(self.dtype, dpos, dneg)

    def _kink_moments(self, split, variances, beta):
        """(E[p(u)^2], E[p'(u)^2]) for u ~ N(0, a), p = Y P exp(-beta u^2/2) (one beta per
        variance): with the Gaussian factor folded into the variance, a2 = a / (1 + 2 beta
        a), the quadratic forms (1 + 2 beta a)^(-1/2) sum_(m,l) P_m P_l a2^((m+l)/2)
        mu_(m+l) and the same with Q = P' - beta u P, of the half moments mu_j = E[Y(X) X^j]
        (longdouble)."""
        a = np.asarray(variances, dtype=LD)
        shrink = 1 / (1 + 2 * np.asarray(beta, dtype=LD) * a)
        root = np.sqrt(a * shrink)
        poly = damped_taylor(split.taylor, beta)
        out = []
        for c in (poly, gauss_derivative(poly, beta)):
            m = np.arange(c.shape[1])
            gram = _half_moments(2 * c.shape[1])[m[:, None] + m[None, :]]  # mu_(m+l)
            with np.errstate(all="ignore"):
                x = c * root[:, None] ** m[None, :]
                out.append((np.sqrt(shrink) * np.einsum("im,ml,il->i", x, gram, x))
                           .astype(self.dtype))
        return out[0], out[1]

    def _damped_values(self, split, beta, u, derivative: bool = True):
        """[P(u), Q(u)] exp(-beta u^2/2) at the points u (longdouble; one column and one
        beta per variance); [P(u) exp(-beta u^2/2)] without ``derivative``."""
        poly = damped_taylor(split.taylor, beta)
        factor = np.exp(-np.asarray(beta, dtype=LD)[None, :] * u * u / 2)
        values = []
        for c in (poly, gauss_derivative(poly, beta)) if derivative else (poly,):
            v = np.zeros_like(u)
            for m in range(c.shape[1] - 1, -1, -1):
                v = v * u + c[:, m]
            values.append(v * factor)
        return values

    def _rest_moments(self, split, variances, nodes, length, beta):
        """(E[r^2], E[r'^2]) for r = s - p by the half-line rule, p and the differences in
        longdouble (they cancel where p is close to the kink)."""
        x, sw, _ = _half_line_functions(2, nodes, length, self.dtype)
        sa = np.sqrt(np.asarray(variances, dtype=self.dtype))
        pos, neg = self._sides(split, sa, x, sw)
        dpos, dneg = self._sides(split, sa, x, sw, derivative=True)
        u = x[:, None].astype(LD) * np.sqrt(np.asarray(variances, dtype=LD))[None, :]
        poly, dpoly = self._damped_values(split, beta, u)
        swl = sw[:, None].astype(LD)
        poly, dpoly = poly * swl, dpoly * swl
        return (_squares(self.dtype, pos - poly, neg),
                _squares(self.dtype, dpos - dpoly, dneg))

    def _damped_rest(self, split, variances, terms, nodes, length, beta):
        """r_n = E[r(sqrt(a) X) He_n(X)] / sqrt(n!) for r = s - p with the damped p, by the
        half-line rules of h: s - p in longdouble at the nodes (they cancel near the
        kink), so the sums round relative to r's values, not to p's (whose coefficients
        decay only algebraically: h_n - q_n from two quadratures stalls at their rounding)."""
        x, sw, phi = _half_line_functions(terms, nodes, length, self.dtype)
        sa = np.sqrt(np.asarray(variances, dtype=self.dtype))
        pos, neg = self._sides(split, sa, x, sw)
        u = x[:, None].astype(LD) * np.sqrt(np.asarray(variances, dtype=LD))[None, :]
        poly = self._damped_values(split, beta, u, derivative=False)[0] * sw[:, None].astype(LD)
        diff = (np.asarray(pos, dtype=LD) - poly).astype(self.dtype)
        sign = (-1.0) ** np.arange(terms)
        return matmul(phi, diff) + sign[:, None] * matmul(phi, neg)

    def _rest(self, split, h, variances, terms, beta, rule):
        """r = h - q and q for these variances: q from longdouble sums of the exact moments
        (undamped p, beta = 0), or by quadrature (damped p, ``rule`` = (nodes, length));
        q = 0 for the plain series (no kink part)."""
        if not np.any(split.taylor):
            return h.astype(self.dtype), np.zeros_like(h, dtype=self.dtype)
        q = np.zeros(h.shape, dtype=LD)
        damped = np.asarray(beta) > 0
        if np.any(~damped):
            q[:, ~damped] = matmul(self._alpha(split, variances[~damped]),
                                   _rectified_hermite(self.order, terms)).T
        r = (h - q).astype(self.dtype)
        if np.any(damped):
            r[:, damped] = self._damped_rest(split, variances[damped], terms, *rule,
                                             beta[damped])
            q[:, damped] = h[:, damped] - r[:, damped]
        return r, q.astype(self.dtype)

    def coefficients(self, variances: np.ndarray, terms: int | None = None,
                     plain: bool = False) -> _KinkLayer:
        """:meth:`compute_coefficients`, cached for the last few variance arrays."""
        variances = np.ascontiguousarray(variances, dtype=self.dtype)
        key = (variances.tobytes(), terms, plain)
        with self._lock:  # blocks run on threads; the kink's layer is made lazily
            if key not in self._cache:
                if len(self._cache) >= 8:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = self.compute_coefficients(variances, terms, plain)
            return self._cache[key]

    def plain_terms(self, top: float) -> int | None:
        """Terms (a power of 2) for pairs with |rho| <= top < 0.99: top^T below a
        thousandth of the unit roundoff; None (as many as converge) from 0.99 on."""
        if top >= 0.99:
            return None
        need = math.log(self.eps / 1e3) / math.log(max(top, 1e-3))
        return min(MAX_TERMS, max(64, 1 << math.ceil(math.log2(need + 32))))

    def compute_coefficients(self, variances: np.ndarray, terms: int | None = None,
                             plain: bool = False) -> _KinkLayer:
        """Coefficients, tails and checks for an array of variances, with the side of
        the smaller |p| at the largest variance.  Without ``terms``, their number doubles
        (from 64) until r's last coefficients on probe variances are at rounding level.  A
        rule with 3/2 the nodes must agree with the first on every variance.  The tails of
        r beyond the computed terms: a power law from the last ones where they are at
        rounding level, else Parseval's identity sum_m r_m^2 = E[r(sqrt(a) X)^2] (and
        sum_m m r_m^2 = a E[r'^2]) minus the computed part.  ``plain``: no kink part (p = 0,
        r = s), for the plain series at moderate |rho|."""
        probe = np.unique(np.quantile(variances, np.linspace(0, 1, 9), method="nearest"))
        top = float(np.sqrt(np.max(variances)))
        beta = damping(variances, plain)
        if plain:
            split = self.plain
            terms = terms or self.plain_terms(PLAIN_RHO)
        else:
            norms = [self._kink_moments(s, probe[-1:], damping(probe[-1:]))[0][0]
                     for s in self.splits]
            split = self.splits[int(norms[1] < norms[0])]
        fixed = terms is not None
        terms = terms or 64
        while not fixed:
            h = self._moments(split, probe, terms, *_rule(terms, top), only_h=True)[0]
            r_probe, _ = self._rest(split, h, probe, terms, damping(probe, plain),
                                    _rule(terms, top))
            probe_norm = np.sqrt(np.sum(h * h, axis=0))
            with np.errstate(invalid="ignore"):
                done = np.max(np.abs(r_probe[-32:]), axis=0) <= 4 * self.eps * probe_norm
            if np.all(done) or terms >= MAX_TERMS:
                break
            terms *= 2
        nodes, length = _rule(terms, top)
        chunks = min(os.cpu_count() or 1, variances.size // COEFF_CHUNK)
        if chunks < 2:
            return self._layer(split, variances, beta, terms, nodes, length, plain)
        # the columns are independent: the worker threads wait for this layer anyway
        parts = zip(np.array_split(variances, chunks), np.array_split(beta, chunks))
        with ThreadPoolExecutor(max_workers=chunks) as pool:
            layers = list(pool.map(
                lambda vb: self._layer(split, *vb, terms, nodes, length, plain), parts))
        return _KinkLayer(**{
            f.name: np.concatenate([getattr(x, f.name) for x in layers],
                                   axis=0 if f.name in ("alpha", "poly") else -1)
            for f in fields(_KinkLayer)})

    def _layer(self, split, variances, beta, terms, nodes, length, plain) -> _KinkLayer:
        """The coefficients and their checks (:meth:`compute_coefficients`) with the number
        of terms, the rule and the kink's damping chosen."""
        h, e_ss, e_dsds = self._moments(split, variances, terms, nodes, length)
        h_fine = self._moments(split, variances, terms, nodes + nodes // 2, length,
                               only_h=True)[0]
        # two rules' difference: their noise, and a check (longdouble matrix products sum
        # sequentially, with more rounding than BLAS's blocked sums)
        differ = np.max(np.abs(h_fine - h), axis=0)
        r, q = self._rest(split, h, variances, terms, beta, (nodes, length))
        norm = np.sqrt(e_ss)
        if plain:
            e_pp = e_dpdp = np.zeros_like(e_ss)
        else:
            e_pp, e_dpdp = self._kink_moments(split, variances, beta)
        # q's noise: undamped, the longdouble sums round by ~eps_ld sum_m |alpha_m H_mn|
        # each (q's own rounding to the float type is in the magnitude sums: |q_a q_b|
        # per term); damped, q = h - r with r a quadrature: its two rules' difference
        spread = np.zeros_like(norm)
        q_noise = np.zeros_like(norm)
        damped = beta > 0
        if not plain and np.any(~damped):
            rounding = (np.abs(self._alpha(split, variances[~damped])).astype(float)
                        @ np.abs(_rectified_hermite(self.order, terms)).astype(float))
            q_noise[~damped] = 4 * EPS_LD * np.max(rounding, axis=1)
        if not plain and np.any(damped):
            r_fine = self._damped_rest(split, variances[damped], terms, nodes + nodes // 2,
                                       length, beta[damped])
            spread[damped] = np.max(np.abs(r_fine - r[:, damped]), axis=0)
            q_noise[damped] = np.maximum(2 * spread[damped],
                                         2 * self.eps * np.sqrt(e_pp[damped]))
        noise = np.maximum(2 * differ, 2 * self.eps * norm) + q_noise
        n = np.arange(terms)[:, None]
        window = min(32, terms)
        with np.errstate(invalid="ignore"):
            last = np.max(np.abs(r[-window:]), axis=0)
            converged = last <= 32 * self.eps * norm
            good = differ <= self._agree * self.eps * norm
            good &= spread <= self._agree * self.eps * np.maximum(norm, np.sqrt(e_pp))
        # the rest beyond the computed terms: |r_m| <= last (m / terms)^(-(M+1)/2) where
        # converged, else Parseval (with slack for its cancellation); E[r^2] (a longdouble
        # quadrature of s - p) only where it is needed: r = s for the plain series
        power = (self.order + 1) / 2
        sq, dsq = r * r, n * r * r
        if plain:
            e_rr, e_drdr = e_ss, e_dsds
        else:
            e_rr, e_drdr = np.full_like(e_ss, np.inf), np.full_like(e_ss, np.inf)
            if not np.all(converged):
                at = np.flatnonzero(~converged)
                e_rr[at], e_drdr[at] = self._rest_moments(split, variances[at], nodes, length,
                                                          beta[at])
        with np.errstate(invalid="ignore"):
            parseval = np.maximum(e_rr - np.sum(sq, axis=0), 0) + 16 * self.eps * e_rr
            dparseval = (np.maximum(variances * e_drdr - np.sum(dsq, axis=0), 0)
                         + 16 * self.eps * variances * e_drdr)
        rest = np.where(converged, np.minimum(last**2 * terms / (2 * power - 1), parseval),
                        parseval)
        drest = np.where(converged,
                         np.minimum(last**2 * terms**2 / (2 * power - 2), dparseval), dparseval)
        tail = np.sqrt(np.vstack([np.cumsum(sq[::-1], axis=0)[::-1] + rest, rest]))
        dtail = np.sqrt(np.vstack([np.cumsum(dsq[::-1], axis=0)[::-1] + drest, drest]))
        good &= np.all(np.isfinite(h), axis=0) & (norm > 0) & np.isfinite(e_dsds)
        good &= np.isfinite(rest) & np.isfinite(drest) & np.isfinite(e_pp) & np.isfinite(e_dpdp)
        alpha = self._alpha(split, variances)
        poly = damped_taylor(split.taylor, beta)
        absum = np.abs(h) + np.abs(q)  # noise in h_a meets h_b, noise in q_a meets q_b
        return _KinkLayer(
            h=h, q=q, r=r, tail=tail, dtail=dtail, norm=norm,
            dnorm=np.sqrt(variances * e_dsds), pnorm=np.sqrt(e_pp),
            dpnorm=np.sqrt(variances * e_dpdp), l1=np.sum(absum, axis=0),
            dl1=np.sum(n * absum, axis=0), noise=noise, alpha=alpha, poly=poly,
            beta=np.asarray(beta, dtype=float), variance=np.asarray(variances, dtype=self.dtype),
            good=good, e_ss=e_ss, e_dsds=e_dsds,
        )

    def collinear(self, variances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(E[s(u)^2], E[s'(u)^2], ok) for u ~ N(0, a): the half-line quadratures."""
        a = np.asarray(variances, dtype=float)
        unique, where = np.unique(a, return_inverse=True)
        layer = self.coefficients(unique, 2, plain=True)  # no series: its own quadrature
        return layer.e_ss[where], layer.e_dsds[where], (layer.good & (unique > 0))[where]

    def second_moments(self, variances) -> tuple[np.ndarray, np.ndarray]:
        """(E[s(u)^2], ok) in the evaluator's float type (the longdouble twin's diagonal for
        the pairs it redoes)."""
        a = np.asarray(variances, dtype=self.dtype)
        unique, where = np.unique(a, return_inverse=True)
        layer = self.coefficients(unique, 2, plain=True)  # E[s^2]: a quadrature of its own
        return layer.e_ss[where], (layer.good & (unique > 0))[where]

    def prepare(self, sa: np.ndarray, sb: np.ndarray):
        """The evaluator for one layer: rows with sqrt-variances ``sa``, columns ``sb``.
        The longdouble twin takes each (flat) block's own longdouble variances instead."""
        if self.dtype is LD:
            return lambda block, r, c, key: self._evaluate_own(block, key)
        variances = np.concatenate([sa, sb]) ** 2
        unique, where = np.unique(variances, return_inverse=True)
        rows, cols = where[: sa.size], where[sa.size:]
        layers = {}

        def layer(plain: bool) -> _KinkLayer:  # the kink's layer only where needed
            if plain not in layers:
                layers[plain] = self.coefficients(unique, plain=plain)
            return layers[plain]

        return lambda block, r, c, key: self._evaluate(layer, rows[r], cols[c], block, key)

    def _evaluate_own(self, block: PairBlock, key: str):
        """The longdouble twin on a flat block: the pairs go by |rho| into bins, and each
        bin's coefficients (for its own variances) have only the terms its largest |rho|
        needs: most pairs that reach this tier sit near a zero of the kernel, at small
        |rho|."""
        cached = block.cache.get("kink-mehler")
        if cached is None:
            rho = np.asarray(block.rho, dtype=self.dtype)
            sa, sb = (np.asarray(v, dtype=self.dtype) for v in (block.sa, block.sb))
            out = [np.empty(rho.shape, dtype=self.dtype) for _ in range(5)]
            absrho = np.abs(rho).astype(float)
            edges = [0.0, 0.3, 0.6, PLAIN_RHO, 0.9, 0.97, 1.0]
            for lo, hi in zip(edges[:-1], edges[1:]):
                at = np.flatnonzero((absrho <= hi) & ((absrho > lo) | (lo == 0)))
                if not at.size:
                    continue
                top = float(np.max(absrho[at]))
                unique, where = np.unique(np.concatenate([sa[at] ** 2, sb[at] ** 2]),
                                          return_inverse=True)

                def layer(plain, unique=unique, top=top):
                    return self.coefficients(unique, self.plain_terms(top), plain)

                sub = PairBlock(sa[at], sb[at], rho[at])
                for o, v in zip(out, self._sums(layer, sub, where[: at.size],
                                                where[at.size:])):
                    o[at] = v
            cached = block.cache["kink-mehler"] = tuple(out)
        e, err_e, de, err_d, slope = cached
        return (e, err_e, None) if key == "ss" else (de, err_d, slope)

    def _evaluate(self, layer, ia, ib, block: PairBlock, key: str):
        cached = block.cache.get("kink-mehler")
        if cached is None:
            cached = block.cache["kink-mehler"] = self._sums(layer, block, ia, ib)
        e, err_e, de, err_d, slope = cached
        return (e, err_e, None) if key == "ss" else (de, err_d, slope)

    # --- the pair sums ----------------------------------------------------------------
    def _sums(self, layer, block: PairBlock, ia, ib):
        """E, E' = dE/dc and its slope |d2E/dc2| with absolute error bounds over a block
        (2-D: rows ia, columns ib; or flat pairs): the plain series where |rho| <=
        ``PLAIN_RHO``, the kink's series and closed part elsewhere (``layer(plain)`` gives
        the coefficients)."""
        rho = np.asarray(block.rho, dtype=self.dtype)
        high = np.abs(rho) > PLAIN_RHO
        zero = self.dtype(0)
        out = list(self._series(layer(True), np.where(high, zero, rho), ia, ib))
        good = layer(True).good
        ok = good[ia] & good[ib] if rho.ndim == 1 else good[ia][:, None] & good[ib][None, :]
        if np.any(high):
            kink = layer(False)
            at = np.nonzero(high)
            pi, pj = ia[at[0]], ib[at[-1]]
            rh = rho[at]
            series = self._series(kink, rh, pi, pj)
            closed = self._closed(kink, rh, pi, pj)
            for k, (a_, b_) in enumerate(zip(series, closed)):
                out[k][at] = a_ + b_
            ok[at] = kink.good[pi] & kink.good[pj]
        e, de, d2, err_e, err_d = out
        ok &= np.isfinite(e) & np.isfinite(de)
        err_e[~ok] = np.inf
        err_d[~ok] = np.inf
        sab = np.asarray(block.sa * block.sb, dtype=self.dtype)
        de = de / sab
        err_d = err_d / sab
        slope = np.abs(d2) / (sab * sab) + err_d / sab
        return e, err_e, de, err_d, slope

    def _series(self, layer: _KinkLayer, rho, ia, ib):
        """sum_n c_n rho^n and its first two rho-derivatives by Horner (outer products on a
        2-D block), cut where the tail bound is below ``COEFF_TOL``; absolute error bounds of the
        first two: coefficient noise (each h_n(a) within noise(a) of its value) weighted by
        |h_n(b)| |rho|^n, Horner's rounding and the tail."""
        flat = rho.ndim == 1

        def outer(x, y):
            return x * y if flat else x[:, None] * y[None, :]

        absrho = np.abs(rho)
        terms = layer.h.shape[0]
        scale = np.max(layer.norm[ia]) * np.max(layer.norm[ib])
        dscale = np.max(layer.dnorm[ia]) * np.max(layer.dnorm[ib])
        tmax_i, tmax_j = np.max(layer.tail[:, ia], axis=1), np.max(layer.tail[:, ib], axis=1)
        dmax_i, dmax_j = np.max(layer.dtail[:, ia], axis=1), np.max(layer.dtail[:, ib], axis=1)

        def cut(r: float) -> int:
            n_all = np.arange(terms + 1)
            with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
                rn = r ** np.maximum(n_all - 1, 0)
                be = rn * (tmax_i * np.max(layer.norm[ib]) + np.max(layer.pnorm[ia]) * tmax_j)
                bd = rn * (dmax_i * np.max(layer.dnorm[ib]) + np.max(layer.dpnorm[ia]) * dmax_j)
            tol = self.coeff_tol
            below = np.flatnonzero((be <= tol * scale) & (bd <= tol * dscale))
            return int(below[0]) if below.size else terms

        # (:meth:`_sums` passes either the plain pairs, |rho| <= PLAIN_RHO, or the others
        # as flat pairs.  A 2-D block of plain pairs sorts its entries into |rho| levels
        # (BOUND_LEVELS) with a cut each: most entries sit well below PLAIN_RHO and need
        # far fewer terms; otherwise one cut at the largest |rho| serves the block.)
        top = float(np.max(absrho)) if absrho.size else 0.0
        kinked = bool(np.any(layer.pnorm))  # the plain series has q = 0
        levels = [r for r in BOUND_LEVELS if r < top] if not (flat or kinked) else []
        levels.append(top)
        cuts = np.maximum.accumulate([cut(r) for r in levels])
        n_hi = int(cuts[-1])
        ha, qa, ra = layer.h[:n_hi, ia], layer.q[:n_hi, ia], layer.r[:n_hi, ia]
        hb, qb, rb = layer.h[:n_hi, ib], layer.q[:n_hi, ib], layer.r[:n_hi, ib]
        level = np.searchsorted(np.asarray(levels[:-1]), absrho, side="left")
        if kinked and not flat and rho.dtype == ra.dtype == np.float64:
            from . import fused

            rows_first = (np.ascontiguousarray(t.T) for t in (ra, hb, qa, rb))
            e, de, d2 = fused.kinked_horner(*rows_first, np.ascontiguousarray(rho), n_hi)
        elif kinked:
            e, de, d2 = (np.zeros(rho.shape, dtype=self.dtype) for _ in range(3))
            for n in range(n_hi - 1, -1, -1):
                horner_shift(e, de, d2, rho)
                e += outer(ra[n], hb[n])
                e += outer(qa[n], rb[n])
        else:
            e, de, d2 = level_horner(ra, hb, rho, absrho, levels, cuts, level)
        d2 *= 2
        # each entry's tail at its level's cut
        own = cuts[level]
        ca, cb = (ia, ib) if flat else (ia[:, None], ib[None, :])
        with np.errstate(under="ignore"):
            rn = absrho ** np.maximum(own - 1, 0)

        def tails(table, norm, pnorm):
            return table[own, ca] * norm[cb] + pnorm[ca] * table[own, cb]

        tail_e = rn * tails(layer.tail, layer.norm, layer.pnorm)
        tail_d = rn * tails(layer.dtail, layer.dnorm, layer.dpnorm)
        noise = layer.noise
        # cheap bounds first (rho = 1 in the weights), ...
        err_e = (outer(noise[ia], layer.l1[ib]) + outer(layer.l1[ia], noise[ib])
                 + 4 * self.eps * outer(layer.tail[0, ia] + layer.pnorm[ia],
                                   layer.tail[0, ib] + layer.norm[ib]) + tail_e)
        err_d = (outer(noise[ia], layer.dl1[ib]) + outer(layer.dl1[ia], noise[ib])
                 + 4 * self.eps * outer(layer.dtail[0, ia] + layer.dpnorm[ia],
                                   layer.dtail[0, ib] + layer.dnorm[ib]) + tail_d)
        # ... then sums weighted by |rho|^n where they are not small enough
        recheck = (err_e > self.rel_error * np.abs(e)) | (err_d > self.rel_error * np.abs(de))
        if not np.any(recheck):
            return e, de, d2, err_e, err_d
        if not flat:  # 2-D blocks: bounds by |rho| level (vectors, no per-term pass)
            level_e, level_d = self._level_bounds(layer, levels, cuts, level, ia, ib, ha, qa,
                                                  ra, hb, qb, rb)
            err_e = np.where(recheck, level_e + tail_e, err_e)
            err_d = np.where(recheck, level_d + tail_d, err_d)
            return e, de, d2, err_e, err_d
        at = np.flatnonzero(recheck)  # flat pairs: ha[n] and hb[n] are per pair
        r = absrho[at]
        xa, ya, za, xb, yb, zb = (np.abs(t[:, at]) for t in (ha, qa, ra, hb, qb, rb))
        la, lb, dla, dlb, mag, dmag = (np.zeros(r.shape, dtype=self.dtype) for _ in range(6))
        for n in range(n_hi - 1, -1, -1):
            dla = dla * r + la
            dlb = dlb * r + lb
            dmag = dmag * r + mag
            la = la * r + (xa[n] + ya[n])
            lb = lb * r + (xb[n] + yb[n])
            mag = mag * r + (za[n] * xb[n] + ya[n] * (zb[n] + yb[n]))
        na, nb = noise[ia[at]], noise[ib[at]]
        err_e[at] = na * lb + la * nb + 4 * self.eps * mag + tail_e[at]
        err_d[at] = na * dlb + dla * nb + 4 * self.eps * dmag + tail_d[at]
        return e, de, d2, err_e, err_d

    def _level_bounds(self, layer, levels, cuts, level, ia, ib, ha, qa, ra, hb, qb, rb):
        """The error bounds of a 2-D block's sums (without their tails) with the weights
        L^n of the entry's level L >= |rho| (``BOUND_LEVELS``) instead of its own |rho|^n:
        coefficient noise times sum_n (|h_n| + |q_n|) L^n of the other side (a vector over
        rows or columns), and Horner's rounding of sum_n (|r_a| |h_b| + |q_a| (|r_b| +
        |q_b|)) L^n bounded by Cauchy-Schwarz, (sum |r_a|^2 L^n)^(1/2) (sum |h_b|^2
        L^n)^(1/2) + ..., a product of row and column vectors; the same with n L^(n-1)
        for the derivative's sums."""
        counts = cuts
        xa, ya, za, xb, yb, zb = (np.abs(t).astype(float) for t in (ha, qa, ra, hb, qb, rb))

        def factor(values, row_side, derivative=False, root=False):
            return level_factor(values, levels, counts, level, row_side, derivative, root)

        noise_a, noise_b = layer.noise[ia][:, None], layer.noise[ib][None, :]
        rounding = 4 * self.eps
        terms = []
        for d in (False, True):  # E's sums, then E''s (weights n L^(n-1))
            terms.append(
                noise_a * factor(xb + yb, False, d) + factor(xa + ya, True, d) * noise_b
                + rounding * (factor(za * za, True, d, True) * factor(xb * xb, False, d, True)
                              + factor(ya * ya, True, d, True)
                              * factor((zb + yb) ** 2, False, d, True)))
        return terms[0], terms[1]

    def _closed(self, layer: _KinkLayer, rho, pi, pj):
        """E[p p] and its first two rho-derivatives on flat pairs (module docstring), in
        longdouble where float64 would lose too much; rounding bounds of the first two."""
        if np.any(layer.beta[pi]) or np.any(layer.beta[pj]):
            return self._closed_damped(layer, rho, pi, pj)
        order = self.order
        m = np.arange(order)
        alpha = layer.alpha
        beta = np.zeros_like(alpha)  # beta_i = (i+1) alpha_(i+1): E' = sum beta beta J
        beta[:, :-1] = m[1:] * alpha[:, 1:]
        gamma = np.zeros_like(alpha)  # gamma_i = (i+2)(i+1) alpha_(i+2): E'' (inner part)
        gamma[:, :-2] = (m[2:] * (m[2:] - 1)) * alpha[:, 2:]
        # rounding: the forms with |alpha|, |beta| on J(|rho|), computed in float64
        abs_a, abs_b = np.abs(alpha).astype(float), np.abs(beta).astype(float)
        mag_e, mag_d = _forms(np.abs(rho).astype(float), order,
                              [(abs_a[pi], abs_a[pj]), (abs_b[pi], abs_b[pj])])[0]
        factor = 2 * order
        use_ld = self.dtype is LD or np.any(
            factor * EPS * mag_e > FLOAT_ROUNDING * layer.norm[pi] * layer.norm[pj])
        dtype = LD if use_ld else float
        pairs = [(c[pi].astype(dtype), c[pj].astype(dtype)) for c in (alpha, beta, gamma)]
        (e, de, d2), d_j = _forms(rho.astype(dtype), order, pairs)
        b0i, b0j = pairs[1][0][:, 0], pairs[1][1][:, 0]
        # d2E/drho2's boundary terms: dJ_(0,j)/drho = j D_(j-1), dJ_(0,0)/drho = delta delta
        for j in range(1, order):
            d2 = d2 + (b0i * pairs[1][1][:, j] + pairs[1][0][:, j] * b0j) * (j * d_j[j - 1])
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 at rho = +-1: NaN, quietly
            d2 = d2 + b0i * b0j / (2 * np.pi * _sine(rho.astype(dtype)))
        eps = EPS_LD if use_ld else EPS
        out = self.dtype
        return (e.astype(out), de.astype(out), d2.astype(out), factor * eps * mag_e,
                factor * eps * mag_d)

    def _closed_damped(self, layer: _KinkLayer, rho, pi, pj):
        """:meth:`_closed` where a side's polynomial is damped, p_i(u) = Y(u) P_i(u)
        exp(-beta_i u^2/2) (beta_i = 0 for an undamped side).  The Gaussian factors fold
        into the covariance: phi_L(u, v) exp(-(beta_i u^2 + beta_j v^2)/2) = Delta^(-1/2)
        phi_L'(u, v), L' = (L^-1 + diag(beta_i, beta_j))^-1, that is a' = (a + beta_j D) /
        Delta, b' = (b + beta_i D) / Delta, c' = c / Delta, with D = ab - c^2 and Delta = 1 +
        beta_i a + beta_j b + beta_i beta_j D; so E[p p] = Delta^(-1/2) sum_(m,l) P_m P_l
        a'^(m/2) b'^(l/2) J_(m,l)(rho').  Price's theorem gives dE/dc = E[p' p'] and
        d2E/dc2 = E[p'' p''] the same way, with p' = Y Q e, Q = P' - beta u P, and p'' = Y R
        e + delta(u) Q(0), R = Q' - beta u Q; the delta's terms are Q_j(0) E[Y(u) R_i(u) e
        delta(v)] (v = 0 leaves u ~ N(0, D/b), the damping folding it to D / (b + beta_i
        D)), its mirror, and Q_i(0) Q_j(0) / (2 pi sqrt(D)).  Returned in rho units like
        :meth:`_closed` (E, sqrt(ab) dE/dc, ab d2E/dc2)."""
        order = self.order + 2  # R has two more coefficients than P
        var = np.asarray(layer.variance, dtype=LD)
        beta = np.asarray(layer.beta, dtype=LD)
        a, b, r = var[pi], var[pj], np.asarray(rho, dtype=LD)
        bi, bj = beta[pi], beta[pj]
        d = np.maximum(a * b * (1 - r) * (1 + r), 0)
        delta = 1 + bi * a + bj * b + bi * bj * d
        a_d, b_d = a + bj * d, b + bi * d
        r_damped = np.clip(r * np.sqrt(a * b / (a_d * b_d)), -1, 1)
        pref = 1 / np.sqrt(delta)
        poly = np.zeros((layer.poly.shape[0], order), dtype=LD)
        poly[:, : self.order] = layer.poly
        first = gauss_derivative(poly, beta)[:, :order]  # Q (degree M)
        second = gauss_derivative(first, beta)[:, :order]  # R (degree M + 1)
        m = np.arange(order)
        with np.errstate(all="ignore"):
            wa = np.sqrt(a_d / delta)[:, None] ** m[None, :]  # a'^(m/2)
            wb = np.sqrt(b_d / delta)[:, None] ** m[None, :]
        coefficients = [(c[pi] * wa, c[pj] * wb) for c in (poly, first, second)]
        # rounding: the forms with absolute coefficients on J(|rho'|), and the rounding of
        # rho' (a few ulps: an error of c of 8 eps |c|) through dE/dc and d2E/dc2
        mags = _forms(np.abs(r_damped).astype(float), order,
                      [(np.abs(x).astype(float), np.abs(y).astype(float))
                       for x, y in coefficients[:2]])[0]
        scale = pref.astype(float)
        factor = 4 * order
        use_ld = self.dtype is LD or np.any(factor * EPS * scale * mags[0]
                                            > FLOAT_ROUNDING * layer.norm[pi] * layer.norm[pj])
        dtype = LD if use_ld else float
        eps = EPS_LD if use_ld else EPS
        pairs = [(x.astype(dtype), y.astype(dtype)) for x, y in coefficients]
        (e, e1, e2), _ = _forms(r_damped.astype(dtype), order, pairs)
        d_, a_d_, b_d_ = (v.astype(dtype) for v in (d, a_d, b_d))
        mu = _half_moments(order).astype(dtype)
        two_pi = dtype(2) * dtype(_PI_LD)
        q0i, q0j = first[pi, 0].astype(dtype), first[pj, 0].astype(dtype)
        pref_ = pref.astype(dtype)
        with np.errstate(divide="ignore", invalid="ignore"):  # rho = +-1: inf or NaN
            s_a, s_b = np.sqrt(d_ / b_d_), np.sqrt(d_ / a_d_)
            g_i = sum(second[pi, j].astype(dtype) * s_a**j * mu[j] for j in range(order))
            g_j = sum(second[pj, j].astype(dtype) * s_b**j * mu[j] for j in range(order))
            e2 = (pref_ * e2 + q0j * g_i / np.sqrt(two_pi * b_d_)
                  + q0i * g_j / np.sqrt(two_pi * a_d_) + q0i * q0j / (two_pi * np.sqrt(d_)))
        sab = np.sqrt(a * b).astype(dtype)
        e, e1 = pref_ * e, pref_ * e1
        abs_c = np.abs(r.astype(float)) * sab.astype(float)
        with np.errstate(invalid="ignore", over="ignore"):
            err_e = factor * eps * scale * mags[0] + 8 * eps * abs_c * np.abs(e1.astype(float))
            err_d = sab.astype(float) * (factor * eps * scale * mags[1]
                                         + 8 * eps * abs_c * np.abs(e2.astype(float)))
        out = self.dtype
        return (e.astype(out), (sab * e1).astype(out), (sab * sab * e2).astype(out),
                err_e, err_d)


def _squares(dtype, *parts: np.ndarray) -> np.ndarray:
    """Column sums of the parts' squares, summed in longdouble (weighted side values: a
    second moment), in ``dtype``."""
    return sum(np.sum(np.asarray(v, dtype=LD) ** 2, axis=0) for v in parts).astype(dtype)


def _sine(rho: np.ndarray) -> np.ndarray:
    """sqrt(1 - rho^2) = sqrt((1 - rho)(1 + rho))."""
    return np.sqrt(np.maximum((1 - rho) * (1 + rho), 0))


def _forms(rho: np.ndarray, order: int, pairs):
    """sum_(m,l) x_m y_l J_(m,l)(rho) for each (x, y) in ``pairs`` (flat pairs' coefficient
    arrays of shape (P, order)), in the float type of ``rho``, and D_j (j < order).  The
    rows J_(m, .) come one at a time from the recurrence of the module docstring."""
    dtype = rho.dtype.type
    mu = _half_moments(2 * order + 2).astype(dtype)
    s2 = _sine(rho)
    pi_ = dtype(_PI_LD)
    root = 1 / np.sqrt(2 * pi_)
    d_j = np.empty((order,) + rho.shape, dtype=dtype)
    d_j[0] = mu[0] * root
    power = np.ones_like(rho)
    for j in range(1, order):
        power = power * s2
        d_j[j] = power * (mu[j] * root)
    col0 = np.empty_like(d_j)  # J_(m,0)
    col0[0] = (pi_ - np.arccos(np.clip(rho, -1, 1))) / (2 * pi_)
    for mm in range(1, order):
        col0[mm] = rho * d_j[mm - 1] + (d_j[0] if mm == 1 else (mm - 1) * col0[mm - 2])
    live = [([np.any(x[:, k]) for k in range(order)],
             np.flatnonzero([np.any(y[:, k]) for k in range(order)])) for x, y in pairs]
    ys = [y[:, cols].T for (_, y), (_, cols) in zip(pairs, live)]  # (live l, P)
    out = [np.zeros_like(rho) for _ in pairs]
    ls = np.arange(1, order, dtype=dtype)[:, None]
    prev2 = prev = None
    for mm in range(order):
        if mm == 0:
            row = col0
        else:
            row = np.empty_like(d_j)
            row[0] = col0[mm]
            row[1:] = rho * (ls * prev[:-1])
            row[1:] += d_j[1:] if mm == 1 else (mm - 1) * prev2[1:]
        for k, ((x, _), (rows_live, cols), y) in enumerate(zip(pairs, live, ys)):
            if rows_live[mm] and cols.size:
                out[k] += x[:, mm] * np.einsum("lp,lp->p", row[cols], y)
        prev2, prev = prev, row
    return out, d_j

