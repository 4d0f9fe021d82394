"""The Pfaffian system of a dual activation, as data.

For Ehat(x) = int s1(u) s2(v) exp(x11 u^2 + 2 x12 u v + x22 v^2) du dv and standard
monomials m_1 = 1, m_2, ..., m_r in (d11, d12, d22), the vector
F = (m_1 Ehat, ..., m_r Ehat) satisfies the integrable Pfaffian system

    dF/dx_i = P_i(x) F,   i in (x11, x12, x22),

with P_i rational in x.  A :class:`PfaffianSystem` holds the P_i (factored denominators,
see :mod:`hgmntk.rational`), the standard monomials, a base point x0 with x12 = 0 and
F(x0) to at least 30 digits.  The same class holds 1-variable systems (variable ``y``) used
for diagonal values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import mpmath
import numpy as np

from .rational import CompiledRationalMatrices, RationalMatrix, SparsePoly

X_VARIABLES = ("x11", "x12", "x22")
D_VARIABLES = ("d11", "d12", "d22")


def parse_number(text: str | float | int) -> mpmath.mpf:
    """Parse '1/4', '0.3926990816987...', 'inf' or a SymPy constant expression to 40 digits."""
    with mpmath.workdps(40):
        s = str(text).strip()
        if s in ("inf", "+inf", "oo"):
            return mpmath.inf
        if s in ("-inf", "-oo"):
            return -mpmath.inf
        try:
            if "/" in s and all(part.strip().lstrip("-").isdigit() for part in s.split("/")):
                p, q = s.split("/")
                return mpmath.mpf(int(p)) / int(q)
            return mpmath.mpf(s)
        except (ValueError, TypeError):
            import sympy

            return mpmath.mpf(sympy.N(sympy.sympify(s, rational=True), 40))


@dataclass(frozen=True)
class PfaffianSystem:
    """Data of one Pfaffian system dF/dx_i = P_i(x) F (see module docstring)."""

    variables: tuple[str, ...]
    standard_monomials: tuple[tuple[int, ...], ...]
    factors: tuple[SparsePoly, ...]
    matrices: tuple[RationalMatrix, ...]
    base_point: tuple[str, ...]
    initial_values: tuple[str, ...]
    ideal: tuple[str, ...] = ()
    pair: tuple[str, str] = ("s", "s")
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, r = len(self.variables), len(self.standard_monomials)
        if len(self.matrices) != n:
            raise ValueError(f"{len(self.matrices)} Pfaffian matrices for {n} variables")
        if any(m.rank != r for m in self.matrices):
            raise ValueError("Pfaffian matrix size differs from the number of standard monomials")
        if len(self.base_point) != n or len(self.initial_values) != r:
            raise ValueError("base point or initial values of the wrong length")
        if r == 0 or any(self.standard_monomials[0]):
            raise ValueError("the first standard monomial must be 1 (F[0] = Ehat)")

    @property
    def rank(self) -> int:
        """Holonomic rank r = number of standard monomials."""
        return len(self.standard_monomials)

    # ----------------------------------------------------------------- JSON
    @classmethod
    def from_json(cls, data: Mapping) -> PfaffianSystem:
        variables = tuple(data["variables"])
        nvars = len(variables)
        factors = tuple(SparsePoly.from_json(f, nvars) for f in data.get("factors", []))
        matrices = tuple(RationalMatrix.from_json(m, nvars, len(factors)) for m in data["pfaffian"])
        system = cls(
            variables=variables,
            standard_monomials=tuple(tuple(int(e) for e in m) for m in data["standard_monomials"]),
            factors=factors,
            matrices=matrices,
            base_point=tuple(str(v) for v in data["base_point"]),
            initial_values=tuple(str(v) for v in data["initial_values"]),
            ideal=tuple(data.get("ideal", ())),
            pair=tuple(data.get("pair", ("s", "s"))),  # type: ignore[arg-type]
            metadata=dict(data.get("metadata", {})),
        )
        if int(data.get("rank", system.rank)) != system.rank:
            raise ValueError("stored rank differs from the number of standard monomials")
        return system

    def to_json(self) -> dict:
        return {
            "pair": list(self.pair),
            "variables": list(self.variables),
            "rank": self.rank,
            "standard_monomials": [list(m) for m in self.standard_monomials],
            "ideal": list(self.ideal),
            "factors": [f.to_json() for f in self.factors],
            "pfaffian": [m.to_json() for m in self.matrices],
            "base_point": list(self.base_point),
            "initial_values": list(self.initial_values),
            "metadata": dict(self.metadata),
        }

    # ------------------------------------------------------------ numerics
    @cached_property
    def compiled(self) -> CompiledRationalMatrices:
        """Batched float evaluator of (P_1, ..., P_n)."""
        return CompiledRationalMatrices(self.matrices, self.factors, len(self.variables))

    @cached_property
    def base_point_float(self) -> np.ndarray:
        return np.array([float(parse_number(v)) for v in self.base_point])

    @cached_property
    def initial_values_mp(self) -> tuple[mpmath.mpf, ...]:
        return tuple(parse_number(v) for v in self.initial_values)

    @cached_property
    def initial_values_float(self) -> np.ndarray:
        return np.array([float(v) for v in self.initial_values_mp])

    @cached_property
    def determinant_factor(self) -> int | None:
        """Index of the factor +-(x11*x22 - x12**2) (up to a constant), if present."""
        if self.variables != X_VARIABLES:
            return None
        for k, f in enumerate(self.factors):
            t = f.terms
            if set(t) == {(1, 0, 1), (0, 2, 0)} and t[(1, 0, 1)] == -t[(0, 2, 0)]:
                return k
        return None

    @cached_property
    def connection(self) -> tuple[CompiledRationalMatrices, int | None]:
        """(Q_a, Q_b, Q_c) of the normalised vector in covariance coordinates, compiled.

        See :mod:`hgmntk.lconnection`; the second item is the index of the factor
        ab - c^2, whose value the integrator supplies from the accurate determinant.
        """
        from .lconnection import covariance_connection, determinant_factor_index

        if self.variables != X_VARIABLES:
            raise ValueError("covariance coordinates exist only for systems in (x11, x12, x22)")
        factors, matrices = covariance_connection(self)
        return CompiledRationalMatrices(matrices, factors, 3), determinant_factor_index(factors)

    def connection_at(self, a, b, c, det, which=None) -> list[np.ndarray]:
        """Q_a, Q_b, Q_c (or those chosen by index in ``which``) at a batch of covariances.

        Each is an array of shape (npoints, r, r).
        """
        compiled, k = self.connection
        override = {} if k is None else {k: det}
        if k is not None and compiled.factors[k].terms[(1, 1, 0)] < 0:
            override = {k: -det}
        return compiled.evaluate([a, b, c], override, which)

    def matrices_at(self, values: Sequence[np.ndarray], factor_values=None) -> list[np.ndarray]:
        """P_i evaluated at a batch of points: one (npoints, r, r) array per variable."""
        return self.compiled.evaluate(values, factor_values)

    def matrices_sympy(self):
        """The P_i as SymPy matrices (for display and symbolic checks)."""
        import sympy

        syms = sympy.symbols(self.variables)
        factors = [f.to_sympy(syms) for f in self.factors]
        out = []
        for m in self.matrices:
            den = sympy.Rational(m.constant.numerator, m.constant.denominator)
            for k, e in m.factor_powers:
                den *= factors[k] ** e
            out.append(
                sympy.Matrix(
                    [[sympy.cancel(p.to_sympy(syms) / den) for p in row] for row in m.numerators]
                )
            )
        return out

    def integrability_defect(self, point: Sequence[float]) -> float:
        """max |d_j P_i - d_i P_j + [P_i, P_j]| at a point, by central differences.

        A float sanity check of dP_i/dx_j - dP_j/dx_i + P_i P_j - P_j P_i = 0, relative to
        the size of the terms.
        """
        x = np.asarray(point, dtype=float)
        n = len(x)
        h = 1e-5 * max(1.0, float(np.max(np.abs(x))))

        def mats(y):
            return [m[0] for m in self.matrices_at([np.array([v]) for v in y])]

        p = mats(x)
        deriv = []
        for j in range(n):
            e = np.zeros(n)
            e[j] = h
            plus, minus = mats(x + e), mats(x - e)
            deriv.append([(a - b) / (2 * h) for a, b in zip(plus, minus, strict=False)])
        worst = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                lhs = deriv[j][i] - deriv[i][j] + p[i] @ p[j] - p[j] @ p[i]
                scale = 1.0 + max(np.abs(p[i] @ p[j]).max(), np.abs(deriv[j][i]).max())
                worst = max(worst, float(np.abs(lhs).max() / scale))
        return worst
