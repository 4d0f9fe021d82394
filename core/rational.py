"""Sparse multivariate polynomials and rational matrices over Q, stored as data.

A Pfaffian matrix P_i(x) has entries that are rational functions of x = (x11, x12, x22).
We store each matrix as ``N_i(x) / (c_i * prod_k f_k(x)^e_ik)``: a matrix of polynomial
numerators over one common denominator, written as a product of irreducible factors
f_k taken from a list shared by the whole system.  Keeping the denominator factored lets
the integrator substitute an *accurate* value for a factor that cancels catastrophically in
floating point (the determinant x11*x22 - x12**2 near the singular locus).

Polynomials are dicts {exponent tuple: Fraction}; in JSON a polynomial is a list of
``[coefficient_string, [e1, ..., en]]`` terms, coefficients written "p" or "p/q".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

Monomial = tuple[int, ...]


def _frac(text: str | int | Fraction) -> Fraction:
    return text if isinstance(text, Fraction) else Fraction(str(text))


@dataclass(frozen=True)
class SparsePoly:
    """A polynomial sum_m c_m x^m with rational coefficients, in ``nvars`` variables."""

    nvars: int
    terms: Mapping[Monomial, Fraction] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Sequence, nvars: int) -> SparsePoly:
        terms: dict[Monomial, Fraction] = {}
        for coef, exps in data:
            mono = tuple(int(e) for e in exps)
            if len(mono) != nvars or min(mono, default=0) < 0:
                raise ValueError(f"bad monomial exponents {exps!r} for {nvars} variables")
            c = _frac(coef)
            if c:
                terms[mono] = terms.get(mono, Fraction(0)) + c
        return cls(nvars, {m: c for m, c in terms.items() if c})

    def to_json(self) -> list:
        return [[str(c), list(m)] for m, c in sorted(self.terms.items(), reverse=True)]

    @classmethod
    def from_sympy(cls, expr, symbols: Sequence) -> SparsePoly:
        """Convert a SymPy polynomial expression with rational coefficients."""
        import sympy

        poly = sympy.Poly(sympy.expand(expr), *symbols)
        terms = {}
        for mono, coef in poly.terms():
            c = sympy.Rational(coef)
            terms[tuple(int(e) for e in mono)] = Fraction(int(c.p), int(c.q))
        return cls(len(symbols), terms)

    def to_sympy(self, symbols: Sequence):
        import sympy

        return sympy.Add(
            *[
                sympy.Rational(c.numerator, c.denominator)
                * sympy.Mul(*[s**e for s, e in zip(symbols, m)])
                for m, c in self.terms.items()
            ]
        )

    def is_zero(self) -> bool:
        return not self.terms

    def evaluate(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """Evaluate at points given as one array per variable (broadcast together)."""
        values = [np.asarray(v, dtype=float) for v in values]
        shape = np.broadcast_shapes(*[v.shape for v in values]) if values else ()
        out = np.zeros(shape)
        for mono, c in self.terms.items():
            term = np.full(shape, float(c))
            for v, e in zip(values, mono):
                if e:
                    term = term * v**e
            out = out + term
        return out


@dataclass(frozen=True)
class RationalMatrix:
    """An r x r matrix ``numerators / (constant * prod factors[k]**power)``."""

    numerators: tuple[tuple[SparsePoly, ...], ...]
    constant: Fraction
    factor_powers: tuple[tuple[int, int], ...]  # (index into the system's factor list, power)

    @property
    def rank(self) -> int:
        return len(self.numerators)

    @classmethod
    def from_json(cls, data: Mapping, nvars: int, nfactors: int) -> RationalMatrix:
        rows = tuple(
            tuple(SparsePoly.from_json(entry, nvars) for entry in row) for row in data["numerators"]
        )
        r = len(rows)
        if any(len(row) != r for row in rows):
            raise ValueError("Pfaffian matrix is not square")
        powers = tuple((int(k), int(e)) for k, e in data.get("denominator", []))
        for k, e in powers:
            if not 0 <= k < nfactors or e < 0:
                raise ValueError(f"bad denominator factor reference {(k, e)}")
        const = _frac(data.get("constant", "1"))
        if const == 0:
            raise ValueError("zero denominator constant")
        return cls(rows, const, powers)

    def to_json(self) -> dict:
        return {
            "constant": str(self.constant),
            "denominator": [list(p) for p in self.factor_powers],
            "numerators": [[p.to_json() for p in row] for row in self.numerators],
        }


class CompiledRationalMatrices:
    """Fast batched evaluation of several RationalMatrix objects sharing a factor list.

    All monomials of all numerators are evaluated once per batch from cached powers; the
    numerators are then one matrix product ``coefficients @ monomials``.
    """

    def __init__(
        self, matrices: Sequence[RationalMatrix], factors: Sequence[SparsePoly], nvars: int
    ) -> None:
        self.nvars = nvars
        self.factors = list(factors)
        monos: dict[Monomial, int] = {}
        for m in matrices:
            for row in m.numerators:
                for p in row:
                    for mono in p.terms:
                        monos.setdefault(mono, len(monos))
        self.monomials = list(monos)
        self.rank = matrices[0].rank if matrices else 0
        r = self.rank
        self.coefficients = []
        self.denominators = []
        for m in matrices:
            coef = np.zeros((r * r, max(len(monos), 1)))
            for i, row in enumerate(m.numerators):
                for j, p in enumerate(row):
                    for mono, c in p.terms.items():
                        coef[i * r + j, monos[mono]] = float(c)
            self.coefficients.append(coef)
            self.denominators.append((float(m.constant), m.factor_powers))
        self.max_power = [
            max([mono[v] for mono in self.monomials] + [0]) for v in range(nvars)
        ]

    def evaluate(
        self, values: Sequence[np.ndarray], factor_values: Mapping[int, np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Return one array of shape (npoints, r, r) per matrix.

        ``values`` holds one 1-D array per variable; ``factor_values`` may replace the
        floating-point evaluation of chosen denominator factors by accurate values.
        """
        values = [np.asarray(v, dtype=float) for v in values]
        n = values[0].shape[0]
        powers = []
        for v, top in zip(values, self.max_power):
            pw = [np.ones(n)]
            for _ in range(top):
                pw.append(pw[-1] * v)
            powers.append(pw)
        mono_vals = np.empty((max(len(self.monomials), 1), n))
        if not self.monomials:
            mono_vals[:] = 0.0
        for k, mono in enumerate(self.monomials):
            t = np.ones(n)
            for v, e in enumerate(mono):
                if e:
                    t = t * powers[v][e]
            mono_vals[k] = t
        factor_values = dict(factor_values or {})
        fvals: dict[int, np.ndarray] = {}
        out = []
        r = self.rank
        for coef, (const, fpowers) in zip(self.coefficients, self.denominators):
            num = (coef @ mono_vals).T.reshape(n, r, r)
            den = np.full(n, const)
            for k, e in fpowers:
                if k not in fvals:
                    fvals[k] = (
                        np.asarray(factor_values[k], dtype=float)
                        if k in factor_values
                        else self.factors[k].evaluate(values)
                    )
                den = den * fvals[k] ** e
            out.append(num / den[:, None, None])
        return out
