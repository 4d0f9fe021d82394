"""Laporta-style reduction of a linear system over Q(x) to master columns.

The pure-Python engine turns both of its problems into the same linear algebra:

* integration by parts: unknowns are the integrals M(a, b), relations the IBP identities;
* Macaulay matrices in the rational Weyl algebra: unknowns are the d-monomials m (standing
  for m Ehat), relations the operators d^alpha g for generators g of an ideal.

Relations are sparse rows ``{column: coefficient}`` with coefficients integer polynomials in
x = (x11, x12, x22), generated for a truncation degree N.  Columns carry a total order (a
``key``; larger means "more complex", eliminated first).  Row echelon form by leading
columns is the linear-algebra version of a Groebner basis: the non-pivot columns, smallest
first, are the standard monomials ("master integrals").

Two passes keep the exact work small:

1. a modular pass: every coefficient is evaluated at a random point modulo a 61-bit prime.
   For increasing N it finds the basis: the closure of the start column under the
   derivative shifts, every shifted column reduced to non-pivot columns.  The truncation is
   accepted when the basis is the same at two consecutive N and far enough below N;
2. an exact pass: only the rows the modular pass actually used are reduced again with
   exact rational functions (:class:`~hgmntk.cas_bridge.ratfun.RatFun`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from ..errors import DerivationError
from .ratfun import RatFun, ZPoly, evaluate_mod, ratfun_dot

Col = Hashable
Row = dict
PRIME = (1 << 61) - 1


@dataclass
class ReductionProblem:
    """The data the reducer needs (see module docstring).

    ``rows(N)`` returns all relations whose columns have degree <= N;
    ``shifts(col)`` returns, for each x-variable, ``(scale, column)`` with
    d_i (col) = scale * column;  ``allowed(col)`` says whether a column may be a master
    (integrals of the odd parity sector may not).
    """

    rows: Callable[[int], list[Row]]
    key: Callable[[Col], tuple]
    degree: Callable[[Col], int]
    start: Col
    shifts: Callable[[Col], list[tuple[Fraction, Col]]]
    allowed: Callable[[Col], bool]
    truncations: Sequence[int]
    margin: int
    what: str = "system"


@dataclass
class Reduction:
    """Result: the master columns and the exact reduction of every shifted master.

    ``derivatives[k][i]`` maps master columns to the coefficients c with
    d_i (basis[k]) = sum_c coefficient * c.
    """

    basis: list[Col]
    derivatives: list[list[dict[Col, RatFun]]]
    truncation: int
    stats: dict = field(default_factory=dict)


class _Insufficient(Exception):
    """The truncation N is too small for the closure found so far."""


class _Unlucky(Exception):
    """The modular pass and the exact pass disagree (unlucky prime or point)."""


class _ModularEchelon:
    """Row echelon form modulo a prime, with the bookkeeping the exact pass needs."""

    def __init__(self, problem: ReductionProblem, point: tuple[int, int, int], prime: int):
        self.problem = problem
        self.point = point
        self.prime = prime
        self.keys: dict[Col, tuple] = {}
        # pivot column -> (monic row, index of the original row, pivots used to top-reduce)
        self.pivots: dict[Col, tuple[dict[Col, int], int, list[Col]]] = {}
        self.order: list[Col] = []
        self._expand: dict[Col, dict[Col, int]] = {}
        self._eval: dict[ZPoly, int] = {}

    def key(self, col: Col) -> tuple:
        k = self.keys.get(col)
        if k is None:
            k = self.keys[col] = self.problem.key(col)
        return k

    def value(self, p: ZPoly) -> int:
        s = str(p)
        v = self._eval.get(s)
        if v is None:
            v = self._eval[s] = evaluate_mod(p, self.point, self.prime)
        return v

    def add(self, row: Row, index: int) -> None:
        pr = self.prime
        r = {c: self.value(p) for c, p in row.items()}
        r = {c: v for c, v in r.items() if v}
        deps: list[Col] = []
        while r:
            lead = max(r, key=self.key)
            piv = self.pivots.get(lead)
            if piv is None:
                inv = pow(r[lead], -1, pr)
                self.pivots[lead] = ({c: v * inv % pr for c, v in r.items()}, index, deps)
                self.order.append(lead)
                return
            deps.append(lead)
            f = r[lead]
            for c, v in piv[0].items():
                w = (r.get(c, 0) - f * v) % pr
                if w:
                    r[c] = w
                else:
                    r.pop(c, None)

    def expand(self, col: Col) -> dict[Col, int]:
        """col as a combination of non-pivot columns (memoised full back substitution)."""
        got = self._expand.get(col)
        if got is not None:
            return got
        piv = self.pivots.get(col)
        if piv is None:
            out = {col: 1}
        else:
            pr = self.prime
            acc: dict[Col, int] = {}
            for c in sorted((c for c in piv[0] if c != col), key=self.key, reverse=True):
                f = -piv[0][c] % pr
                for c2, v in self.expand(c).items():
                    acc[c2] = (acc.get(c2, 0) + f * v) % pr
            out = {c: v for c, v in acc.items() if v}
        self._expand[col] = out
        return out


def _closure(ech: _ModularEchelon, truncation: int) -> tuple[list[Col], set[Col]]:
    """Masters reached from the start column, and the pivots used to reach them."""
    prob = ech.problem
    if prob.start in ech.pivots:
        raise DerivationError(
            f"{prob.what}: the function itself reduces to zero (Ehat = 0?); "
            "check the annihilators"
        )
    basis = [prob.start]
    seen = {prob.start}
    k = 0
    while k < len(basis):
        for _, target in prob.shifts(basis[k]):
            if prob.degree(target) > truncation - prob.margin:
                raise _Insufficient()
            for c in ech.expand(target):
                if c not in seen:
                    if not prob.allowed(c):
                        raise _Insufficient()
                    seen.add(c)
                    basis.append(c)
        k += 1
    # pivots needed: everything reached by back substitution, plus top-reduction history
    needed: set[Col] = set()
    stack = [t for b in basis for _, t in prob.shifts(b) if t in ech.pivots]
    while stack:
        c = stack.pop()
        if c in needed:
            continue
        needed.add(c)
        row, _, deps = ech.pivots[c]
        stack.extend(c2 for c2 in row if c2 != c and c2 in ech.pivots and c2 not in needed)
        stack.extend(d for d in deps if d not in needed)
    return basis, needed


def _sorted_rows(rows: list[Row], key: Callable[[Col], tuple]) -> list[Row]:
    return sorted(rows, key=lambda r: (max(key(c) for c in r), len(r)))


def reduce_system(
    problem: ReductionProblem,
    *,
    progress: Callable[[str], None] | None = None,
    deadline: float | None = None,
    max_rank: int = 200,
    seed: int | None = None,
    confirmations: int = 2,
) -> Reduction:
    """Find the master columns and the exact Pfaffian data of ``problem``.

    The basis found at truncation N is accepted when the next ``confirmations``
    truncations give the same basis (a larger truncation can only add relations, so a
    too-small truncation shows as a basis that still shrinks).  Raises DerivationError when
    no stable finite basis appears, on timeout, or when the basis exceeds ``max_rank``.
    """
    rng = random.Random(seed)

    def note(msg: str) -> None:
        if progress is not None:
            progress(msg)

    def check_time() -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise DerivationError(f"{problem.what}: derivation timed out")

    for _attempt in range(3):
        point = tuple(rng.randrange(2, PRIME - 1) for _ in range(3))
        previous: tuple[list[Col], int, list[Row], _ModularEchelon, set[Col]] | None = None
        accepted = None
        agreed = 0
        for n in problem.truncations:
            check_time()
            rows = [r for r in problem.rows(n) if r]
            rows = _sorted_rows(rows, problem.key)
            ech = _ModularEchelon(problem, point, PRIME)
            for i, r in enumerate(rows):
                ech.add(r, i)
            try:
                basis, needed = _closure(ech, n)
            except _Insufficient:
                note(f"modular pass N={n}: truncation too small ({len(rows)} relations)")
                previous = None
                agreed = 0
                continue
            note(f"modular pass N={n}: {len(basis)} masters, {len(rows)} relations")
            if len(basis) > max_rank:
                raise DerivationError(f"{problem.what}: rank above {max_rank}; not derived")
            if previous is not None and set(previous[0]) == set(basis):
                agreed += 1
                if agreed >= confirmations:
                    accepted = previous
                    break
                continue
            previous = (basis, n, rows, ech, needed)
            agreed = 0
        if accepted is None:
            raise DerivationError(
                f"{problem.what}: no finite set of standard monomials (masters) found up to "
                f"truncation degree {problem.truncations[-1]} (holonomic rank not finite, or "
                f"too large for the pure-Python engine)"
            )
        basis, n, rows, ech, needed = accepted
        try:
            return _exact_pass(problem, basis, n, rows, ech, needed, note, check_time)
        except _Unlucky:
            note("modular and exact passes disagree; retrying with another point")
            continue
    raise DerivationError(f"{problem.what}: repeated disagreement of modular and exact passes")


def _exact_pass(problem, basis, n, rows, ech, needed, note, check_time) -> Reduction:
    t0 = time.perf_counter()
    key = ech.key
    sym: dict[Col, dict[Col, RatFun]] = {}
    replay = sorted(needed, key=lambda c: ech.pivots[c][1])
    note(f"exact pass: {len(replay)} of {len(rows)} relations")
    for col in replay:
        check_time()
        r = {c: RatFun(p) for c, p in rows[ech.pivots[col][1]].items() if not p.is_zero()}
        while r:
            lead = max(r, key=key)
            piv = sym.get(lead)
            if piv is None:
                break
            f = r[lead]
            for c, v in piv.items():
                w = r.get(c)
                w = -(f * v) if w is None else w - f * v
                if w.is_zero():
                    r.pop(c, None)
                else:
                    r[c] = w
        if not r or max(r, key=key) != col:
            raise _Unlucky()
        inv = r[col].inverse()
        sym[col] = {c: (v * inv if c != col else _one()) for c, v in r.items()}
    expand: dict[Col, dict[Col, RatFun]] = {}

    def expand_col(col: Col) -> dict[Col, RatFun]:
        got = expand.get(col)
        if got is not None:
            return got
        row = sym.get(col)
        if row is None:
            if col in ech.pivots:
                raise _Unlucky()
            out = {col: _one()}
        else:
            check_time()
            acc: dict[Col, list[tuple[RatFun, RatFun]]] = {}
            for c in sorted((c for c in row if c != col), key=key):
                f = -row[c]
                for c2, v in expand_col(c).items():
                    acc.setdefault(c2, []).append((f, v))
            out = {}
            for c2, pairs in acc.items():
                v = ratfun_dot(pairs)
                if not v.is_zero():
                    out[c2] = v
        expand[col] = out
        return out

    basis = sorted(basis, key=key)
    bset = set(basis)
    derivs: list[list[dict[Col, RatFun]]] = []
    for b in basis:
        per = []
        for scale, target in problem.shifts(b):
            e = expand_col(target)
            if not set(e) <= bset:
                raise _Unlucky()
            per.append({c: v.scale(scale) for c, v in e.items()})
        derivs.append(per)
    note(f"exact pass done in {time.perf_counter() - t0:.2f} s")
    return Reduction(basis, derivs, n, {"relations": len(rows), "replayed": len(replay)})


def _one() -> RatFun:
    from .ratfun import ONE

    return RatFun(ONE)
