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
    """'p', 'p/q' (integers: the fast path, 5x quicker than Fraction's parser) or a decimal."""
    if isinstance(text, Fraction):
        return text
    s = str(text)
    num, _, den = s.partition("/")
    try:
        return Fraction(int(num), int(den) if den else 1)
    except ValueError:
        return Fraction(s)


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
                * sympy.Mul(*[s**e for s, e in zip(symbols, m, strict=False)])
                for m, c in self.terms.items()
            ]
        )

    def is_zero(self) -> bool:
        return not self.terms

    def evaluate(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """Evaluate at points given as one array per variable (broadcast together)."""
        dtype = (
            np.longdouble if any(np.asarray(v).dtype == np.longdouble for v in values) else float
        )
        values = [np.asarray(v, dtype=dtype) for v in values]
        shape = np.broadcast_shapes(*[v.shape for v in values]) if values else ()
        out = np.zeros(shape, dtype=dtype)
        for mono, c in self.terms.items():
            term = np.full(
                shape, _longdouble(c) if dtype is np.longdouble else float(c), dtype=dtype
            )
            for v, e in zip(values, mono, strict=False):
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


def _longdouble(c: Fraction) -> np.longdouble:
    return np.longdouble(str(c.numerator)) / np.longdouble(str(c.denominator))


def _to_flint(poly: SparsePoly, ctx):
    import flint

    return ctx.from_dict({m: flint.fmpq(c.numerator, c.denominator) for m, c in poly.terms.items()})


def _from_flint(poly, nvars: int) -> SparsePoly:
    return SparsePoly(
        nvars,
        {tuple(int(e) for e in m): Fraction(int(c.p), int(c.q)) for m, c in poly.to_dict().items()},
    )


def reduce_entry(
    numerator: SparsePoly, factor_powers: Sequence[tuple[int, int]], factors: Sequence[SparsePoly]
) -> tuple[SparsePoly, tuple[tuple[int, int], ...]]:
    """Cancel denominator factors that divide ``numerator`` exactly (lowest terms per entry).

    A common denominator hides factors such as x11*x22 - x12**2 inside numerators, where
    floating-point evaluation cancels catastrophically near the singular locus; per-entry
    lowest terms keep every such factor in the (accurately evaluated) denominator.
    """
    if numerator.is_zero() or not factor_powers:
        return numerator, tuple(factor_powers)
    import flint

    names = tuple(f"v{i}" for i in range(numerator.nvars))
    ctx = flint.fmpq_mpoly_ctx.get(names, "lex")
    num = _to_flint(numerator, ctx)
    out = []
    for k, e in factor_powers:
        f = _to_flint(factors[k], ctx)
        while e > 0:
            q, r = divmod(num, f)
            if r != 0:
                break
            num, e = q, e - 1
        if e:
            out.append((k, e))
    return _from_flint(num, numerator.nvars), tuple(out)


#: Batches smaller than this divide all entries at once (fewer, larger array operations).
_GATHER_BELOW = 64


class CompiledRationalMatrices:
    """Fast batched evaluation of several RationalMatrix objects sharing a factor list.

    Each entry is first brought to lowest terms (:func:`reduce_entry`).  All monomials of all
    numerators and denominator factors are evaluated once per batch from cached powers; the
    numerators and the factors are then matrix products ``coefficients @ monomials``.  The
    entries' denominators prod_k f_k^e_k take few distinct exponent vectors: each is formed
    once per batch from a table of the powers f_k^e, and every entry divided by its own in
    one operation (a few array operations per factor, whatever the number of distinct
    denominators: small batches are all overhead).
    """

    def __init__(
        self, matrices: Sequence[RationalMatrix], factors: Sequence[SparsePoly], nvars: int
    ) -> None:
        self.nvars = nvars
        self.factors = list(factors)
        self.rank = matrices[0].rank if matrices else 0
        reduced = [
            [reduce_entry(p, m.factor_powers, factors) for row in m.numerators for p in row]
            for m in matrices
        ]
        monos: dict[Monomial, int] = {}
        for entries in reduced:
            for num, _ in entries:
                for mono in num.terms:
                    monos.setdefault(mono, len(monos))
        for f in self.factors:
            for mono in f.terms:
                monos.setdefault(mono, len(monos))
        self.monomials = list(monos)
        width = max(len(monos), 1)
        r2 = self.rank * self.rank
        self.coefficients = []
        self.coefficients_ld = []
        #: per matrix: the distinct exponent vectors (e_k) of the entries' denominators
        #: prod_k f_k^e_k (row 0: none), the entries with a denominator and their rows, and
        #: the entries of each row
        self.denominators: list[tuple] = []
        for m, entries in zip(matrices, reduced, strict=False):
            coef = np.zeros((r2, width))
            coef_ld = np.zeros((r2, width), dtype=np.longdouble)
            rows: dict[tuple[int, ...], int] = {(0,) * len(self.factors): 0}
            entry_row = np.zeros(r2, dtype=np.intp)
            for idx, (num, powers) in enumerate(entries):
                for mono, c in num.terms.items():
                    c = c / m.constant
                    coef[idx, monos[mono]] = float(c)
                    coef_ld[idx, monos[mono]] = _longdouble(c)
                if not num.is_zero():
                    exps = [0] * len(self.factors)
                    for k, e in powers:
                        exps[k] += e
                    entry_row[idx] = rows.setdefault(tuple(exps), len(rows))
            self.coefficients.append(coef)
            self.coefficients_ld.append(coef_ld)
            divided = np.flatnonzero(entry_row)
            self.denominators.append(
                (np.array(list(rows), dtype=np.intp), divided, entry_row[divided],
                 [np.flatnonzero(entry_row == i) for i in range(1, len(rows))])
            )
        self.factor_coefficients = np.zeros((len(self.factors), width))
        self.factor_coefficients_ld = np.zeros((len(self.factors), width), dtype=np.longdouble)
        for k, f in enumerate(self.factors):
            for mono, c in f.terms.items():
                self.factor_coefficients[k, monos[mono]] = float(c)
                self.factor_coefficients_ld[k, monos[mono]] = _longdouble(c)
        self.max_power = [max([mono[v] for mono in self.monomials] + [0]) for v in range(nvars)]
        self.exponents = np.array(self.monomials, dtype=np.intp).reshape(len(self.monomials), nvars)

    def evaluate(
        self,
        values: Sequence[np.ndarray],
        factor_values: Mapping[int, np.ndarray] | None = None,
        which: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """Return one array of shape (npoints, r, r) per matrix (or per index in ``which``).

        ``values`` holds one 1-D array per variable; ``factor_values`` may replace the
        floating-point evaluation of chosen denominator factors by accurate values.
        """
        dtype = (
            np.longdouble if any(np.asarray(v).dtype == np.longdouble for v in values) else float
        )
        values = [np.asarray(v, dtype=dtype) for v in values]
        n = values[0].shape[0]
        if self.monomials:
            mono_vals = np.ones((len(self.monomials), n), dtype=dtype)
            for v, top in enumerate(self.max_power):
                if top == 0:
                    continue
                table = np.empty((top + 1, n), dtype=dtype)
                table[0] = 1
                for e in range(1, top + 1):
                    table[e] = table[e - 1] * values[v]
                mono_vals *= table[self.exponents[:, v]]
        else:
            mono_vals = np.zeros((1, n), dtype=dtype)
        long = dtype is np.longdouble
        fvals = (self.factor_coefficients_ld if long else self.factor_coefficients) @ mono_vals
        for k, v in (factor_values or {}).items():
            fvals[k] = np.asarray(v, dtype=dtype)
        out = []
        r = self.rank
        chosen = range(len(self.coefficients)) if which is None else which
        tables: dict[int, np.ndarray] = {}  # f_k^e for e = 0..largest, by factor
        for m in chosen:
            coef = (self.coefficients_ld if long else self.coefficients)[m]
            num = coef @ mono_vals
            exps, divided, entry_row, by_row = self.denominators[m]
            if exps.shape[0] > 1:
                dens = None  # one row per distinct denominator
                for k in range(exps.shape[1]):
                    top = int(exps[:, k].max())
                    if top == 0:
                        continue
                    if k not in tables or tables[k].shape[0] <= top:
                        table = np.empty((top + 1, n), dtype=dtype)
                        table[0] = 1
                        for e in range(1, top + 1):
                            table[e] = table[e - 1] * fvals[k]
                        tables[k] = table
                    picked = tables[k][exps[:, k]]
                    dens = picked if dens is None else dens * picked
                if n <= _GATHER_BELOW:
                    num[divided] /= dens[entry_row]
                else:  # large batches: no (entries x n) copy of the denominators
                    for row, idx in enumerate(by_row, start=1):
                        num[idx] /= dens[row]
            out.append(num.T.reshape(n, r, r))
        return out
