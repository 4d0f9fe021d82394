"""Duals on singular covariances (rho = +-1): E[s1(sqrt(a) U) s2(+-sqrt(b) U)], U ~ N(0, 1).

On det L = 0 the 2-D Pfaffian system does not apply (x = -1/2 L^-1 does not exist).  The
value is a 1-D Gaussian expectation: for positively homogeneous pairs of degrees (k1, k2) it
is a^(k1/2) b^(k2/2) times a stored constant (``same`` for rho = 1, ``opposite`` for
rho = -1); otherwise it is computed by adaptive 1-D quadrature of the activation's
expression (scipy ``quad``, breakpoints at 0, relative accuracy ~1e-13 for the smooth
pieces of the activations hgmntk ships).  Where s' has Dirac terms (the jumps of s), their
terms are in closed form: infinite where two deltas meet, as E[s's'] of any jump on the
diagonal.  Where the value is much smaller than the integral
of the absolute integrand (oscillating activations at large variance: E[sin(10 U)
sin(0.01 U)] ~ 2e-23), float64 quadrature cannot resolve it; those pairs are recomputed
with mpmath quadrature at a working precision of 20 digits plus the digits lost to
cancellation, and so are those where QUADPACK reports round-off or subdivision trouble.
"""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
from scipy import integrate

from .activation import SIDE_OF
from .covariance import half_power
from .errors import InvalidInputError, NotApplicableError


def _side_functions(activation, key: str):
    side = SIDE_OF[key]
    fn = activation.numeric_functions.get(side)
    if fn is None:
        raise NotApplicableError(
            f"activation {activation.name!r}: cannot evaluate the {key} dual on a singular "
            "covariance (rho = +-1): no collinear data and no numeric expression for "
            f"{'s' if side == 's' else 's prime'}"
        )
    return fn, fn


def _mp_function(expression: str):
    """An mpmath callable of the activation expression (Heaviside(0) = 1/2)."""
    import sympy

    from .expressions import U, parse_activation_expression

    def heaviside(x, h0=0.5):
        return mpmath.mpf(1) if x > 0 else (mpmath.mpf(h0) if x == 0 else mpmath.mpf(0))

    expr = parse_activation_expression(expression)
    return sympy.lambdify(U, expr, modules=[{"Heaviside": heaviside}, "mpmath"])


#: Where the Gaussian integrals over the z-axis are cut: pieces short enough that a
#: quadrature's first rule sees a peak of width 1 anywhere (exp(sqrt(b) z - z^2/2) peaks
#: at z = sqrt(b)).  On (-inf, 0, inf) QUADPACK missed E[exp(V)] at b = 1000 by 1.6e-6
#: and mpmath's tanh-sinh by as much, neither with a warning; with these, 1e-16 and 1e-29.
BREAKS = (-40, -20, 0, 20, 40)
#: The pieces of :func:`_gauss_1d` and the points of :func:`_gauss_1d_mp`.
_PIECES = tuple(zip((-np.inf, *BREAKS), (*BREAKS, np.inf)))
_MP_POINTS = [-mpmath.inf, *BREAKS, mpmath.inf]


def _gauss_1d_mp(g1, g2, sa: float, sb: float, magnitude: float) -> float:
    """The same expectation by mpmath quadrature, at a precision covering the cancellation
    (``magnitude``: E|s1 s2|, recomputed here where the float one overflowed)."""
    digits = 30
    value = None
    for _ in range(4):
        with mpmath.workdps(digits):
            ma, mb = mpmath.mpf(sa), mpmath.mpf(sb)

            def integrand(z, ma=ma, mb=mb):
                try:
                    value = g1(ma * z) * g2(mb * z)
                except (ZeroDivisionError, ValueError) as exc:
                    raise InvalidInputError(
                        f"the activation is not defined at u = {mpmath.nstr(ma * z, 6)} or "
                        f"{mpmath.nstr(mb * z, 6)} ({str(exc) or type(exc).__name__}): an "
                        "activation must be a real function of every real u") from None
                if isinstance(value, mpmath.mpc):
                    raise InvalidInputError(
                        f"the activation is not real at u = {mpmath.nstr(ma * z, 6)} or "
                        f"{mpmath.nstr(mb * z, 6)} (value {mpmath.nstr(value, 6)}): an "
                        "activation must be a real function of every real u")
                return value * mpmath.exp(-z * z / 2)

            value = mpmath.quad(integrand, _MP_POINTS) / mpmath.sqrt(2 * mpmath.pi)
            if not math.isfinite(magnitude):
                magnitude = mpmath.quad(lambda z: abs(integrand(z)), _MP_POINTS)
                magnitude /= mpmath.sqrt(2 * mpmath.pi)
            lost = float(mpmath.log10(magnitude / abs(value))) if value != 0 else digits
        if digits >= lost + 20:
            break
        digits = int(lost) + 25
    return float(value)  # inf beyond float64: evaluate_dual reports it where it is used


def _gauss_1d(f1, f2, sa: float, sb: float, exact=None) -> float:
    def integrand(z: float) -> float:
        # the Gaussian weight split between the factors: exp(-z^2/4) underflows only at
        # |z| > 54.6, beyond any peak of a product that float64 can hold (exp(sb z) with
        # the whole weight on one factor lost the mass beyond |z| = 38.6: 6e-5 of
        # E[exp(V)] at b = 1400)
        weight = math.exp(-0.25 * z * z)
        if weight == 0.0:
            return 0.0
        return float(f1(np.array(sa * z)) * weight) * float(f2(np.array(sb * z)) * weight)

    total = 0.0
    magnitude = 0.0
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always", integrate.IntegrationWarning)
        for lo, hi in _PIECES:
            val, _ = integrate.quad(integrand, lo, hi, epsabs=1e-300, epsrel=1e-13, limit=200)
            total += val
            mag, _ = integrate.quad(
                lambda z: abs(integrand(z)), lo, hi, epsabs=1e-300, epsrel=1e-6, limit=200
            )
            magnitude += mag
    # QUADPACK's warnings (round-off, subdivision limit) mean the float value is doubtful
    doubtful = any(issubclass(w.category, integrate.IntegrationWarning) for w in caught)
    overflow = not (math.isfinite(total) and math.isfinite(magnitude))  # samples overflowed
    if exact is not None and (overflow or (
            magnitude > 0 and (doubtful or not abs(total) > 1e-3 * magnitude))):
        return _gauss_1d_mp(*exact, sa, sb, magnitude / math.sqrt(2 * math.pi))
    if overflow:  # no exact expression to recompute it: inf, reported where it is used
        return math.inf
    for w in caught:
        if not issubclass(w.category, integrate.IntegrationWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if doubtful:
        warnings.warn(
            "collinear value (rho = +-1) by float quadrature may be inaccurate (QUADPACK "
            "reported round-off or too many subdivisions) and no exact expression is available "
            "for a high-precision recomputation",
            RuntimeWarning,
            stacklevel=3,
        )
    return total / math.sqrt(2 * math.pi)


def _delta_expectation(h, weight: float, t: float, s: float) -> float:
    """weight * E[delta(s U - t) h(U)] = weight * h(t/s) phi(t/s) / |s|, U ~ N(0, 1)."""
    if s == 0.0:
        if t == 0.0:
            raise NotApplicableError(
                "a zero variance puts the Dirac term of s' at u = 0 on every sample: the "
                "dual is delta(0) times an expectation, not a number; give inputs (or a "
                "bias) with nonzero variance"
            )
        return 0.0
    z = t / s
    return weight * float(h(z)) * math.exp(-0.5 * z * z) / (abs(s) * math.sqrt(2 * math.pi))


def _dirac_collinear(activation, key: str):
    """f(sa, sb) = E[s'(sa U) s'(sb U)] for s' = g + sum_j w_j delta(u - t_j) (see
    :func:`dirac_split`); the split and g's callables are made once per call of
    :func:`collinear_values`.

    = E[g g] (quadrature) + the cross terms w_j E[delta(sa U - t_j) g(sb U)] and the mirror
    one (closed form) + the delta-delta terms, infinite where two deltas sit on the same
    U (t_j / sa = t_k / sb), with the sign of their weights: E[delta(u) delta(v)] on a
    singular covariance, as for the step function.
    """
    from .expressions import dirac_split, lambdify_activation

    expression = activation.function_expression(key)
    split = dirac_split(expression) if expression else None
    if split is None:
        raise NotApplicableError(
            f"activation {activation.name!r}: cannot evaluate the {key} dual on a singular "
            f"covariance (rho = +-1): s' = {expression} has Dirac terms of a form hgmntk "
            "does not integrate (constant weights, linear arguments expected)"
        )
    smooth, deltas = split
    g = lambdify_activation(smooth)
    gm = _mp_function(smooth) if smooth != "0" else None

    def value_at(sa: float, sb: float) -> float:
        value = 0.0 if gm is None else _gauss_1d(g, g, sa, sb, (gm, gm))
        for w, t in deltas:
            value += _delta_expectation(lambda z: g(np.array(sb * z)), w, t, sa)
            value += _delta_expectation(lambda z: g(np.array(sa * z)), w, t, sb)
        signs = set()
        for w1, t1 in deltas:
            for w2, t2 in deltas:
                if t1 * sb == t2 * sa:  # both deltas at the same U: delta(0)-like, infinite
                    if sa == 0.0 or sb == 0.0:
                        _delta_expectation(g, 1.0, 0.0, 0.0)  # raises: zero variance at 0
                    signs.add(math.copysign(1.0, w1 * w2))
        if len(signs) > 1:
            raise NotApplicableError(
                f"activation {activation.name!r}: the {key} dual on a singular covariance is "
                "infinity minus infinity (Dirac terms of opposite signs meet)"
            )
        return signs.pop() * math.inf if signs else value

    return value_at


def may_be_infinite(activation, key: str) -> bool:
    """Whether the dual ``key`` can be genuinely infinite at rho = +-1: two Dirac terms
    meeting (E[delta(u) delta(v)], as for the step function's derivative dual), declared by
    infinite homogeneous constants or found in s'.  Any other inf is an overflow."""
    data = activation.collinear.get(key)
    if data is not None and data.kind == "homogeneous":
        return not (math.isfinite(data.same) and math.isfinite(data.opposite))
    expression = activation.function_expression(key)
    return SIDE_OF[key] not in activation.numeric_functions and bool(
        expression and "DiracDelta" in expression)


def collinear_values(activation, key: str, a, b, sign) -> np.ndarray:
    """E[s1(sqrt(a) U) s2(sign sqrt(b) U)] for arrays a, b >= 0 and sign = +-1."""
    a, b, sign = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, sign)))
    data = activation.collinear.get(key)
    degrees = activation.pair_homogeneity(key)
    if data is not None and data.kind == "homogeneous" and degrees is not None:
        k1, k2 = degrees
        const = np.where(sign > 0, data.same, data.opposite)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = half_power(a, k1) * half_power(b, k2)
        out = np.where(const == 0, 0.0, const * scale)
        return out
    expression = activation.function_expression(key)
    side = SIDE_OF[key]
    if side not in activation.numeric_functions and expression and "DiracDelta" in expression:
        one = _dirac_collinear(activation, key)
    else:
        f1, f2 = _side_functions(activation, key)
        exact = None

        def one(sa: float, sb: float) -> float:
            nonlocal exact
            if exact is None and expression:
                g = _mp_function(expression)
                exact = (g, g)
            return _gauss_1d(f1, f2, sa, sb, exact)

    out = np.empty(a.shape)
    cache = _batch_values(expression, a, b, sign) if expression else {}
    for idx in np.ndindex(a.shape):
        args = (float(a[idx]), float(b[idx]), float(sign[idx]))
        if args not in cache:
            cache[args] = one(math.sqrt(args[0]), args[2] * math.sqrt(args[1]))
        out[idx] = cache[args]
    return out


def _batch_values(expression: str, a: np.ndarray, b: np.ndarray, sign: np.ndarray) -> dict:
    """{(a, b, sign): value} for the targets that one vectorised fixed rule settles: an
    activation smooth on each side of 0 (entire pieces, a jump or a kink at 0 allowed), by
    :func:`hgmntk.kink_mehler.half_line_expectations`, whose two rules must agree; the
    others are left to the adaptive quadrature."""
    from .expressions import lambdify_activation
    from .kink_mehler import entire_sides, half_line_expectations

    sides = entire_sides(expression)
    if sides is None:
        return {}
    f, g = (lambdify_activation(str(side)) for side in sides)
    if f is None or g is None:
        return {}
    keys = np.unique(np.stack([a.ravel(), b.ravel(), sign.ravel()]), axis=1)
    usable = (keys[0] > 0) & (keys[1] > 0) & np.isfinite(keys[0]) & np.isfinite(keys[1])
    keys = keys[:, usable]
    if not keys.shape[1]:
        return {}
    values, ok = half_line_expectations(f, g, keys[0], keys[1], keys[2])
    return {(float(ka), float(kb), float(ks)): float(v)
            for ka, kb, ks, v in zip(*keys[:, ok], values[ok])}
