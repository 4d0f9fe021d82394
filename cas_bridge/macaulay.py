"""Macaulay-matrix rows of a left ideal in the rational Weyl algebra Q(x)<d11, d12, d22>.

A generator g = sum_beta c_beta(x) d^beta of the ideal gives, for every d-monomial d^alpha,
the row d^alpha g (a Weyl product, again with polynomial coefficients), read as a linear
relation among the unknowns d^beta Ehat.  Over Q(x) these rows span the ideal R g
(degree by degree), so their reduction by leading columns in a term order is a Groebner
basis computation by linear algebra.  The term order is grevlex with d11 > d22 > d12, the
same as the integration-by-parts route (:mod:`hgmntk.cas_bridge.ibp`).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from math import lcm

from .ratfun import XCTX, ZPoly
from .weyl import XD, Operator

Monomial3 = tuple[int, int, int]


def monomial_key(m: Monomial3) -> tuple:
    """Grevlex key (larger = bigger) with variables ordered d11 > d22 > d12."""
    i, j, k = m
    return (i + j + k, -j, -k, -i)


def monomial_shifts(m: Monomial3) -> list[tuple[Fraction, Monomial3]]:
    i, j, k = m
    return [(Fraction(1), (i + 1, j, k)), (Fraction(1), (i, j + 1, k)),
            (Fraction(1), (i, j, k + 1))]


def operator_row(g: Operator) -> dict[Monomial3, ZPoly]:
    """g as {d-exponent: integer polynomial coefficient}, scaled to integer coefficients."""
    if g.alg != XD:
        raise ValueError("operators must live in Q[x11,x12,x22]<d11,d12,d22>")
    den = lcm(*[Fraction(c).denominator for c in g.terms.values()]) if g.terms else 1
    coeffs: dict[Monomial3, dict] = {}
    for (a, b), c in g.terms.items():
        coeffs.setdefault(tuple(b), {})[tuple(a)] = int(Fraction(c) * den)
    return {b: XCTX.from_dict(t) for b, t in coeffs.items()}  # type: ignore[misc]


def left_multiply_d(row: dict[Monomial3, ZPoly], i: int) -> dict[Monomial3, ZPoly]:
    """d_i * row, with d_i c(x) = c(x) d_i + dc/dx_i."""
    out: dict[Monomial3, ZPoly] = {}
    for b, c in row.items():
        nb = list(b)
        nb[i] += 1
        t = tuple(nb)
        out[t] = out[t] + c if t in out else c  # type: ignore[index]
        dc = c.derivative(i)
        if not dc.is_zero():
            out[b] = out[b] + dc if b in out else dc
    return {b: c for b, c in out.items() if not c.is_zero()}


class MacaulayRows:
    """Rows d^alpha g of the Macaulay matrix, generated up to a total d-degree."""

    def __init__(self, generators: Sequence[Operator]) -> None:
        self.gens = [operator_row(g) for g in generators if not g.is_zero()]
        self.orders = [max(sum(b) for b in row) for row in self.gens]
        self._cache: dict[tuple[int, Monomial3], dict[Monomial3, ZPoly]] = {}

    def shifted(self, index: int, alpha: Monomial3) -> dict[Monomial3, ZPoly]:
        key = (index, alpha)
        got = self._cache.get(key)
        if got is not None:
            return got
        if not any(alpha):
            out = self.gens[index]
        else:
            i = next(n for n, e in enumerate(alpha) if e)
            prev = list(alpha)
            prev[i] -= 1
            out = left_multiply_d(self.shifted(index, tuple(prev)), i)  # type: ignore[arg-type]
        self._cache[key] = out
        return out

    def rows(self, truncation: int) -> list[dict[Monomial3, ZPoly]]:
        """All rows d^alpha g with |alpha| + order(g) <= truncation."""
        out = []
        for index, order in enumerate(self.orders):
            for s in range(truncation - order + 1):
                for i in range(s + 1):
                    for j in range(s - i + 1):
                        out.append(self.shifted(index, (i, j, s - i - j)))
        return out
