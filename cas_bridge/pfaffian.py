"""Pure-Python derivation of the Pfaffian system of Ehat (2-D part of the engine).

For holonomic distributions s1(u), s2(v) given by annihilators in Q[u]<d>, this module
derives the Pfaffian system of

    Ehat(x) = int int s1(u) s2(v) exp(x11 u^2 + 2 x12 u v + x22 v^2) du dv,

i.e. standard monomials m_1 = 1, ..., m_r of an annihilating ideal in the rational Weyl
algebra R = Q(x11, x12, x22)<d11, d12, d22> and rational matrices P_i with
d/dx_i F = P_i F for F = (m_1 Ehat, ..., m_r Ehat).  Two routes:

* :func:`derive_pfaffian`: integration by parts on the moments M(a, b)
  (:mod:`~hgmntk.cas_bridge.ibp`), no Groebner bases and no b-functions;
* :func:`pfaffian_from_groebner_basis` / :func:`pfaffian_from_ideal`: normal forms in R of an
  ideal given by generators in Q[x]<d> (e.g. the restriction ideal a CAS returned), by a
  Macaulay matrix in R (:mod:`~hgmntk.cas_bridge.macaulay`).

Both use the reducer of :mod:`~hgmntk.cas_bridge.reduction` (modular pass, then an exact
pass in Q(x) with python-flint), and both order monomials by graded reverse lexicographic
order with d11 > d22 > d12, so the standard monomials agree (ReLU: {1, d12}).
Denominators are factored over Q; x11 x22 - x12^2 is stored as exactly that polynomial.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import lcm

import flint

from ..errors import DerivationError
from ..rational import RationalMatrix, SparsePoly
from ..system import X_VARIABLES, PfaffianSystem
from .ibp import IBPRelations, canonical_monomial, moment_key, moment_shifts
from .ratfun import ONE, QCTX, XCTX, RatFun, ZPoly, sparse_to_zpoly, zpoly_to_sparse
from .reduction import Reduction, ReductionProblem, reduce_system
from .weyl import XD, Operator, format_operator

Monomial3 = tuple[int, int, int]


@dataclass
class DerivedSystem:
    """A derived Pfaffian system d/dx_i F = P_i F, F = (m Ehat for m in standard_monomials).

    ``factors`` are the irreducible denominator factors shared by the three matrices
    (P_x11, P_x12, P_x22); ``ideal`` holds generators of an annihilating ideal of Ehat.
    """

    standard_monomials: list[tuple[int, int, int]]
    factors: list[SparsePoly]
    matrices: list[RationalMatrix]
    ideal: list[Operator]
    stats: dict = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return len(self.standard_monomials)

    def to_pfaffian_system(
        self,
        base_point: Sequence[object],
        initial_values: Sequence[object],
        pair: tuple[str, str] = ("s", "s"),
        metadata: Mapping[str, object] | None = None,
    ) -> PfaffianSystem:
        """Wrap as a :class:`~hgmntk.system.PfaffianSystem` with F(base_point) given."""
        return PfaffianSystem(
            variables=X_VARIABLES,
            standard_monomials=tuple(tuple(m) for m in self.standard_monomials),
            factors=tuple(self.factors),
            matrices=tuple(self.matrices),
            base_point=tuple(str(v) for v in base_point),
            initial_values=tuple(str(v) for v in initial_values),
            ideal=tuple(format_operator(g) for g in self.ideal),
            pair=tuple(pair),  # type: ignore[arg-type]
            metadata=dict(metadata or {}),
        )

    def entry(self, i: int, row: int, col: int) -> RatFun:
        """Entry (row, col) of P_i as an exact rational function."""
        return matrix_entries(self.matrices[i], self.factors)[row][col]


# --------------------------------------------------------------------------- IBP route
def derive_pfaffian(
    ann1: list[Operator],
    ann2: list[Operator],
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> DerivedSystem:
    """Pfaffian system of Ehat for s1, s2 annihilated by ``ann1``, ``ann2`` (in Q[u]<d>).

    Integration by parts: the moments M(a, b) = int u^a v^b s1 s2 e^Q obey linear relations
    from the formal adjoints of the annihilators; their row reduction over Q(x) expresses
    every even moment d11^i d12^j d22^k Ehat = 2^j M(2i+j, 2k+j) through master moments
    (the standard monomials), and the derivatives of the masters give P_i.  Raises
    :class:`~hgmntk.errors.DerivationError` when no finite rank is found.
    """
    t0 = time.perf_counter()
    deadline = None if timeout is None else time.monotonic() + timeout
    _note(progress, "IBP relations")
    try:
        gen = IBPRelations(ann1, ann2)
    except ValueError as exc:
        raise DerivationError(f"bad annihilators: {exc}") from exc
    h = gen.height
    start = 2 * max(h, 2)
    problem = ReductionProblem(
        rows=gen.rows,
        key=moment_key,
        degree=lambda m: m[0] + m[1],
        start=(0, 0),
        shifts=moment_shifts,
        allowed=lambda m: (m[0] + m[1]) % 2 == 0,
        truncations=list(range(start, start + 60, 2)),
        margin=gen.order + 2,
        what="IBP reduction",
    )
    red = reduce_system(problem, progress=progress, deadline=deadline)
    monos = [canonical_monomial(m) for m in red.basis]
    weights = [Fraction(2) ** m[1] for m in monos]
    system = _assemble(red, monos, weights, progress)
    system.ideal = [_d12_relation()] + system.ideal
    system.stats["seconds"] = time.perf_counter() - t0
    return system


def _d12_relation() -> Operator:
    d11, d12, d22 = (XD.d(i) for i in range(3))
    return 4 * d11 * d22 - d12 * d12


def _note(progress: Callable[[str], None] | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


# ------------------------------------------------------------------- Groebner route
def pfaffian_from_groebner_basis(
    gb: list[Operator],
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> DerivedSystem:
    """Pfaffian system from a Groebner basis (in Q[x]<d>) of an annihilating ideal of Ehat.

    ``gb`` is what a CAS returns for a block order with the d-variables first; it is then
    a Groebner basis of R gb in R = Q(x)<d>.  Normal forms are computed by row reduction of
    the Macaulay matrix of the shifts d^alpha g (the term order of the CAS need not be
    known; a small truncation degree suffices for a Groebner basis).
    """
    return _from_generators(gb, progress, timeout, "Groebner basis")


def pfaffian_from_ideal(
    generators: list[Operator],
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> DerivedSystem:
    """Pfaffian system of the left ideal of R = Q(x)<d> generated by ``generators``.

    Computes the Groebner basis in R by linear algebra (Macaulay matrices of increasing
    degree, reduced over Q(x)), then the normal forms of d_i m for standard monomials m.
    """
    return _from_generators(generators, progress, timeout, "ideal")


def _from_generators(gens, progress, timeout, what) -> DerivedSystem:
    from .macaulay import MacaulayRows, monomial_key, monomial_shifts

    t0 = time.perf_counter()
    deadline = None if timeout is None else time.monotonic() + timeout
    gens = [g for g in gens if not g.is_zero()]
    if not gens:
        raise DerivationError("the ideal is zero: its rank is not finite")
    if any(g.alg != XD for g in gens):
        raise DerivationError("generators must be operators of Q[x11,x12,x22]<d11,d12,d22>")
    rows = MacaulayRows(gens)
    top = max(g.order() for g in gens)
    problem = ReductionProblem(
        rows=rows.rows,
        key=monomial_key,
        degree=lambda m: sum(m),
        start=(0, 0, 0),
        shifts=monomial_shifts,
        allowed=lambda m: True,
        truncations=list(range(top + 1, top + 30)),
        margin=1,
        what=f"Pfaffian from {what}",
    )
    red = reduce_system(problem, progress=progress, deadline=deadline)
    monos = [tuple(m) for m in red.basis]
    system = _assemble(red, monos, [Fraction(1)] * len(monos), progress)
    system.ideal = list(gens)
    system.stats["seconds"] = time.perf_counter() - t0
    return system


# ------------------------------------------------------------------------ assembly
def _assemble(
    red: Reduction,
    monos: list[Monomial3],
    weights: list[Fraction],
    progress: Callable[[str], None] | None,
) -> DerivedSystem:
    """P_i[k][l] = w_k c / w_l for d_i col_k = sum c col_l and F_k = w_k col_k."""
    _note(progress, "assembling Pfaffian matrices")
    index = {c: n for n, c in enumerate(red.basis)}
    r = len(red.basis)
    zero = RatFun(XCTX.constant(0))
    entries = [[[zero] * r for _ in range(r)] for _ in range(3)]
    for k, per in enumerate(red.derivatives):
        for i, expansion in enumerate(per):
            for c, v in expansion.items():
                entries[i][k][index[c]] = v.scale(weights[k] / weights[index[c]])
    factors, matrices = factor_matrices(entries)
    ideal = _border_operators(entries, monos)
    return DerivedSystem(
        standard_monomials=[tuple(m) for m in monos],  # type: ignore[misc]
        factors=factors,
        matrices=matrices,
        ideal=ideal,
        stats={"truncation": red.truncation, **red.stats},
    )


def _border_operators(entries, monos: list[Monomial3]) -> list[Operator]:
    """Operators d_i m_k - sum_l P_i[k][l] m_l (denominators cleared) that are not trivial."""
    out = []
    r = len(monos)
    pos = {m: n for n, m in enumerate(monos)}
    for i in range(3):
        for k in range(r):
            shifted = list(monos[k])
            shifted[i] += 1
            st = tuple(shifted)
            row = entries[i][k]
            nonzero = [l for l in range(r) if not row[l].is_zero()]
            if st in pos and nonzero == [pos[st]] and row[pos[st]] == RatFun(ONE):
                continue
            den = ONE
            for l in nonzero:
                g = den.gcd(row[l].den)
                den = den * (row[l].den / g)
            content = den
            for l in nonzero:
                content = content.gcd(row[l].num * (den / row[l].den))
            den_c = den / content
            terms: dict = {}
            for mono, c in den_c.terms():
                terms[(tuple(int(e) for e in mono), st)] = Fraction(int(c))
            for l in nonzero:
                p = row[l].num * (den / row[l].den) / content
                for mono, c in p.terms():
                    key = (tuple(int(e) for e in mono), tuple(monos[l]))
                    terms[key] = terms.get(key, Fraction(0)) - int(c)
            lead = max(terms, key=lambda t: (sum(t[1]), t[1], sum(t[0]), t[0]))
            if terms[lead] < 0:
                terms = {t: -c for t, c in terms.items()}
            out.append(Operator(XD, terms))
    return out


_DET_TERMS = {(1, 0, 1): 1, (0, 2, 0): -1}


def _normalise_factor(f: ZPoly) -> tuple[ZPoly, int]:
    """(normalised irreducible factor, sign) with f = sign * normalised."""
    terms = {tuple(int(e) for e in m): int(c) for m, c in f.terms()}
    if terms == _DET_TERMS:
        return f, 1
    if terms == {m: -c for m, c in _DET_TERMS.items()}:
        return -f, -1
    if f.leading_coefficient() < 0:
        return -f, -1
    return f, 1


def factor_matrices(
    entries: list[list[list[RatFun]]],
) -> tuple[list[SparsePoly], list[RationalMatrix]]:
    """Write matrices of rational functions over factored common denominators."""
    factor_list: list[ZPoly] = []
    factor_index: dict[str, int] = {}
    cache: dict[str, tuple[int, dict[int, int]]] = {}

    def factored(den: ZPoly) -> tuple[int, dict[int, int]]:
        s = str(den)
        got = cache.get(s)
        if got is not None:
            return got
        content, facs = den.factor()
        const = int(content)
        powers: dict[int, int] = {}
        for f, e in facs:
            g, sign = _normalise_factor(f)
            const *= sign**e
            name = str(g)
            if name not in factor_index:
                factor_index[name] = len(factor_list)
                factor_list.append(g)
            powers[factor_index[name]] = powers.get(factor_index[name], 0) + int(e)
        cache[s] = (const, powers)
        return const, powers

    for mat in entries:
        for row in mat:
            for v in row:
                if not v.is_zero():
                    factored(v.den)
    # deterministic factor order: by degree, then text
    order = sorted(range(len(factor_list)),
                   key=lambda k: (factor_list[k].total_degree(), str(factor_list[k])))
    renumber = {old: new for new, old in enumerate(order)}
    factors_sorted = [factor_list[k] for k in order]

    matrices = []
    for mat in entries:
        info = [[factored(v.den) if not v.is_zero() else (1, {}) for v in row] for row in mat]
        common: dict[int, int] = {}
        consts = []
        for row in info:
            for const, powers in row:
                consts.append(abs(const))
                for k, e in powers.items():
                    common[k] = max(common.get(k, 0), e)
        big = lcm(*consts) if consts else 1
        numerators = []
        for row, vrow in zip(info, mat, strict=True):
            out_row = []
            for (const, powers), v in zip(row, vrow, strict=True):
                if v.is_zero():
                    out_row.append(SparsePoly(3, {}))
                    continue
                p = v.num * (big // const)
                for k, e in common.items():
                    extra = e - powers.get(k, 0)
                    if extra:
                        p = p * factor_list[k] ** extra
                out_row.append(zpoly_to_sparse(p))
            numerators.append(tuple(out_row))
        powers_out = tuple(sorted((renumber[k], e) for k, e in common.items() if e))
        matrices.append(RationalMatrix(tuple(numerators), Fraction(big), powers_out))
    return [zpoly_to_sparse(f) for f in factors_sorted], matrices


# --------------------------------------------------------------------- checking
def matrix_entries(mat: RationalMatrix, factors: Sequence[SparsePoly]) -> list[list[RatFun]]:
    """The entries of a RationalMatrix as exact rational functions."""
    c = Fraction(mat.constant)
    den = XCTX.constant(c.numerator)
    num_scale = c.denominator
    for k, e in mat.factor_powers:
        f, lf = sparse_to_zpoly(factors[k])
        den = den * f**e
        num_scale *= lf**e
    out = []
    for row in mat.numerators:
        out_row = []
        for p in row:
            n, ln = sparse_to_zpoly(p)
            out_row.append(RatFun(n * num_scale, den * ln))
        out.append(out_row)
    return out


def _random_point(rng: random.Random) -> tuple[Fraction, Fraction, Fraction]:
    def q() -> Fraction:
        return Fraction(rng.randint(-97, 97), rng.randint(1, 31))

    return q(), q(), q()


def _qpoly(p: SparsePoly):
    return QCTX.from_dict({m: flint.fmpq(c.numerator, c.denominator) for m, c in p.terms.items()})


def integrability_defects(
    system: DerivedSystem, points: int = 3, seed: int = 20261123
) -> list[Fraction]:
    """max |entry| of d_j P_i - d_i P_j + [P_i, P_j] over pairs (i, j), at each test point.

    Exact: P_i = N_i / den_i with polynomial N_i and den_i, so
    d_j P_i = (d_j N_i den_i - N_i d_j den_i) / den_i^2 is evaluated in flint rationals.
    """
    rng = random.Random(seed)
    r = system.rank
    data = []
    for m in system.matrices:
        c = Fraction(m.constant)
        den = QCTX.from_dict({(0, 0, 0): flint.fmpq(c.numerator, c.denominator)})
        for k, e in m.factor_powers:
            den = den * _qpoly(system.factors[k]) ** e
        nums = [[_qpoly(p) for p in row] for row in m.numerators]
        data.append((nums, den))
    out: list[Fraction] = []
    tries = 0
    while len(out) < points:
        tries += 1
        if tries > 50 * points:
            raise DerivationError("could not find test points off the singular locus")
        pt = [flint.fmpq(q.numerator, q.denominator) for q in _random_point(rng)]
        p_val, dp_val = [], []
        ok = True
        for nums, den in data:
            dv = den(*pt)
            if dv == 0:
                ok = False
                break
            ddv = [den.derivative(j)(*pt) for j in range(3)]
            nv = [[n(*pt) for n in row] for row in nums]
            p_val.append([[v / dv for v in row] for row in nv])
            dp_val.append([[[(n.derivative(j)(*pt) * dv - v * ddv[j]) / (dv * dv)
                             for n, v in zip(row, vrow, strict=True)]
                            for row, vrow in zip(nums, nv, strict=True)] for j in range(3)])
        if not ok:
            continue
        worst = flint.fmpq(0)
        for i in range(3):
            for j in range(i + 1, 3):
                for a in range(r):
                    for b in range(r):
                        val = dp_val[i][j][a][b] - dp_val[j][i][a][b]
                        for c2 in range(r):
                            val += p_val[i][a][c2] * p_val[j][c2][b]
                            val -= p_val[j][a][c2] * p_val[i][c2][b]
                        if abs(val) > worst:
                            worst = abs(val)
        out.append(Fraction(int(worst.p), int(worst.q)))
    return out


def check_integrability(system: DerivedSystem, points: int = 3) -> None:
    """Raise DerivationError unless d_j P_i - d_i P_j + [P_i, P_j] = 0 exactly.

    The identity (the compatibility of d/dx_i F = P_i F) is checked in exact rational
    arithmetic at ``points`` random rational points off the singular locus.
    """
    for n, worst in enumerate(integrability_defects(system, points)):
        if worst != 0:
            raise DerivationError(
                f"Pfaffian system is not integrable: defect {worst} at test point {n}"
            )


def same_system(system: DerivedSystem, reference: DerivedSystem, *, what: str) -> DerivedSystem:
    """``system`` with its basis in the order of ``reference``; DerivationError if they differ.

    Two Pfaffian systems of one ideal for the same monomial order have the same standard
    monomials m_1..m_r, possibly listed in another order; with the permutation pi that puts
    them in the order of ``reference``, P_i[pi k][pi l] must equal the reference's
    P_i[k][l] as exact rational functions.  ``what`` names ``system`` in the error.
    """
    mine, theirs = list(system.standard_monomials), list(reference.standard_monomials)
    if sorted(mine) != sorted(theirs):
        raise DerivationError(
            f"{what} found the standard monomials {sorted(mine)}, the engine {sorted(theirs)}"
        )
    perm = [mine.index(m) for m in theirs]
    entries = []
    for m in system.matrices:
        rows = matrix_entries(m, system.factors)
        entries.append([[rows[pk][pl] for pl in perm] for pk in perm])
    expected = [matrix_entries(m, reference.factors) for m in reference.matrices]
    for i, (a, b) in enumerate(zip(entries, expected, strict=True)):
        for k, (ra, rb) in enumerate(zip(a, b, strict=True)):
            for l, (va, vb) in enumerate(zip(ra, rb, strict=True)):
                if va != vb:
                    raise DerivationError(
                        f"{what} and the engine disagree on entry ({k}, {l}) of "
                        f"P_{X_VARIABLES[i]}: {va} against {vb}"
                    )
    factors, matrices = factor_matrices(entries)
    return DerivedSystem(
        standard_monomials=theirs,
        factors=factors,
        matrices=matrices,
        ideal=list(system.ideal),
        stats={**system.stats, "checked against": "engine"},
    )


__all__ = [
    "DerivedSystem",
    "check_integrability",
    "derive_pfaffian",
    "factor_matrices",
    "integrability_defects",
    "matrix_entries",
    "pfaffian_from_groebner_basis",
    "pfaffian_from_ideal",
    "same_system",
]
