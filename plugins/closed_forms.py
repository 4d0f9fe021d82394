"""Closed forms of the duals of two-sided rectified monomials (arc-cosine kernels).

The family is

    s(u) = alpha u^n Y(u) + beta (-u)^n Y(-u),      n = 0, 1, ..., MAX_DEGREE,

(relu: n = 1, alpha = 1, beta = 0; step: n = 0; abs: n = 1, alpha = beta = 1; leaky relu
with slope m: n = 1, alpha = 1, beta = -m; relu^n: beta = 0).  With theta = arccos(rho) in
[0, pi] and the arc-cosine functions of Cho and Saul (2009),

    J_0 = pi - theta,
    J_1 = sin theta + (pi - theta) cos theta,
    J_2 = 3 sin theta cos theta + (pi - theta)(1 + 2 cos^2 theta),
    J_3 = 4 sin theta + 11 sin theta cos^2 theta + (pi - theta)(6 cos^3 theta + 9 cos theta),

(and for n > 3 from the polynomials of :func:`_arc_polynomials`),
E[u^n Y(u) v^n Y(v)] = (ab)^(n/2) J_n(theta) / (2 pi), and (u, -v) has the angle
pi - theta, so

    E[s(u) s(v)] = (ab)^(n/2) / (2 pi) [(alpha^2 + beta^2) J_n(theta)
                                        + 2 alpha beta J_n(pi - theta)].

The derivative s' = n (alpha u^(n-1) Y(u) - beta (-u)^(n-1) Y(-u)) is the family member
(n - 1, n alpha, -n beta); for n = 0, s' = (alpha - beta) delta(u) and
E[s'(u) s'(v)] = (alpha - beta)^2 / (2 pi sqrt(det L)).

Each dual comes in two evaluations:

* the careful one (a callable on a :class:`~hgmntk.covariance.Covariances` batch, in its
  float type, numpy longdouble in the deep kernels): theta and pi - theta come from the
  accurate determinant, and J_n(psi) near psi = 0, where its terms cancel, from its Taylor
  series in psi (J_n(psi) = O(psi^(2n+1)));
* the block one (``.block(pair_block)`` on float64 blocks, or longdouble arrays, for the
  fast path of the deep kernels): theta = arccos(rho) on whole blocks (its rounding and
  rho's count as an error of c in the recursion), each value with the absolute bound 8 eps
  times the sum of its terms' magnitudes, and infinite (the entry goes to the careful
  path) where rho is within ``RHO_MARGIN`` of +-1.  For n <= 1 the terms are a few
  products of sin, rho, theta and pi - theta, each within ~4 eps of its own magnitude
  whatever the sum does, so the bound holds through a cancellation too: the recursion
  judges it against the value of the layers it checks (an intermediate E crossing zero
  under a bias is no reason for care).  For n = 2, 3 a value that keeps less than
  ``TRUST`` of its terms' magnitude (J_n(theta) ~ (pi - theta)^(2n+1)) is not trusted
  either: the careful path sums its series (all thresholds scale with the unit roundoff
  of the float type).

For n = 0 and alpha beta < 0 the bracket is evaluated as (alpha + beta)^2 pi/2 +
(alpha - beta)^2 arcsin(rho), which keeps its relative accuracy at rho -> 0 (the sign
function's dual 2 arcsin(rho)/pi); with alpha beta >= 0 its two terms have one sign.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np

from hgmntk.block_kernels import precision_ratio
from hgmntk.covariance import Covariances, half_power
from hgmntk.integrator import PairBlock

#: A block value (n >= 2) is trusted when it keeps at least this fraction of its terms'
#: magnitude.
TRUST = 1e-2
#: Block values with 1 - |rho| below this go to the careful path: arccos(rho) there has
#: lost digits (the J_n are smooth, so only its rounding counts) ...
RHO_MARGIN = 1e-6
#: ... and 1/sqrt(1 - rho^2) (the delta-delta dual) loses 1 - |rho| relative to rounding.
RHO_MARGIN_DELTA = 1e-2
#: Rectified monomials up to this degree have closed forms (J_n for n > 3 from the
#: polynomials of :func:`_arc_polynomials`; their terms grow like (2n - 1)!!).
MAX_DEGREE = 12
#: Below this pi - theta (or theta), J_n is summed from its Taylor series.
SERIES_ANGLE = 0.5
_SERIES_TERMS = 34


def _pi(x: np.ndarray):
    """pi in the precision of x (numpy longdouble keeps its extra digits)."""
    return _constants(x.dtype)[0]


@cache
def _constants(dtype) -> tuple:
    """(pi, eps, eps / eps of float64) in the float type ``dtype``."""
    dtype = np.dtype(dtype)
    pi = np.arctan2(np.zeros((), dtype=dtype), -np.ones((), dtype=dtype))[()]
    return pi, float(np.finfo(dtype).eps), precision_ratio(dtype)


def _rest(block: PairBlock):
    """pi - theta of a block, computed once for both duals."""
    rest = block.cache.get("pi - theta")
    if rest is None:
        rest = block.cache["pi - theta"] = _pi(block.rho) - block.theta
    return rest


def _j_low(n: int, mix: float, block: PairBlock):
    """J_n(theta) + mix J_n(pi - theta) of a block, n = 0, 1, and the sum of its terms'
    magnitudes, collected (J_0(pi - theta) = theta; J_1(pi - theta) = sin - theta rho):

        n = 0:  rest + mix theta,                   magnitude rest + |mix| theta;
        n = 1:  (1 + mix) sin + rho (rest - mix theta),
                magnitude |1 + mix| sin + |rho| (rest + |mix| theta)  (1 + mix is a
                constant: its product with sin rounds once),

    with rest = pi - theta >= 0 and sin >= 0."""
    rest = _rest(block)
    if n == 0:
        if mix == 0:
            return rest, rest
        theta = block.theta
        return rest + mix * theta, rest + abs(mix) * theta
    rho, sin = block.rho, block.sin
    if mix == 0:
        t = rest * rho
        return sin + t, sin + np.abs(t)
    theta = block.theta
    value = (1 + mix) * sin + rho * (rest - mix * theta)
    magnitude = abs(1 + mix) * sin + np.abs(rho) * (rest + abs(mix) * theta)
    return value, magnitude


# ----------------------------------------------------------------- J_n and its series
def _j_terms(n: int, angle, sin, cos, rest):
    """The terms of J_n at ``angle`` as a list of arrays (their sum is J_n), given sin and
    cos of the angle and rest = pi - angle."""
    if n == 0:
        return [rest]
    if n == 1:
        return [sin, rest * cos]
    if n == 2:
        return [3 * sin * cos, rest, 2 * rest * cos * cos]
    if n == 3:
        return [4 * sin, 11 * sin * cos * cos, 6 * rest * cos**3, 9 * rest * cos]
    p, q = (np.array([float(x) for x in poly]) for poly in _arc_polynomials(n))
    return ([rest * (float(w) * cos**k) for k, w in enumerate(p) if w]
            + [sin * (float(w) * cos**k) for k, w in enumerate(q) if w])


@cache
def _arc_polynomials(n: int) -> tuple[list[Fraction], list[Fraction]]:
    """Polynomials p_n, q_n (coefficients, lowest degree first) with
    J_n(theta) = (pi - theta) p_n(cos theta) + sin(theta) q_n(cos theta).

    From Cho and Saul's J_n = (-1)^n sin^(2n+1) (1/sin d/dtheta)^n ((pi - theta)/sin):
    writing the k-th derivative term as ((pi - theta) P_k(c) + sin Q_k(c)) / sin^(2k+1),
    c = cos theta, one more step gives
    P_(k+1) = -(1 - c^2) P_k' - (2k + 1) c P_k,  Q_(k+1) = -P_k - 2k c Q_k - (1 - c^2) Q_k',
    from P_0 = 1, Q_0 = 0; p_n, q_n = (-1)^n P_n, (-1)^n Q_n (non-negative coefficients:
    J_1 = sin + (pi - theta) cos, J_2 = 3 sin cos + (pi - theta)(1 + 2 cos^2), ...)."""
    zero = Fraction(0)

    def add(*polys):
        out = [zero] * max(len(x) for x in polys)
        for x in polys:
            for i, v in enumerate(x):
                out[i] += v
        return out

    def times_c(a, f):
        return [zero] + [f * v for v in a]

    def one_minus_c2(a):
        return add(a, [zero, zero] + [-v for v in a])

    def derivative(a):
        return [k * a[k] for k in range(1, len(a))] or [zero]

    big_p, big_q = [Fraction(1)], [zero]
    for k in range(n):
        new_p = add([-v for v in one_minus_c2(derivative(big_p))], times_c(big_p, -(2 * k + 1)))
        new_q = add([-v for v in big_p], times_c(big_q, -2 * k),
                    [-v for v in one_minus_c2(derivative(big_q))])
        big_p, big_q = new_p, new_q
    sign = (-1) ** n
    return [sign * v for v in big_p], [sign * v for v in big_q]


def _series_mul(p: list[Fraction], q: list[Fraction], m: int) -> list[Fraction]:
    out = [Fraction(0)] * m
    for i, pi_ in enumerate(p[:m]):
        if pi_:
            for j, qj in enumerate(q[: m - i]):
                out[i + j] += pi_ * qj
    return out


@cache
def _psi_series(n: int) -> np.ndarray:
    """Taylor coefficients (float, in powers of psi) of J_n(pi - psi) = O(psi^(2n+1)).

    With theta = pi - psi: sin theta = sin psi, cos theta = -cos psi, pi - theta = psi.
    """
    m = 2 * n + 2 + 2 * _SERIES_TERMS
    sin = [Fraction(0)] * m
    cos = [Fraction(0)] * m
    fact = Fraction(1)
    for k in range(m):
        if k:
            fact *= k
        if k % 2:
            sin[k] = Fraction((-1) ** (k // 2)) / fact
        else:
            cos[k] = Fraction((-1) ** (k // 2)) / fact
    neg_cos = [-c for c in cos]
    psi = [Fraction(0)] * m
    psi[1] = Fraction(1)

    def mul(*factors):
        out = factors[0]
        for f in factors[1:]:
            out = _series_mul(out, f, m)
        return out

    def scaled(c, s):
        return [c * v for v in s]

    if n > 3:  # (pi - theta) p_n(cos theta) + sin(theta) q_n(cos theta) at theta = pi - psi
        p, q = _arc_polynomials(n)
        terms = []
        for poly, first in ((p, psi), (q, sin)):
            power = [Fraction(1)] + [Fraction(0)] * (m - 1)
            for w in poly:
                if w:
                    terms.append(mul(first, [w * v for v in power]))
                power = _series_mul(power, neg_cos, m)
        total = [sum(t[k] for t in terms) for k in range(m)]
        assert all(c == 0 for c in total[: 2 * n + 1]), "J_n(pi - psi) must be O(psi^(2n+1))"
        return np.array([float(c) for c in total])
    terms = {
        0: [psi],
        1: [sin, mul(psi, neg_cos)],
        2: [scaled(3, mul(sin, neg_cos)), psi, scaled(2, mul(psi, neg_cos, neg_cos))],
        3: [
            scaled(4, sin),
            scaled(11, mul(sin, neg_cos, neg_cos)),
            scaled(6, mul(psi, neg_cos, neg_cos, neg_cos)),
            scaled(9, mul(psi, neg_cos)),
        ],
    }[n]
    total = [sum(t[k] for t in terms) for k in range(m)]
    assert all(c == 0 for c in total[: 2 * n + 1]), "J_n(pi - psi) must be O(psi^(2n+1))"
    return np.array([float(c) for c in total])


def _j_near_pi(n: int, psi):
    """J_n(pi - psi) from its Taylor series (accurate for small psi, any float type)."""
    coeffs = _psi_series(n)[2 * n + 1 :: 2]  # powers psi^(2n+1), psi^(2n+3), ...
    x2 = psi * psi
    acc = np.zeros_like(psi)
    for c in coeffs[::-1]:
        acc = acc * x2 + c
    return acc * psi ** (2 * n + 1)


def _series_angle(n: int) -> float:
    """Below this psi = pi - theta J_n is summed from its series: ``SERIES_ANGLE`` for
    n <= 3; pi/2 for higher n, whose direct terms cancel for every theta > pi/2 (for
    theta <= pi/2 they all have one sign: p_n and q_n have non-negative coefficients)."""
    return SERIES_ANGLE if n <= 3 else np.pi / 2


def _j_careful(n: int, theta, psi, sin):
    """J_n(theta) without cancellation: direct for theta <= pi - SERIES_ANGLE (all terms
    then have one sign, or the negative ones are small), series in psi = pi - theta else
    (see :func:`_series_angle`)."""
    cos = np.cos(theta)
    direct = sum(_j_terms(n, theta, sin, cos, psi))
    small = psi < _series_angle(n)
    if np.any(small):
        direct = np.where(small, _j_near_pi(n, np.where(small, psi, 0)), direct)
    return direct


# ---------------------------------------------------------------------- the family
class RectifiedFamily:
    """The duals of s(u) = alpha u^n Y(u) + beta (-u)^n Y(-u) (see the module docstring)."""

    def __init__(self, n: int, alpha: float, beta: float):
        if not 0 <= n <= MAX_DEGREE:
            raise ValueError(f"n must be 0..{MAX_DEGREE}, got {n}")
        self.n, self.alpha, self.beta = n, float(alpha), float(beta)

    # E[s s] ----------------------------------------------------------------------
    def ss(self, cov: Covariances) -> np.ndarray:
        """(ab)^(n/2)/(2 pi) [(alpha^2 + beta^2) J_n(theta) + 2 alpha beta J_n(pi - theta)]."""
        n, al, be = self.n, self.alpha, self.beta
        theta, psi = cov.theta, cov.psi
        pi = _pi(theta)
        if n == 0 and al * be < 0:  # (alpha + beta)^2 pi/2 + (alpha - beta)^2 arcsin(rho)
            phi = np.arctan2(cov.c, np.sqrt(cov.det))
            return ((al + be) ** 2 * pi / 2 + (al - be) ** 2 * phi) / (2 * pi)
        with np.errstate(invalid="ignore", divide="ignore"):
            sin = np.sqrt(cov.det / (cov.a * cov.b))
        sin = np.where(np.isfinite(sin), sin, 0)
        total = (al * al + be * be) * _j_careful(n, theta, psi, sin)
        if al * be != 0:
            total = total + 2 * al * be * _j_careful(n, psi, theta, sin)
        return half_power(cov.a * cov.b, n) / (2 * pi) * total

    def _compiled_block(self, block: PairBlock):
        """For n = 1 on a 2-D float64 block: both duals, their bounds and the slope from
        one compiled loop (:func:`hgmntk.plugins.compiled_forms.rectified_linear_block`,
        the formulas of :meth:`ss_block` and :meth:`dsds_block`), computed once per block;
        None elsewhere."""
        rho = block.rho
        if self.n != 1 or rho.dtype != np.float64 or rho.ndim != 2:
            return None
        key = ("rectified linear", self.alpha, self.beta)
        out = block.cache.get(key)
        if out is None:
            from . import compiled_forms as compiled  # numba loads with the first kernel

            al, be = self.alpha, self.beta
            pi = np.pi
            d_al, d_be = al, -be  # s' = alpha Y(u) - beta Y(-u): the family (0, al, -be)
            d_arcsin = d_al * d_be < 0
            if d_arcsin:
                d_mix, d_scale, d_big = 0.0, (d_al - d_be) ** 2 / (2 * pi), (d_al + d_be) ** 2 / 4
                asin = np.arcsin(rho)
            else:
                d_mix = 2 * d_al * d_be / (d_al * d_al + d_be * d_be)
                d_scale, d_big, asin = (d_al * d_al + d_be * d_be) / (2 * pi), 0.0, rho
            out = block.cache[key] = compiled.rectified_linear_block(
                rho, block.theta, asin, np.ascontiguousarray(block.sab),
                2 * al * be / (al * al + be * be), (al * al + be * be) / (2 * pi),
                1 - RHO_MARGIN, d_mix, d_scale, d_big, d_arcsin, (d_al - d_be) ** 2 / (2 * pi))
        return out

    def ss_block(self, block: PairBlock):
        """Block form of :meth:`ss` (float64 or longdouble): (values, absolute error bound,
        None); the bound is 8 eps times the terms' magnitude, infinite where rho is within
        ``RHO_MARGIN`` of +-1 or (n >= 2) the value keeps less than ``TRUST`` of it."""
        out = self._compiled_block(block)
        if out is not None:
            return out[0], out[1], None
        n, al, be = self.n, self.alpha, self.beta
        rho = block.rho
        pi, eps, ratio = _constants(rho.dtype)
        if n == 0 and al * be < 0:
            # ((alpha + beta)^2 pi/2 + (alpha - beta)^2 arcsin(rho)) / (2 pi)
            big, small = (al + be) ** 2 / 4, ((al - be) ** 2 / (2 * pi)) * np.arcsin(rho)
            value = small + big
            magnitude = np.abs(small) + big
            return value, (8 * eps) * magnitude, None
        mix = 2 * al * be / (al * al + be * be)
        if n <= 1:  # relu, step, abs, leaky relu: a few array operations
            value, magnitude = _j_low(n, mix, block)
            hi = 1 - RHO_MARGIN * ratio
            trusted = (rho >= -hi) & (rho <= hi)
        else:
            theta, sin = block.theta, block.sin
            rest = _rest(block)
            t1 = _j_terms(n, theta, sin, rho, rest)
            value = sum(t1)
            magnitude = sum(np.abs(t) for t in t1)
            if mix != 0:
                t2 = _j_terms(n, rest, sin, -rho, theta)
                value = value + mix * sum(t2)
                magnitude = magnitude + abs(mix) * sum(np.abs(t) for t in t2)
            trusted = (np.abs(value) >= TRUST * ratio * magnitude) & (
                np.abs(rho) <= 1 - RHO_MARGIN * ratio)
        scale = (al * al + be * be) / (2 * pi)
        if n:
            scale = scale * block.sab ** n if n > 1 else scale * block.sab
        err = np.where(trusted, (8 * eps) * scale * magnitude, np.inf)
        return scale * value, err, None

    # E[s' s'] --------------------------------------------------------------------
    def derivative(self) -> RectifiedFamily | None:
        """The family of s' (None for n = 0, where s' is a multiple of delta)."""
        if self.n == 0:
            return None
        return RectifiedFamily(self.n - 1, self.n * self.alpha, -self.n * self.beta)

    def dsds(self, cov: Covariances) -> np.ndarray:
        """E[s'(u) s'(v)]: the derivative's family, or (alpha - beta)^2/(2 pi sqrt(det))."""
        d = self.derivative()
        if d is not None:
            return d.ss(cov)
        jump2 = (self.alpha - self.beta) ** 2
        with np.errstate(divide="ignore"):
            return jump2 / (2 * _pi(cov.det) * np.sqrt(cov.det))

    def dsds_block(self, block: PairBlock):
        """Block form of :meth:`dsds`: (values, absolute error bound, slope), the slope
        being |d E[s's'] / dc| = |E[s''s'']| (Price), which carries the error of c."""
        out = self._compiled_block(block)
        if out is not None:
            return out[2], out[3], out[4]
        d = self.derivative()
        rho = block.rho
        pi, eps, ratio = _constants(rho.dtype)
        if d is not None:
            # a non-finite slope (rho = +-1, a zero variance) needs no mark here: the
            # recursion's bound of E[s's'] adds slope * err(c) and so becomes non-finite
            value, err, _ = d.ss_block(block)
            dd = d.derivative()
            if dd is not None:
                slope = np.abs(dd.ss_block(block)[0])
            else:  # s'' = jump delta: E[s''s''] = jump^2 / (2 pi sqrt(det))
                with np.errstate(divide="ignore", over="ignore"):
                    slope = ((d.alpha - d.beta) ** 2 / (2 * pi)) / (block.sab * block.sin)
            return value, err, slope
        jump2 = (self.alpha - self.beta) ** 2
        near = np.abs(rho) > 1 - RHO_MARGIN_DELTA * ratio
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf: untrusted
            value = jump2 / (2 * pi * block.sab * block.sin)
            slope = np.abs(rho) * value / (block.sab * block.sin**2)
        return value, np.where(near, np.inf, 8 * eps * value), slope

    def forms(self) -> dict:
        """The closed forms to attach to an activation: {"ss": ..., "dsds": ...}, each a
        careful callable with the block evaluation as its ``block`` attribute."""
        ss, dsds = _with_block(self.ss, self.ss_block), _with_block(self.dsds, self.dsds_block)
        return {"ss": ss, "dsds": dsds}


def _with_block(careful, block):
    def form(cov: Covariances) -> np.ndarray:
        return careful(cov)

    form.__doc__ = careful.__doc__
    form.block = block
    return form
