"""Hermite coefficients of a holonomic activation, from a recurrence in n.

For X ~ N(0, 1) and sigma = sqrt(a) the normalised Hermite coefficients of s are

    h_n(a) = E[s(sigma X) He_n(X)] / sqrt(n!),    n = 0, 1, 2, ...

(He_n the probabilists' Hermite polynomials), so that Mehler's formula reads
E[s(u) s(v)] = sum_n h_n(a) h_n(b) rho^n for (u, v) with variances a, b and correlation rho.

**The recurrence.**  Write m_n = E[f(X) He_n(X)] for f(x) = s(sigma x).  Gaussian
integration by parts (x He_n - He_n' = He_{n+1}, x He_n = He_{n+1} + n He_{n-1}) turns the
operators of the Weyl algebra into shift operators on the sequence m, for distributions as
well as functions:

    E[f'(X) He_n(X)] = m_{n+1},        E[X f(X) He_n(X)] = m_{n+1} + n m_{n-1}.

An annihilator L = sum c_ij u^i d^j of s (L s = 0 as distributions) becomes, with
u = sigma x and d/du = (1/sigma) d/dx, the operator sum c_ij sigma^(i-j) x^i (d/dx)^j of f,
and so a linear recurrence sum_k q_k(n) m_{n+k} = 0 with coefficients polynomial in n
(:func:`recurrence`).  It is solved forward from its first values in ball arithmetic
(python-flint's arb), which tracks every digit the recurrence loses: where the wanted
solution is the minimal one the forward direction is unstable, and the working precision is
raised until every h_n is known to 1e-17 relative (or absolute below 1e-20 of the largest).

**The first values** m_0 .. m_{K-1} (and any m_n where the leading coefficient q_K(n - K)
vanishes) are one-dimensional integrals, by mpmath quadrature at the working precision
(split at 0 and at the activation's jumps; Dirac terms of s' in closed form:
E[delta(sigma X - t) He_n(X)] = He_n(t/sigma) phi(t/sigma) / sigma).  They are a handful;
every other coefficient comes from the recurrence.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np

from .errors import IntegrationError, InvalidInputError

#: Sequence operators: {shift k: polynomial q_k(n)} acting as (Q m)_n = sum_k q_k(n) m_{n+k};
#: polynomials as tuples of Fractions (coefficient of n^0, n^1, ...).
Poly = tuple[Fraction, ...]
SeqOp = dict[int, Poly]

#: The largest n_max served (the recurrence is cheap; the cap bounds the precision).
N_MAX_LIMIT = 20_000
#: Most decimal digits the working precision may reach before giving up.
MAX_DIGITS = 4000


def _padd(p: Poly, q: Poly) -> Poly:
    """p + q."""
    out = [Fraction(0)] * max(len(p), len(q))
    for i, c in enumerate(p):
        out[i] += c
    for i, c in enumerate(q):
        out[i] += c
    while out and out[-1] == 0:
        out.pop()
    return tuple(out)


def _pmul(p: Poly, q: Poly) -> Poly:
    """p q."""
    if not p or not q:
        return ()
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return tuple(out)


def _pshift(p: Poly, s: int) -> Poly:
    """p(n + s)."""
    out: Poly = ()
    power: Poly = (Fraction(1),)
    for c in p:
        out = _padd(out, tuple(c * v for v in power))
        power = _pmul(power, (Fraction(s), Fraction(1)))
    return out


def _compose(a: SeqOp, b: SeqOp) -> SeqOp:
    """(A B m)_n = sum_l a_l(n) (B m)_{n+l} = sum_l sum_k a_l(n) b_k(n + l) m_{n+l+k}."""
    out: dict[int, Poly] = {}
    for shift_a, pa in a.items():
        for shift_b, pb in b.items():
            k = shift_a + shift_b
            out[k] = _padd(out.get(k, ()), _pmul(pa, _pshift(pb, shift_a)))
    return {k: p for k, p in out.items() if p}


ONE: SeqOp = {0: (Fraction(1),)}
#: multiplication by x and d/dx, as operators on m_n = E[f He_n]
X_OP: SeqOp = {1: (Fraction(1),), -1: (Fraction(0), Fraction(1))}
D_OP: SeqOp = {1: (Fraction(1),)}


def _power(op: SeqOp, k: int) -> SeqOp:
    """op^k."""
    out = ONE
    for _ in range(k):
        out = _compose(op, out)
    return out


def recurrence(annihilator) -> list[tuple[int, int, Fraction, SeqOp]]:
    """The terms (i, j, c_ij, X^i D^j) of an annihilator sum c_ij u^i d^j (an
    :class:`~hgmntk.cas_bridge.weyl.Operator` of Q[u]<d>): with sigma^(i-j) the recurrence
    sum_ij c_ij sigma^(i-j) (X^i D^j m)_n = 0 of m_n = E[s(sigma X) He_n(X)]."""
    out = []
    for ((i,), (j,)), c in sorted(annihilator.terms.items()):
        out.append((i, j, c, _compose(_power(X_OP, i), _power(D_OP, j))))
    return out


def _weighted(terms, sigma) -> tuple[int, dict[int, list]]:
    """(K, {shift k: [(w, q), ...]}): the recurrence sum_k (sum w q(n)) m_{n+k} = 0 at one
    sigma, whose highest shift is K; the weights w = c_ij sigma^(i - j + J) are arb balls
    (J = max(j - i) keeps the powers of sigma non-negative)."""
    import flint

    top_j = max(j - i for i, j, _, _ in terms)
    weighted: dict[int, list] = {}
    for i, j, c, op in terms:
        w = flint.arb(c.numerator) / c.denominator * sigma ** (i - j + top_j)
        for k, poly in op.items():
            weighted.setdefault(k, []).append((w, poly))
    return max(weighted), weighted


def _eval_poly(poly: Poly, n: int):
    """q(n) as an arb ball (Horner)."""
    import flint

    total = flint.arb(0)
    for c in reversed(poly):
        total = total * n + flint.arb(c.numerator) / c.denominator
    return total


def _first_values(expression: str, sigma: float, indices: list[int], digits: int) -> dict:
    """m_n = E[s(sigma X) He_n(X)] for n in ``indices`` by mpmath quadrature at ``digits``
    (Dirac terms of the expression in closed form): {n: (value, error estimate)}."""
    from .collinear import BREAKS, _mp_function
    from .expressions import dirac_split

    split = dirac_split(expression) if "DiracDelta" in expression else (expression, ())
    if split is None:
        raise InvalidInputError(f"cannot integrate the Dirac terms of {expression}")
    smooth, deltas = split
    out = {}
    with mpmath.workdps(digits + 10):
        s = mpmath.mpf(sigma)
        f = _mp_function(smooth) if smooth not in ("0", "") else None
        jumps = sorted({mpmath.mpf(t) / s for _, t in deltas} | {mpmath.mpf(0)})
        points = [-mpmath.inf, *sorted(set(jumps) | set(BREAKS)), mpmath.inf]
        norm = 1 / mpmath.sqrt(2 * mpmath.pi)
        for n in indices:
            def integrand(x, n=n):
                return f(s * x) * mpmath.hermite(n, x / mpmath.sqrt(2)) * mpmath.exp(-x * x / 2)

            value, err = (mpmath.mpf(0), mpmath.mpf(0))
            if f is not None:
                value, err = mpmath.quad(integrand, points, error=True)
                # hermite(n, y) is the physicists' H_n: He_n(x) = 2^(-n/2) H_n(x / sqrt 2)
                value, err = value * norm * 2 ** (-mpmath.mpf(n) / 2), err * norm * 2 ** (-n / 2)
            for w, t in deltas:
                z = mpmath.mpf(t) / s
                he = mpmath.hermite(n, z / mpmath.sqrt(2)) * 2 ** (-mpmath.mpf(n) / 2)
                value += mpmath.mpf(w) * he * mpmath.exp(-z * z / 2) * norm / s
            out[n] = (value, err)
    return out


def hermite(activation, n_max: int, variance: float = 1.0, *,
            derivative: bool = False) -> np.ndarray:
    """h_n = E[s(sqrt(a) X) He_n(X)] / sqrt(n!) for n = 0..n_max (X ~ N(0, 1), a =
    ``variance``; s' with ``derivative``), as float64, from the recurrence in n derived
    from the activation's annihilator (see the module docstring).  Mehler's expansion of
    the dual is E[s(u) s(v)] = sum_n h_n(a) h_n(b) rho^n.

    Every value is within 1e-16 relative of the exact coefficient (or 1e-20 of the
    largest in absolute value), the ball arithmetic's guarantee; the first few values
    come from quadrature at the working precision."""
    from .cas_bridge.weyl import UD, parse_operator
    from .dual_activation import get_activation

    act = get_activation(activation, "hgm")
    if not isinstance(n_max, (int, np.integer)) or isinstance(n_max, bool) or not (
            0 <= n_max <= N_MAX_LIMIT):
        raise InvalidInputError(f"n_max must be an integer in [0, {N_MAX_LIMIT}], got "
                                f"{n_max!r}")
    try:
        a = float(variance)
    except (TypeError, ValueError):
        raise InvalidInputError(f"variance must be a number, got {variance!r}") from None
    if not (math.isfinite(a) and 1e-150 <= a <= 1e150):
        raise InvalidInputError(f"variance must lie in 1e-150..1e150, got {variance!r}")
    side = "ds" if derivative else "s"
    texts = act.annihilators.get(side)
    expression = act.function_expression("dsds" if derivative else "ss")
    if not act.holonomic or not texts or not expression:
        what = "s'" if derivative else "s"
        raise InvalidInputError(
            f"activation {act.name!r} has no annihilator of {what} (it is not holonomic, or "
            "has no expression): its Hermite coefficients come from the recurrence an "
            "annihilator gives; for a non-holonomic activation use quadrature")
    # the annihilator of the lowest order in d (the fewest first values)
    operators = sorted((parse_operator(UD, t) for t in texts), key=lambda op: op.order())
    terms = recurrence(operators[0])
    return _solve(terms, expression, a, int(n_max), act.name)


def _solve(terms, expression: str, a: float, n_max: int, name: str) -> np.ndarray:
    """Run the recurrence forward in arb, doubling the digits until every h_n is settled."""
    import flint

    digits = 40
    while digits <= MAX_DIGITS:
        with flint.ctx.workprec(int(digits * 3.33) + 64):
            h = _forward(terms, expression, a, n_max, digits)
            big = max(abs(v.mid()) for v in h)
            goal = [max(abs(v.mid()) * flint.arb(2) ** -57, big * 1e-20) for v in h]
            worst = max(float(v.rad() / g) for v, g in zip(h, goal))
            if worst <= 1:
                return np.array([0.0 if v.contains(0) else float(v.mid()) for v in h])
        # the digits the recurrence lost beyond the goal, and a margin
        digits += max(20, math.ceil(math.log10(worst)) + 15) if math.isfinite(worst) else digits
    raise IntegrationError(
        f"the Hermite coefficients of {name!r} up to n = {n_max} at variance {a:g}: the "
        f"recurrence loses more than {MAX_DIGITS} digits; ask for fewer coefficients")


def _forward(terms, expression: str, a: float, n_max: int, digits: int) -> list:
    """h_0..h_{n_max} as balls at the current working precision: m_0..m_{K-1} (and any
    m_{n+K} whose leading coefficient q_K(n) is zero) from quadrature at ``digits``, the
    rest by the recurrence."""
    import flint

    sigma = flint.arb(a).sqrt()
    top, weighted = _weighted(terms, sigma)
    m: list = [None] * (n_max + 1)

    def first(indices: list[int]) -> None:
        for k, (value, err) in _first_values(expression, math.sqrt(a), indices,
                                             digits).items():
            mid = flint.arb(mpmath.nstr(value, digits + 5, strip_zeros=False))
            rad = abs(flint.arb(mpmath.nstr(err, 5))) + abs(mid) * flint.arb(10) ** (-digits)
            m[k] = flint.arb(mid.mid(), rad.upper())

    first([k for k in range(min(top, n_max + 1))])
    for n in range(0, n_max - top + 1):
        acc = flint.arb(0)
        lead = flint.arb(0)
        for k, items in weighted.items():
            if n + k < 0:
                continue
            q = flint.arb(0)
            for w, poly in items:
                q += w * _eval_poly(poly, n)
            if k == top:
                lead = q
            else:
                acc += q * m[n + k]
        if lead.contains(0):  # q_K(n) = 0: this coefficient is a first value too
            first([n + top])
        else:
            m[n + top] = -acc / lead
    out = []
    root = flint.arb(1)  # sqrt(n!)
    for n in range(n_max + 1):
        if n:
            root *= flint.arb(n).sqrt()
        out.append(m[n] / root)
    return out
