"""Closed forms of the duals of smooth activations: erf, sin and cos, exp, Gaussian, gelu,
polynomials.

Every form is written in the quantities of a pair that carry no cancellation: the square
roots sa, sb of the variances, c, and the accurate determinant det = ab - c^2 (Gaussian
integrals of these activations give determinants such as (1 + t a)(1 + t b) - t^2 c^2 =
1 + t (a + b) + t^2 det, a sum of positive terms), and

    a + b - 2c = (sa - sb)^2 + 2 det / (sa sb + c)   (c > 0),
    a + b + 2c = (sa - sb)^2 + 2 det / (sa sb - c)   (c < 0),

so no formula subtracts two nearly equal numbers at rho -> +-1.  With t = 2B^2 and
D_t = 1 + t (a + b) + t^2 det:

* erf, s = A erf(B u) + C:  E[ss] = A^2 (2/pi) arctan2(t c, sqrt(D_t)) + C^2,
  E[s's'] = A^2 B^2 (4/pi) / sqrt(D_t);
* sin / cos, s = A sin(B u + C) or A cos(B u + C):  with P = B^2 (a + b - 2c)/2 and
  Q = B^2 (a + b + 2c)/2,  E[ss] = (A^2/2) (e^-P + g e^-Q), g = -cos 2C (sin), cos 2C (cos);
  for g < 0 as (A^2/2) ((e^-P - e^-Q) + (1 + g) e^-Q) with e^-P - e^-Q from expm1 and
  1 + g = 2 sin^2 C (sin), 2 cos^2 C (cos); s' is the other function with amplitude A B;
* exp, s = A exp(B u):  E[ss] = A^2 exp(B^2 (a + b + 2c)/2), s' = B s;
* Gaussian, s = A exp(B u^2) (converges for 2 B max(a, b) < 1):  with
  G = (1 - 2B a)(1 - 2B b) - 4 B^2 c^2 = 1 - 2B (a + b) + 4 B^2 det,
  E[ss] = A^2 / sqrt(G),  E[s's'] = 4 A^2 B^2 c / G^(3/2);
* gelu, s = u Phi(u) (Tsuchida, Pearce and Gallagher 2021, "Avoiding kernel fixed points"),
  with delta^2 = (a + 1)(b + 1) - c^2 = 1 + a + b + det:
  E[ss] = [(c^2 + ab delta^2) / ((a + 1)(b + 1) delta) + c arctan2(c, delta)] / (2 pi) + c/4,
  E[s's'] = c/(2 pi delta) [1/delta^2 + (2 + a + b)/((a + 1)(b + 1))] + 1/4
            + arctan2(c, delta)/(2 pi)   (= dE[ss]/dc by Price's theorem),
  where 1/4 + arctan2(c, delta)/(2 pi) is evaluated as arctan2(delta, -c)/(2 pi) (no
  cancellation as c -> -infinity),
  dE[s's']/dc = N / (2 pi delta^5), N = delta^4 + delta^2 + (a + b) det + a^2 + b^2 + 4ab
                + 3(a + b) + c^2 + 2 > 0;
* polynomials, s = sum_j p_j u^j: the finite Mehler sum
  E[ss] = sum_m c^m / m! g_m(a) g_m(b),  g_m(a) = E[s^(m)(u)] = sum_i p_(m+2i) (m+2i)! /
  (2^i i!) a^i  (Isserlis).

Each form has a careful evaluation (on :class:`~hgmntk.covariance.Covariances`, in their
float type: long double in the deep kernels' careful path) and a block one for the fast
path, returning (values, absolute error bound, slope |dE[s's']/dc| for E[s's']).  The bound
is a few units of roundoff times the magnitude of the terms (the sum of their absolute
values), times the growth of exponentials with large arguments (e^x with x carrying a
relative error eps has a relative error |x| eps).  On float64 blocks each form's
block evaluation runs as one compiled loop (:mod:`hgmntk.plugins.compiled_forms`, the same
formulas entry by entry, both duals and the slope in one pass); the numpy forms serve
long-double blocks and the careful path.  The error of c itself is the
recursion's business (Price's theorem: it moves E[ss] by E[s's'] dc and E[s's'] by the
slope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from hgmntk.covariance import VARIANCE_RANGE, Covariances
from hgmntk.integrator import PairBlock

from .closed_forms import _pi, _with_block

# The forms are written so their intermediate quantities neither overflow nor underflow
# for variances within VARIANCE_RANGE; the closed integrator refuses others clearly.


@dataclass
class Pair:
    """What a form needs of a batch of pairs: sa, sb (broadcastable), sab = sa sb, c,
    det = ab - c^2 (accurate), the float type's unit roundoff, and rho where the batch is
    a block (then a + b - 2|c| = (sa - sb)^2 + 2 sab (1 - |rho|) needs no division)."""

    sa: np.ndarray
    sb: np.ndarray
    sab: np.ndarray
    c: np.ndarray
    det_given: np.ndarray | None
    eps: float
    rho: np.ndarray | None = None
    cache: dict = field(default_factory=dict)

    @property
    def det(self):
        """ab - c^2: given (accurate), or sab^2 (1 - rho)(1 + rho) on a block."""
        if self.det_given is None:
            rho = self.rho
            self.det_given = (self.sab * self.sab) * ((1 - rho) * (1 + rho))
        return self.det_given

    @property
    def a(self):
        return self.sa * self.sa

    @property
    def b(self):
        return self.sb * self.sb

    def sum_sq(self):
        """a + b."""
        out = self.cache.get("a + b")
        if out is None:
            out = self.cache["a + b"] = self.a + self.b
        return out

    def sum_abs(self):
        """a + b - 2|c| >= 0 without cancellation: (sa - sb)^2 + 2 det / (sa sb + |c|)."""
        out = self.cache.get("sum_abs")
        if out is None:
            if self.rho is not None:
                out = self.diff2() + (2 * self.sab) * (1 - np.abs(self.rho))
            else:
                diff = self.sa - self.sb
                with np.errstate(divide="ignore", invalid="ignore"):
                    out = diff * diff + 2 * self.det / (self.sab + np.abs(self.c))
                out = np.where(self.sab + np.abs(self.c) > 0, out, self.a + self.b)
            self.cache["sum_abs"] = out
        return out

    def diff2(self):
        """(sa - sb)^2."""
        out = self.cache.get("diff2")
        if out is None:
            diff = self.sa - self.sb
            out = self.cache["diff2"] = diff * diff
        return out

    def sum_plus(self):
        """a + b + 2c: (sa - sb)^2 + 2 sab (1 + rho) on a block (non-negative terms); else
        as it is for c >= 0, as a + b - 2|c| for c < 0."""
        if self.rho is not None:
            return self.diff2() + (2 * self.sab) * (1 + self.rho)
        return np.where(self.c >= 0, self.sum_sq() + 2 * self.c, self.sum_abs())

    def trig(self, B: float):
        """exp(-min(P, Q)), exp(-max(P, Q)), -expm1(-|Q - P|) and the mask Q >= P, with
        P, Q = B^2 (a + b -+ 2c)/2 (Q - P = 2 B^2 c): shared by a trigonometric form and
        its derivatives."""
        key = ("trig", B)
        out = self.cache.get(key)
        if out is None:
            k2 = np.abs((2 * B * B) * self.c)
            low = (B * B / 2) * self.sum_abs()
            out = (np.exp(-low), np.exp(-(low + k2)), -np.expm1(-k2), self.c >= 0)
            self.cache[key] = out
        return out

    @classmethod
    def of_covariances(cls, cov: Covariances) -> Pair:
        sa, sb = np.sqrt(cov.a), np.sqrt(cov.b)
        return cls(sa, sb, sa * sb, cov.c, cov.det, float(np.finfo(cov.c.dtype).eps))

    @classmethod
    def of_block(cls, block: PairBlock) -> Pair:
        cached = block.cache.get("smooth pair")
        if cached is None:
            rho, sab = block.rho, block.sab
            cached = block.cache["smooth pair"] = cls(
                block.sa, block.sb, sab, rho * sab, None, float(np.finfo(rho.dtype).eps), rho)
        return cached


class SmoothForm:
    """A closed-form dual pair (E[ss], E[s's']).  Subclasses define :meth:`terms`: the
    values, magnitudes and relative growth of E[ss] on a :class:`Pair`, and
    :meth:`derivative` (the form of s'; its own derivative gives the slope)."""

    def terms(self, p: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray | float]:
        raise NotImplementedError

    def derivative(self) -> SmoothForm:
        raise NotImplementedError

    def key(self) -> tuple:
        """What identifies the form (its class and parameters, not the private caches):
        results on a pair are shared by equal forms (E[ss] of the form is the slope's
        source for some).  Computed once per form."""
        key = self.__dict__.get("_key")
        if key is None:
            public = sorted((k, v) for k, v in vars(self).items() if not k.startswith("_"))
            key = self._key = (type(self).__name__, repr(public))
        return key

    def cached_terms(self, p: Pair):
        key = ("terms", self.key())
        out = p.cache.get(key)
        if out is None:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = p.cache[key] = self.terms(p)
        return out

    def slope(self, p: Pair) -> np.ndarray:
        """|dE[s's']/dc| = |E[s''s'']| on the pair (default: the second derivative's form)."""
        return np.abs(self.derivative().derivative().cached_terms(p)[0])

    # careful evaluations (Covariances in any float type) ------------------------------
    def ss(self, cov: Covariances) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self.terms(Pair.of_covariances(cov))[0]

    def dsds(self, cov: Covariances) -> np.ndarray:
        return self.derivative().ss(cov)

    # block evaluations ------------------------------------------------------------------
    def _block(self, p: Pair):
        value, magnitude, growth = self.cached_terms(p)
        with np.errstate(over="ignore", invalid="ignore"):
            # NaN (inf * 0) or inf: an unusable bound, which the recursion marks
            err = (p.eps * (8 + growth)) * magnitude
        return value, err

    def compiled(self):
        """A compiled loop ``f(sa, sb, rho, sab) -> (E[ss], bound, E[s's'], bound, slope)``
        over float64 blocks (see :mod:`hgmntk.plugins.compiled_forms`, imported here: numba
        loads with the first kernel, not with the registry), or None."""
        return None

    def _compiled_block(self, block: PairBlock):
        """The compiled loop's five arrays for a 2-D float64 block (computed once per
        block for both duals), or None where the numpy forms serve it."""
        rho = block.rho
        if rho.dtype != np.float64 or rho.ndim != 2:
            return None
        key = ("compiled", self.key())
        out = block.cache.get(key)
        if out is None:
            run = self.__dict__.get("_run", False)
            if run is False:  # built once per form (polynomials build tables)
                run = self._run = self.compiled()
            if run is None:
                return None
            sa = np.ascontiguousarray(np.broadcast_to(block.sa, (rho.shape[0], 1)))
            sb = np.ascontiguousarray(np.broadcast_to(block.sb, (1, rho.shape[1])))
            out = block.cache[key] = run(sa, sb, rho, np.ascontiguousarray(block.sab))
        return out

    def ss_block(self, block: PairBlock):
        out = self._compiled_block(block)
        if out is not None:
            return out[0], out[1], None
        value, err = self._block(Pair.of_block(block))
        return value, err, None

    def dsds_block(self, block: PairBlock):
        out = self._compiled_block(block)
        if out is not None:
            return out[2], out[3], out[4]
        p = Pair.of_block(block)
        d = self.derivative()
        value, err = d._block(p)
        with np.errstate(over="ignore", invalid="ignore"):
            slope = self.slope(p)
        return value, err, slope

    def collinear(self, sigma: np.ndarray):
        """E[s(u)^2] and E[s'(u)^2] for u ~ N(0, sigma) (the forms at rho = 1, det = 0) and
        the mask of the finite ones: the deep kernels' diagonal."""
        sq = np.sqrt(sigma)
        p = Pair(sq, sq, sigma, sigma, np.zeros_like(sigma), float(np.finfo(sigma.dtype).eps))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            e = self.terms(p)[0]
            f = self.derivative().terms(p)[0]
        return e, f, np.isfinite(e) & np.isfinite(f)

    def singular(self, a: np.ndarray, b: np.ndarray, sign: float) -> np.ndarray:
        """E[ss] at c = sign sqrt(ab) (det = 0, rho = sign), in the float type of a."""
        sa, sb = np.sqrt(a), np.sqrt(b)
        sab = sa * sb
        p = Pair(sa, sb, sab, sign * sab, np.zeros_like(sab), float(np.finfo(sab.dtype).eps))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self.terms(p)[0]

    def forms(self) -> dict:
        """{"ss": ..., "dsds": ...}: careful callables with their block evaluations as
        ``block`` attributes (as :meth:`hgmntk.plugins.closed_forms.RectifiedFamily.forms`);
        the block evaluation of E[ss] also gives the diagonal (``collinear``), and each
        form its values at rho = +-1 (``singular(a, b, sign)``)."""
        ss = _with_block(self.ss, _Block(self.ss_block, self.collinear))
        dsds = _with_block(self.dsds, _Block(self.dsds_block, None))
        ss.singular, dsds.singular = self.singular, self.derivative().singular
        ss.variance_range = dsds.variance_range = VARIANCE_RANGE
        return {"ss": ss, "dsds": dsds}


class _Block:
    """A block evaluation with the diagonal's values (``collinear``) attached.  The forms
    take rho and sqrt(ab), never arccos(rho): rho's rounding is relative
    (``relative_rho``, see :func:`hgmntk.block_kernels.recursion`)."""

    relative_rho = True
    collinear_any_float = True  # the diagonal in the deep kernels' long double

    def __init__(self, evaluate, collinear) -> None:
        self.evaluate, self.collinear = evaluate, collinear

    def __call__(self, block: PairBlock):
        return self.evaluate(block)


def _erf_shared(p: Pair, B: float):
    """D_t = 1 + t (a + b) + t^2 det (t = 2 B^2) and sqrt(D_t), shared by erf's forms."""
    key = ("erf", B)
    out = p.cache.get(key)
    if out is None:
        t = 2 * B * B
        big = 1 + t * p.sum_sq() + (t * t) * p.det
        out = p.cache[key] = (big, np.sqrt(big))
    return out


class ErfForm(SmoothForm):
    """s = A erf(B u) + C."""

    def __init__(self, A: float, B: float, C: float = 0.0, *, derivative: bool = False):
        self.A, self.B, self.C, self.is_derivative = float(A), float(B), float(C), derivative

    def terms(self, p: Pair):
        A, B = self.A, self.B
        pi = _pi(p.c)
        big, root = _erf_shared(p, B)
        if self.is_derivative:  # s = A (2B/sqrt(pi)) exp(-B^2 u^2)
            value = (4 * A * A * B * B / pi) / root
            return value, value, 0.0
        angle = np.arctan2((2 * B * B) * p.c, root)
        value = (2 * A * A / pi) * angle + self.C * self.C
        return value, (2 * A * A / pi) * np.abs(angle) + self.C * self.C, 0.0

    def derivative(self) -> SmoothForm:
        if self.is_derivative:
            return _ErfSlope(self.A, self.B)
        return ErfForm(self.A, self.B, derivative=True)

    def compiled(self):
        if self.is_derivative:
            return None
        from . import compiled_forms as compiled
        A, B, C = self.A, self.B, self.C
        return lambda sa, sb, rho, sab: compiled.erf(sa, sb, rho, sab, A, B, C)


class _ErfSlope(SmoothForm):
    """dE[s's']/dc of erf: A^2 B^2 (4/pi) t^2 c / D_t^(3/2)."""

    def __init__(self, A: float, B: float):
        self.A, self.B = A, B

    def terms(self, p: Pair):
        t = 2 * self.B * self.B
        big, root = _erf_shared(p, self.B)
        value = (4 * self.A ** 2 * self.B ** 2 * t * t / _pi(p.c)) * p.c / (big * root)
        return value, np.abs(value), 0.0


class TrigForm(SmoothForm):
    """s = A sin(B u + C) (``cosine`` False) or A cos(B u + C)."""

    def __init__(self, A: float, B: float, C: float = 0.0, *, cosine: bool = False):
        self.A, self.B, self.C, self.cosine = float(A), float(B), float(C), cosine

    def terms(self, p: Pair):
        B = self.B
        # e^-P + g e^-Q = (e^-P - e^-Q) + (1 + g) e^-Q; with m = e^-min(P, Q),
        # small = e^-max(P, Q) and q = 1 - e^-|Q - P|:  e^-P - e^-Q = +-m q
        m, small, q, q_ge_p = p.trig(B)
        g, one_plus_g, scale = self._constants()
        growth = (B * B) * p.sum_sq()  # P + Q: the exponents' relative error eps (P + Q)
        if g == 1:  # cos(Bu + k pi): e^-P + e^-Q = m + small
            value = m + small
            return scale * value, scale * value, growth
        if g == -1:  # sin(Bu + k pi): e^-P - e^-Q = sign(c) m q
            mq = m * q
            return scale * np.copysign(mq, p.c), scale * mq, growth
        eq = np.where(q_ge_p, small, m)
        if g >= 0:
            value = np.where(q_ge_p, m, small) + g * eq
            magnitude = value
        elif g >= -0.5:  # the plain sum: its magnitude is the split form's or smaller,
            # but near c = 0, where both are within a factor 3 of the value
            ep = np.where(q_ge_p, m, small)
            value = ep + g * eq
            magnitude = ep - g * eq
        else:
            # Q >= P: m q + (1 + g) e^-Q, two non-negative terms.  Q < P: of
            # e^-P + g e^-Q (magnitude e^-P + |g| e^-Q) and -m q + (1 + g) e^-Q (magnitude
            # m q + (1 + g) e^-Q) the one of smaller magnitude (the first for a small |g|,
            # e.g. Rbf's cos(pi/2), the second for g near -1, e.g. sin)
            mq = m * q
            split = mq + one_plus_g * eq
            direct = small - g * m  # magnitude, for Q < P (e^-P = small, e^-Q = m)
            use_direct = ~q_ge_p & (direct < split)
            value = np.where(use_direct, small + g * m,
                             np.where(q_ge_p, mq, -mq) + one_plus_g * eq)
            magnitude = np.where(use_direct, direct, split)
        return scale * value, scale * magnitude, growth

    def derivative(self) -> SmoothForm:
        return TrigForm(self.A * self.B, self.B, self.C, cosine=not self.cosine)

    def _constants(self) -> tuple[float, float, float]:
        """g = -+cos 2C, 1 + g and A^2/2 as :meth:`terms` uses them."""
        cos2 = math.cos(2 * self.C)
        g = cos2 if self.cosine else -cos2
        one_plus_g = 2 * (math.cos(self.C) ** 2 if self.cosine else math.sin(self.C) ** 2)
        return g, one_plus_g, self.A * self.A / 2

    def compiled(self):
        from . import compiled_forms as compiled

        B = self.B
        constants = self._constants() + self.derivative()._constants()
        return lambda sa, sb, rho, sab: compiled.trig(sa, sb, rho, sab, B, *constants)

    def slope(self, p: Pair) -> np.ndarray:
        """s'' = -B^2 s: |E[s''s'']| = B^4 |E[ss]|."""
        return self.B**4 * np.abs(self.cached_terms(p)[0])


class ExpForm(SmoothForm):
    """s = A exp(B u)."""

    def __init__(self, A: float, B: float):
        self.A, self.B = float(A), float(B)

    def terms(self, p: Pair):
        key = ("exp", self.B)  # e^Q and Q, shared with the derivative's form
        shared = p.cache.get(key)
        if shared is None:
            Q = (self.B * self.B / 2) * p.sum_plus()  # B^2 (a + b + 2c) / 2
            shared = p.cache[key] = (np.exp(Q), 2 * Q)
        value = (self.A * self.A) * shared[0]
        return value, value, shared[1]

    def derivative(self) -> SmoothForm:
        return ExpForm(self.A * self.B, self.B)

    def compiled(self):
        from . import compiled_forms as compiled

        aa, d = self.A * self.A, self.derivative()
        daa, B = d.A * d.A, self.B
        return lambda sa, sb, rho, sab: compiled.exponential(sa, sb, rho, sab, aa, daa, B)

    def slope(self, p: Pair) -> np.ndarray:
        """s'' = B^2 s: E[s''s''] = B^4 E[ss]."""
        return self.B**4 * self.cached_terms(p)[0]


class GaussianForm(SmoothForm):
    """s = A exp(B u^2); ``order`` 0, 1, 2: E[ss], E[s's'], dE[s's']/dc."""

    def __init__(self, A: float, B: float, order: int = 0):
        self.A, self.B, self.order = float(A), float(B), order

    def _shared(self, p: Pair):
        """G and 1/sqrt(G) (and the growth of G's rounding), shared by the three orders."""
        B = self.B
        key = ("gaussian", B)
        out = p.cache.get(key)
        if out is None:
            if B <= 0:  # a sum of non-negative terms
                g = 1 - 2 * B * p.sum_sq() + (4 * B * B) * p.det
                growth = 0.0
            else:  # (1 - 2B a)(1 - 2B b) - 4 B^2 c^2 may cancel near divergence
                x, y = 1 - 2 * B * p.a, 1 - 2 * B * p.b
                cc = (4 * B * B) * (p.c * p.c)
                g = x * y - cc
                with np.errstate(divide="ignore", invalid="ignore"):
                    growth = 4 * (np.abs(x * y) + cc) / g
                g = np.where((x > 0) & (y > 0) & (g > 0), g, np.nan)
            out = p.cache[key] = (g, 1 / np.sqrt(g), growth)
        return out

    def terms(self, p: Pair):
        A, B = self.A, self.B
        g, r, growth = self._shared(p)
        if self.order == 0:
            value = (A * A) * r
            return value, value, growth
        k = 4 * A * A * B * B
        r3 = r * r * r
        if self.order == 1:
            value = (k * p.c) * r3
            return value, np.abs(value), 3 * growth
        value = k * (r3 + ((12 * B * B) * (p.c * p.c)) * (r3 / g))
        return value, value, 5 * growth

    def derivative(self) -> SmoothForm:
        return GaussianForm(self.A, self.B, self.order + 1)

    def compiled(self):
        if self.order != 0:
            return None
        from . import compiled_forms as compiled

        A, B = self.A, self.B
        return lambda sa, sb, rho, sab: compiled.gaussian_block(sa, sb, rho, sab, A, B)


class GeluForm(SmoothForm):
    """s = u Phi(u) (``order`` 0, 1, 2: E[ss], E[s's'], dE[s's']/dc)."""

    def __init__(self, order: int = 0):
        self.order = order

    @staticmethod
    def _shared(p: Pair):
        """delta^2, delta, (a + 1)(b + 1) and arctan2(delta, -c)/(2 pi), shared by the
        three orders."""
        out = p.cache.get("gelu")
        if out is None:
            d2 = 1 + p.sum_sq() + p.det
            delta = np.sqrt(d2)
            ab1 = (p.a + 1) * (p.b + 1)
            # 1/4 + arctan2(c, delta)/(2 pi) = arctan2(delta, -c)/(2 pi), in [0, 1/2]
            quarter = np.arctan2(delta, -p.c) / (2 * _pi(p.c))
            out = p.cache["gelu"] = (d2, delta, ab1, quarter)
        return out

    def terms(self, p: Pair):
        a, b, c = p.a, p.b, p.c
        pi = _pi(c)
        d2, delta, ab1, quarter = self._shared(p)
        if self.order == 2:
            # N / delta^4 with N = delta^4 + delta^2 + (a + b) det + a^2 + b^2 + 4ab
            # + 3(a + b) + c^2 + 2, each term divided by delta^2 twice (no overflow up to
            # variances of 1e150)
            ad, bd = a / d2, b / d2
            rest = ((p.sum_sq() / d2) * (p.det / d2) + ad * ad + bd * bd + 4 * (ad * bd)
                    + (3 * p.sum_sq() / d2) / d2 + (c / d2) * (c / d2) + (2 / d2) / d2)
            value = (1 + 1 / d2 + rest) / ((2 * pi) * delta)
            return value, value, 0.0
        if self.order == 1:
            first = c / ((2 * pi) * delta) * (1 / d2 + (2 + p.sum_sq()) / ab1)
            value = first + quarter
            return value, np.abs(first) + quarter, 0.0
        # (c^2 + ab delta^2) / ((a + 1)(b + 1) delta), as two terms that do not overflow
        first = ((c * c) / ab1 / delta + (a / (a + 1)) * (b / (b + 1)) * delta) / (2 * pi)
        second = c * quarter
        return first + second, first + np.abs(second), 0.0

    def derivative(self) -> SmoothForm:
        return GeluForm(self.order + 1)

    def compiled(self):
        from . import compiled_forms as compiled

        return compiled.gelu if self.order == 0 else None


class PolynomialForm(SmoothForm):
    """s = sum_j p_j u^j (coefficients ``coef``, lowest degree first)."""

    def __init__(self, coef):
        coef = [float(x) for x in coef]
        while len(coef) > 1 and coef[-1] == 0:
            coef.pop()
        self.coef = coef or [0.0]
        n = len(self.coef) - 1
        # g_m(a) = sum_i w[m][i] a^i with w[m][i] = p_(m+2i) (m+2i)! / (2^i i!)
        self.weights = [
            [self.coef[m + 2 * i] * float(Fraction(math.factorial(m + 2 * i),
                                                   2 ** i * math.factorial(i)))
             for i in range((n - m) // 2 + 1)]
            for m in range(n + 1)
        ]

    def _g(self, m: int, x):
        """g_m at the variances x and the sum of its terms' magnitudes."""
        w = self.weights[m]
        value = np.zeros_like(x) + w[-1]
        magnitude = np.zeros_like(x) + abs(w[-1])
        for coefficient in w[-2::-1]:
            value = value * x + coefficient
            magnitude = magnitude * x + abs(coefficient)
        return value, magnitude

    def terms(self, p: Pair):
        """Horner's scheme in c over m (the outer products g_m(a) g_m(b) / m!), and in |c|
        over the magnitudes; the g_m that vanish identically are skipped."""
        c = p.c
        abs_c = np.abs(c)
        value = magnitude = None
        for m in range(len(self.coef) - 1, -1, -1):
            if value is not None:
                value = value * c
                magnitude = magnitude * abs_c
            if not any(self.weights[m]):
                continue
            f = 1.0 / math.factorial(m)
            ga, ma = self._g(m, p.a)
            gb, mb = self._g(m, p.b)
            term, size = (f * ga) * gb, (f * ma) * mb
            value = term if value is None else value + term
            magnitude = size if magnitude is None else magnitude + size
        if value is None:  # s = 0
            value = magnitude = np.zeros_like(c)
        return value, magnitude, 4.0 * len(self.coef)

    def derivative(self) -> SmoothForm:
        return PolynomialForm([j * x for j, x in enumerate(self.coef)][1:] or [0.0])

    def _tables(self) -> tuple:
        """The weights as a padded array, their counts, which g_m are non-zero, the
        factors 1/m! and the growth 4 len(coef), for the compiled loop."""
        size = max(len(w) for w in self.weights)
        weights = np.zeros((len(self.weights), size))
        for m, w in enumerate(self.weights):
            weights[m, :len(w)] = w
        counts = np.array([len(w) for w in self.weights], dtype=np.int64)
        nonzero = np.array([any(w) for w in self.weights])
        factors = np.array([1.0 / math.factorial(m) for m in range(len(self.weights))])
        return weights, counts, nonzero, factors, 4.0 * len(self.coef)

    def compiled(self):
        from . import compiled_forms as compiled

        first = self.derivative()
        tables = (self._tables(), first._tables(), first.derivative()._tables())
        return lambda sa, sb, rho, sab: compiled.polynomial(sa, sb, rho, sab, tables)
