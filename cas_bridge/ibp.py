"""Integration-by-parts relations of the moments M(a, b) of s1(u) s2(v) e^Q.

With Q = x11 u^2 + 2 x12 u v + x22 v^2 and x negative definite,

    M(a, b) = int int u^a v^b s1(u) s2(v) e^Q du dv,
    d11 M(a, b) = M(a+2, b),  d12 M(a, b) = 2 M(a+1, b+1),  d22 M(a, b) = M(a, b+2),

so d11^i d12^j d22^k Ehat = 2^j M(2i+j, 2k+j): the derivatives of Ehat are the moments of
the even sector a + b even.  For an annihilator p = sum c_ij u^i d^j of s1 the formal
adjoint gives

    0 = int s1 p*(u^a v^b e^Q) s2 = sum c_ij (-1)^j int s1 s2 e^Q Du^j (u^(i+a) v^b),

with the twisted derivative Du f = df/du + (2 x11 u + 2 x12 v) f (= e^-Q d/du e^Q f);
likewise for s2 with Dv f = df/dv + (2 x12 u + 2 x22 v) f.  Every relation is linear in the
M(a, b) with coefficients integer polynomials in x.  Over Q(x) these relations span all
relations of the integration module of (D/I1 boxtimes D/I2) e^Q, so their row reduction
gives the holonomic system of Ehat (see :mod:`hgmntk.cas_bridge.reduction`).

Columns (integrals) are ordered so that the odd sector is eliminated first and the even
sector follows the graded reverse lexicographic order on the canonical d-monomial of
M(a, b) (the one of largest d12 power), with variables ordered d11 > d22 > d12.  Greedy
non-pivot columns are then exactly the standard monomials of the annihilating ideal in
Q(x)<d11, d12, d22> for that term order; the first is 1 and, e.g., ReLU gives {1, d12}.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from .ratfun import XCTX, ZPoly, xgens
from .weyl import UD, Operator

Moment = tuple[int, int]
Monomial3 = tuple[int, int, int]


def canonical_monomial(m: Moment) -> Monomial3:
    """(i, j, k) with d11^i d12^j d22^k Ehat = 2^j M(a, b), j = min(a, b) (a + b even)."""
    a, b = m
    j = min(a, b)
    return ((a - j) // 2, j, (b - j) // 2)


def moment_of(mono: Monomial3) -> Moment:
    i, j, k = mono
    return (2 * i + j, 2 * k + j)


def moment_key(m: Moment) -> tuple:
    """Elimination order: odd sector above everything, then grevlex (d11 > d22 > d12)."""
    a, b = m
    n = a + b
    if n % 2:
        return (1, n, -min(a, b), -b)
    i, j, k = canonical_monomial(m)
    return (0, n, -j, -k, -i)


def moment_shifts(m: Moment) -> list[tuple[Fraction, Moment]]:
    a, b = m
    return [(Fraction(1), (a + 2, b)), (Fraction(2), (a + 1, b + 1)), (Fraction(1), (a, b + 2))]


def _integer_terms(p: Operator) -> list[tuple[int, int, int]]:
    """Terms (c, i, j) of p = sum c u^i d^j, scaled to coprime integers."""
    if p.alg != UD:
        raise ValueError("annihilators must be operators of the algebra Q[u]<d>")
    from math import lcm

    den = lcm(*[Fraction(c).denominator for c in p.terms.values()]) if p.terms else 1
    return [(int(Fraction(c) * den), i, j) for ((i,), (j,)), c in p.terms.items()]


class IBPRelations:
    """Generator of the IBP relations for a pair of annihilator lists (see module doc)."""

    def __init__(self, ann1: Sequence[Operator], ann2: Sequence[Operator]) -> None:
        self.ann = [[_integer_terms(p) for p in ann1 if p.terms],
                    [_integer_terms(p) for p in ann2 if p.terms]]
        if not self.ann[0] or not self.ann[1]:
            raise ValueError("each side needs at least one nonzero annihilator")
        x11, x12, x22 = xgens()
        # multiplication part of the twisted derivatives: (coefficient of u, coefficient of v)
        self._twist = [(2 * x11, 2 * x12), (2 * x12, 2 * x22)]
        self._cache: dict[tuple[int, int, int, int], dict[Moment, ZPoly]] = {}
        self._rows: dict[tuple[int, int, int, int], dict[Moment, ZPoly]] = {}

    @property
    def height(self) -> int:
        """Largest degree increase i + j of a term u^i d^j over all annihilators."""
        return max(i + j for side in self.ann for p in side for _, i, j in p)

    @property
    def order(self) -> int:
        return max(j for side in self.ann for p in side for _, _, j in p)

    def _twisted_power(self, side: int, j: int, a: int, b: int) -> dict[Moment, ZPoly]:
        """D^j (u^a v^b) for the twisted derivative of side 0 (u) or 1 (v)."""
        key = (side, j, a, b)
        got = self._cache.get(key)
        if got is not None:
            return got
        if j == 0:
            out = {(a, b): XCTX.constant(1)}
        else:
            prev = self._twisted_power(side, j - 1, a, b)
            cu, cv = self._twist[side]
            acc: dict[Moment, ZPoly] = {}

            def add(m: Moment, p: ZPoly) -> None:
                q = acc.get(m)
                acc[m] = p if q is None else q + p

            for (aa, bb), c in prev.items():
                e = aa if side == 0 else bb
                if e:
                    add((aa - 1, bb) if side == 0 else (aa, bb - 1), c * e)
                add((aa + 1, bb), c * cu)
                add((aa, bb + 1), c * cv)
            out = {m: p for m, p in acc.items() if not p.is_zero()}
        self._cache[key] = out
        return out

    def relation(self, side: int, index: int, a: int, b: int) -> dict[Moment, ZPoly]:
        """The relation of annihilator ``index`` of side ``side`` with seed u^a v^b."""
        key = (side, index, a, b)
        got = self._rows.get(key)
        if got is not None:
            return got
        acc: dict[Moment, ZPoly] = {}
        for c, i, j in self.ann[side][index]:
            aa, bb = (a + i, b) if side == 0 else (a, b + i)
            sign = -c if j % 2 else c
            for m, p in self._twisted_power(side, j, aa, bb).items():
                q = acc.get(m)
                acc[m] = p * sign if q is None else q + p * sign
        out = {m: p for m, p in acc.items() if not p.is_zero()}
        self._rows[key] = out
        return out

    def rows(self, truncation: int) -> list[dict[Moment, ZPoly]]:
        """All relations whose moments have total degree a + b <= truncation."""
        out = []
        for side in (0, 1):
            for index, p in enumerate(self.ann[side]):
                h = max(i + j for _, i, j in p)
                for s in range(truncation - h + 1):
                    for a in range(s + 1):
                        out.append(self.relation(side, index, a, s - a))
        return out
