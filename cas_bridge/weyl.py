"""Normally ordered operators of the Weyl algebra D_n = Q[x_1..x_n]<d_1..d_n>.

An operator is stored as a dict ``{(alpha, beta): c}`` meaning sum c x^alpha d^beta with all
x to the left of all d (normal order), c a Fraction.  This is the exchange format between
the pure-Python engine and the CAS backends: every backend prints normally ordered output,
which :func:`parse_operator` reads, and :func:`format_operator` writes in the syntax all
three CAS accept (``*`` and ``^``).

Multiplication uses the Leibniz rule
d^beta x^alpha = sum_k prod_i binom(beta_i, k_i) alpha_i!/(alpha_i-k_i)! x^(alpha-k) d^(beta-k).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from math import comb, perm

Exps = tuple[int, ...]
Term = tuple[Exps, Exps]


@dataclass(frozen=True)
class WeylAlgebra:
    """Names of the x-variables and their partner d-variables."""

    xs: tuple[str, ...]
    ds: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.ds):
            raise ValueError("need one d-variable per x-variable")

    @property
    def n(self) -> int:
        return len(self.xs)

    def zero(self) -> Operator:
        return Operator(self, {})

    def one(self) -> Operator:
        return self.const(1)

    def const(self, c) -> Operator:
        z = (0,) * self.n
        c = Fraction(c)
        return Operator(self, {(z, z): c} if c else {})

    def x(self, i: int) -> Operator:
        a = [0] * self.n
        a[i] = 1
        return Operator(self, {(tuple(a), (0,) * self.n): Fraction(1)})

    def d(self, i: int) -> Operator:
        b = [0] * self.n
        b[i] = 1
        return Operator(self, {((0,) * self.n, tuple(b)): Fraction(1)})

    def gens(self) -> tuple[list[Operator], list[Operator]]:
        return [self.x(i) for i in range(self.n)], [self.d(i) for i in range(self.n)]


def _mul_terms(b1: Exps, a2: Exps) -> list[tuple[Exps, Exps, int]]:
    """d^b1 x^a2 as sum of (x-exponent, d-exponent, integer coefficient)."""
    ranges = [range(min(b, a) + 1) for b, a in zip(b1, a2)]
    out = []
    for ks in product(*ranges):
        c = 1
        for b, a, k in zip(b1, a2, ks):
            c *= comb(b, k) * perm(a, k)
        out.append(
            (tuple(a - k for a, k in zip(a2, ks)), tuple(b - k for b, k in zip(b1, ks)), c)
        )
    return out


class Operator:
    """An element of the Weyl algebra, normally ordered (see module docstring)."""

    __slots__ = ("alg", "terms")

    def __init__(self, alg: WeylAlgebra, terms: Mapping[Term, Fraction]):
        self.alg = alg
        self.terms = {k: Fraction(v) for k, v in terms.items() if v}

    # arithmetic -------------------------------------------------------------
    def _coerce(self, other) -> Operator:
        if isinstance(other, Operator):
            if other.alg != self.alg:
                raise ValueError("operators of different Weyl algebras")
            return other
        return self.alg.const(other)

    def __add__(self, other) -> Operator:
        other = self._coerce(other)
        t = dict(self.terms)
        for k, v in other.terms.items():
            t[k] = t.get(k, Fraction(0)) + v
        return Operator(self.alg, t)

    __radd__ = __add__

    def __neg__(self) -> Operator:
        return Operator(self.alg, {k: -v for k, v in self.terms.items()})

    def __sub__(self, other) -> Operator:
        return self + (-self._coerce(other))

    def __rsub__(self, other) -> Operator:
        return self._coerce(other) - self

    def __mul__(self, other) -> Operator:
        other = self._coerce(other)
        t: dict[Term, Fraction] = {}
        for (a1, b1), c1 in self.terms.items():
            for (a2, b2), c2 in other.terms.items():
                for a, b, c in _mul_terms(b1, a2):
                    key = (
                        tuple(x + y for x, y in zip(a1, a)),
                        tuple(x + y for x, y in zip(b, b2)),
                    )
                    t[key] = t.get(key, Fraction(0)) + c1 * c2 * c
        return Operator(self.alg, t)

    def __rmul__(self, other) -> Operator:
        return self._coerce(other) * self

    def __pow__(self, k: int) -> Operator:
        out = self.alg.one()
        for _ in range(k):
            out = out * self
        return out

    def __eq__(self, other) -> bool:
        if not isinstance(other, Operator):
            other = self.alg.const(other)
        return self.alg == other.alg and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

    def is_zero(self) -> bool:
        return not self.terms

    def order(self) -> int:
        """Total order in d (-1 for the zero operator)."""
        return max((sum(b) for _, b in self.terms), default=-1)

    def __repr__(self) -> str:
        return f"Operator({format_operator(self)!r})"

    def __str__(self) -> str:
        return format_operator(self)


def _monomial_text(names: Sequence[str], exps: Exps) -> list[str]:
    return [n if e == 1 else f"{n}^{e}" for n, e in zip(names, exps) if e]


def format_operator(op: Operator) -> str:
    """Normally ordered text such as ``2*x11*d11 + x12*d12 + 2`` (degree-descending)."""
    if not op.terms:
        return "0"
    parts = []
    keys = sorted(op.terms, key=lambda k: (sum(k[1]), k[1], sum(k[0]), k[0]), reverse=True)
    for a, b in keys:
        c = op.terms[(a, b)]
        factors = _monomial_text(op.alg.xs, a) + _monomial_text(op.alg.ds, b)
        mag = abs(c)
        if factors:
            body = "*".join(factors)
            text = body if mag == 1 else f"{mag}*{body}"
        else:
            text = str(mag)
        parts.append(("-" if c < 0 else "+", text))
    out = ("-" if parts[0][0] == "-" else "") + parts[0][1]
    for sign, text in parts[1:]:
        out += f" {sign} {text}"
    return out


_NUMBER = re.compile(r"\d+(?:/\d+)?")


def parse_operator(alg: WeylAlgebra, text: str) -> Operator:
    """Read a normally ordered operator printed by hgmntk, Singular, Macaulay2 or Asir.

    Accepts sums of terms ``c*v1^e1*v2*...`` (``**`` or ``^``, implicit coefficient 1,
    rational coefficients ``p/q``).  Every x-variable must stand left of every d-variable in
    a term unless the term is a pure product of commuting names; a term like ``d1*x1`` is
    rejected because its meaning depends on the reader.  Tokenised by hand (no ``sympify``),
    so outputs of hundreds of kB are fine.
    """
    names = {n: ("x", i) for i, n in enumerate(alg.xs)}
    names.update({n: ("d", i) for i, n in enumerate(alg.ds)})
    s = re.sub(r"\s+", "", text).replace("**", "^")
    if not s:
        raise ValueError("empty operator text")
    if s[0] not in "+-":
        s = "+" + s
    terms: dict[Term, Fraction] = {}
    pos = 0
    term_re = re.compile(r"([+-])([^+-]+)")
    for m in term_re.finditer(s):
        if m.start() != pos:
            raise ValueError(f"cannot parse operator near {s[pos:pos + 20]!r}")
        pos = m.end()
        sign = -1 if m.group(1) == "-" else 1
        coef = Fraction(sign)
        a = [0] * alg.n
        b = [0] * alg.n
        seen_d = False
        for factor in m.group(2).split("*"):
            if not factor:
                raise ValueError(f"empty factor in {m.group(2)!r}")
            base, _, exp = factor.partition("^")
            e = int(exp) if exp else 1
            if _NUMBER.fullmatch(base):
                coef *= Fraction(base) ** e
            elif base in names:
                kind, i = names[base]
                if kind == "x":
                    if seen_d:
                        raise ValueError(f"term {m.group(2)!r} is not normally ordered")
                    a[i] += e
                else:
                    seen_d = True
                    b[i] += e
            else:
                raise ValueError(f"unknown symbol {base!r} in operator text")
        key = (tuple(a), tuple(b))
        terms[key] = terms.get(key, Fraction(0)) + coef
    if pos != len(s):
        raise ValueError(f"cannot parse operator near {s[pos:pos + 20]!r}")
    return Operator(alg, terms)


def parse_operators(alg: WeylAlgebra, texts: Iterable[str]) -> list[Operator]:
    """Parse several operators (see :func:`parse_operator`)."""
    return [parse_operator(alg, t) for t in texts]


#: The algebra of the activation side: Q[u]<d>.
UD = WeylAlgebra(("u",), ("d",))
#: The algebra of Ehat: Q[x11, x12, x22]<d11, d12, d22>.
XD = WeylAlgebra(("x11", "x12", "x22"), ("d11", "d12", "d22"))
