"""Exact rational functions of x = (x11, x12, x22) on top of python-flint.

A :class:`RatFun` is a reduced fraction ``num / den`` of integer polynomials
(``flint.fmpz_mpoly``) with ``den`` having a positive leading coefficient.  Every operation
cancels the gcd in C, so the representation is canonical: two equal rational functions have
equal numerators and denominators.  The module also converts between flint polynomials, the
project's :class:`~hgmntk.rational.SparsePoly` and :class:`fractions.Fraction`, and evaluates
polynomials modulo a prime (used by the modular pass of the reduction).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import flint

from ..rational import SparsePoly

#: Integer polynomials in (x11, x12, x22).
XCTX = flint.fmpz_mpoly_ctx.get(("x11", "x12", "x22"), "degrevlex")
#: Rational polynomials in (x11, x12, x22) (for evaluation at rational points).
QCTX = flint.fmpq_mpoly_ctx.get(("x11", "x12", "x22"), "degrevlex")

ZPoly = flint.fmpz_mpoly


def zpoly_const(c: int) -> ZPoly:
    return XCTX.constant(int(c))


ZERO = zpoly_const(0)
ONE = zpoly_const(1)


def xgens() -> tuple[ZPoly, ZPoly, ZPoly]:
    g = XCTX.gens()
    return g[0], g[1], g[2]


class RatFun:
    """A reduced fraction of two integer polynomials in (x11, x12, x22)."""

    __slots__ = ("num", "den")

    def __init__(self, num: ZPoly, den: ZPoly | None = None, *, reduced: bool = False) -> None:
        if den is None:
            self.num, self.den = num, ONE
            return
        if den.is_zero():
            raise ZeroDivisionError("rational function with zero denominator")
        if not reduced:
            if num.is_zero():
                num, den = ZERO, ONE
            else:
                g = num.gcd(den)
                if not g.is_one():
                    num, den = num / g, den / g
        if den.leading_coefficient() < 0:
            num, den = -num, -den
        self.num, self.den = num, den

    # arithmetic ---------------------------------------------------------------
    def is_zero(self) -> bool:
        return self.num.is_zero()

    def __add__(self, other: RatFun) -> RatFun:
        if self.num.is_zero():
            return other
        if other.num.is_zero():
            return self
        if self.den == other.den:
            return RatFun(self.num + other.num, self.den)
        g = self.den.gcd(other.den)
        if g.is_one():
            return RatFun(
                self.num * other.den + other.num * self.den, self.den * other.den, reduced=True
            )
        # Henrici: with b = g b', d = g d' and both fractions reduced, gcd(a d' + c b', b' d')
        # is 1, so only the common part g can cancel.
        d1, d2 = self.den / g, other.den / g
        num = self.num * d2 + other.num * d1
        if num.is_zero():
            return RatFun(ZERO)
        h = num.gcd(g)
        if not h.is_one():
            num, g = num / h, g / h
        return RatFun(num, d1 * d2 * g, reduced=True)

    def __neg__(self) -> RatFun:
        return RatFun(-self.num, self.den, reduced=True)

    def __sub__(self, other: RatFun) -> RatFun:
        return self + (-other)

    def __mul__(self, other: RatFun) -> RatFun:
        if self.num.is_zero() or other.num.is_zero():
            return RatFun(ZERO)
        g1 = self.num.gcd(other.den)
        g2 = other.num.gcd(self.den)
        n1, d2 = (self.num / g1, other.den / g1) if not g1.is_one() else (self.num, other.den)
        n2, d1 = (other.num / g2, self.den / g2) if not g2.is_one() else (other.num, self.den)
        return RatFun(n1 * n2, d1 * d2, reduced=True)

    def inverse(self) -> RatFun:
        if self.num.is_zero():
            raise ZeroDivisionError("inverse of the zero rational function")
        return RatFun(self.den, self.num, reduced=True)

    def __truediv__(self, other: RatFun) -> RatFun:
        return self * other.inverse()

    def scale(self, c: Fraction) -> RatFun:
        c = Fraction(c)
        return RatFun(self.num * c.numerator, self.den * c.denominator)

    def derivative(self, i: int) -> RatFun:
        n, d = self.num, self.den
        return RatFun(n.derivative(i) * d - n * d.derivative(i), d * d)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RatFun) and self.num == other.num and self.den == other.den

    def __hash__(self) -> int:
        return hash((str(self.num), str(self.den)))

    def __repr__(self) -> str:
        return f"RatFun(({self.num}) / ({self.den}))"

    def evaluate(self, point: Sequence[Fraction]) -> Fraction:
        """Exact value at a rational point (ZeroDivisionError on the polar locus)."""
        d = evaluate_q(self.den, point)
        if d == 0:
            raise ZeroDivisionError("rational function evaluated on its polar locus")
        return evaluate_q(self.num, point) / d


def ratfun_dot(pairs: Sequence[tuple[RatFun, RatFun]]) -> RatFun:
    """sum a * b over the pairs, with one gcd on the numerator at the end.

    The denominators (products of a few factors) are merged into their lcm; numerators are
    never reduced in between, which is much cheaper than reducing after every addition.
    """
    dens: list[ZPoly] = []
    nums: list[ZPoly] = []
    for a, b in pairs:
        if a.num.is_zero() or b.num.is_zero():
            continue
        nums.append(a.num * b.num)
        dens.append(a.den * b.den)
    if not nums:
        return RatFun(ZERO)
    lcm = dens[0]
    for d in dens[1:]:
        if d != lcm:
            g = lcm.gcd(d)
            lcm = lcm * (d / g) if not g.is_one() else lcm * d
    total = ZERO
    for n, d in zip(nums, dens, strict=True):
        total = total + (n if d == lcm else n * (lcm / d))
    return RatFun(total, lcm)


def evaluate_q(p: ZPoly, point: Sequence[Fraction]) -> Fraction:
    """Exact value of an integer polynomial at a rational point."""
    total = Fraction(0)
    for mono, c in p.terms():
        t = Fraction(int(c))
        for v, e in zip(point, mono, strict=True):
            if e:
                t *= Fraction(v) ** int(e)
        total += t
    return total


def evaluate_mod(p: ZPoly, point: Sequence[int], prime: int) -> int:
    """Value of an integer polynomial at an integer point modulo ``prime``."""
    total = 0
    for mono, c in p.terms():
        t = int(c)
        for v, e in zip(point, mono, strict=True):
            if e:
                t = t * pow(v, int(e), prime) % prime
        total += t
    return total % prime


def zpoly_from_fraction_terms(terms: dict[tuple[int, ...], Fraction]) -> tuple[ZPoly, int]:
    """(integer polynomial P, positive integer L) with P / L equal to the given terms."""
    lcm = 1
    for c in terms.values():
        q = Fraction(c).denominator
        lcm = lcm * q // _gcd(lcm, q)
    data = {m: int(Fraction(c) * lcm) for m, c in terms.items() if c}
    return XCTX.from_dict(data) if data else ZERO, lcm


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return abs(a)


def sparse_to_zpoly(p: SparsePoly) -> tuple[ZPoly, int]:
    """A SparsePoly in 3 variables as (integer polynomial, positive denominator)."""
    return zpoly_from_fraction_terms(dict(p.terms))


def zpoly_to_sparse(p: ZPoly, denominator: int = 1) -> SparsePoly:
    """The polynomial p / denominator as a SparsePoly."""
    return SparsePoly(
        3, {tuple(int(e) for e in m): Fraction(int(c), denominator) for m, c in p.terms()}
    )


def ratfun_from_sparse(num: SparsePoly, den: SparsePoly) -> RatFun:
    n, ln = sparse_to_zpoly(num)
    d, ld = sparse_to_zpoly(den)
    return RatFun(n * ld, d * ln)
