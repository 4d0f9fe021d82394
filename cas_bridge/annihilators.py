"""Annihilating ideals of one-variable activations, as distributions on R.

An activation s(u) is split at its only allowed kink u = 0 into

    s = Y(u) f_plus(u) + Y(-u) f_minus(u) + sum_m a_m delta^(m)(u),

with f_plus, f_minus entire holonomic functions (built from polynomials, exp, sin, cos, erf,
erfc of polynomial arguments) and a_m constants.  An operator Q = sum c_ij u^j d^i of
Q[u]<d> annihilates s exactly when

1. Q f_plus = 0 and Q f_minus = 0 (all Taylor coefficients at 0 vanish), and
2. the part of Q s supported at 0 vanishes.  With g = f_plus - f_minus,
   d^i (Y g) = Y g^(i) + sum_{m < i} g^(i-1-m)(0) delta^(m), d^i delta^(m) = delta^(m+i) and
   u^j delta^(p) = (-1)^j p!/(p-j)! delta^(p-j) (zero for j > p).

Both conditions are linear in the c_ij, with coefficients in Q(sqrt 2, pi, e, ...) taken
from exact Taylor coefficients; they split into rational equations (1, sqrt(2), 1/sqrt(pi),
... taken as linearly independent over Q, which only ever removes solutions, and every
result is verified afterwards by applying it to the expression with SymPy).  The search
finds the least order r of an annihilator, then all annihilators of order <= r + 2 and
slightly larger degree, and returns a reduced Groebner basis of the left ideal they
generate (a minimal generating subset of it).  A larger ideal means a smaller D-module and
a smaller rank of the 2-D Pfaffian system: for ReSin Y(u) sin u this gives u (d^2 + 1)
(rank 5) rather than u^2 (d^2 + 1) (rank 8).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import sympy

from ..errors import DerivationError, NotHolonomicError
from .weyl import UD, Operator

U = sympy.Symbol("u", real=True)

#: Largest operator order and polynomial degree the search tries.
MAX_ORDER = 8
MAX_DEGREE = 10
MAX_UNKNOWNS = 140

_QUADRATURE_HINT = (
    'Its kernels can still be computed numerically: use method="gauss-hermite" (or another '
    "quadrature integrator)."
)


# --------------------------------------------------------------------------- errors
def _not_holonomic(expr, reason: str) -> NotHolonomicError:
    return NotHolonomicError(
        f"activation {sympy.sstr(expr)} is not holonomic: {reason}; it is not a solution of a "
        f"linear ODE with polynomial coefficients, so the holonomic gradient method does not "
        f"apply. {_QUADRATURE_HINT}",
        expr,
    )


_POLE_FUNCTIONS = (sympy.tanh, sympy.tan, sympy.cot, sympy.coth, sympy.sec, sympy.csc,
                   sympy.sech, sympy.csch)
_ENTIRE_FUNCTIONS = (sympy.exp, sympy.sin, sympy.cos, sympy.erf, sympy.erfc, sympy.sinh,
                     sympy.cosh)


def _has_transcendental(e) -> bool:
    return any(isinstance(a, (*_ENTIRE_FUNCTIONS, *_POLE_FUNCTIONS, sympy.log))
               for a in sympy.preorder_traversal(e)) or e.has(sympy.E)


def check_holonomic(expr: sympy.Expr) -> None:
    """Raise :class:`NotHolonomicError` for the classical non-holonomic activations.

    Detected: functions with infinitely many poles (tanh, tan, sech, ..., 1/(1 + exp(-u))
    and other negative powers of transcendental functions), logarithms of transcendental
    functions (softplus, Mish: infinitely many branch points) and transcendental functions
    of non-polynomial arguments (exp(exp(u))).
    """
    for sub in sympy.preorder_traversal(expr):
        if isinstance(sub, _POLE_FUNCTIONS) and sub.has(U):
            raise _not_holonomic(
                expr, f"{sympy.sstr(sub)} has infinitely many poles in the complex plane")
        if isinstance(sub, sympy.Pow) and sub.base.has(U) and not (
            sub.exp.is_Integer and sub.exp >= 0
        ):
            if _has_transcendental(sub.base):
                raise _not_holonomic(
                    expr,
                    f"{sympy.sstr(sub)} has infinitely many poles or branch points "
                    f"(the zeros of {sympy.sstr(sub.base)})",
                )
        if isinstance(sub, sympy.log) and sub.has(U) and _has_transcendental(sub.args[0]):
            raise _not_holonomic(
                expr,
                f"{sympy.sstr(sub)} has infinitely many logarithmic branch points (the zeros of "
                f"{sympy.sstr(sub.args[0])})",
            )
        if isinstance(sub, _ENTIRE_FUNCTIONS) and sub.has(U):
            arg = sub.args[0]
            if not arg.is_polynomial(U) and _has_transcendental(arg):
                raise _not_holonomic(
                    expr, f"{sympy.sstr(sub)} is a transcendental function of a transcendental "
                    "function")


# ------------------------------------------------------------- decomposition at 0
@dataclass
class Pieces:
    """s = Y(u) plus + Y(-u) minus + sum_m deltas[m] delta^(m)(u) (module docstring)."""

    plus: sympy.Expr
    minus: sympy.Expr
    deltas: dict[int, sympy.Expr] = field(default_factory=dict)

    @property
    def smooth(self) -> bool:
        return not self.deltas and sympy.expand(self.plus - self.minus) == 0

    def __add__(self, other: Pieces) -> Pieces:
        d = dict(self.deltas)
        for m, a in other.deltas.items():
            d[m] = d.get(m, 0) + a
        return Pieces(self.plus + other.plus, self.minus + other.minus, _clean(d))

    def scale_smooth(self, f: sympy.Expr) -> Pieces:
        """Multiply by f smooth at 0: f delta^(m) = sum_k (-1)^k C(m,k) f^(k)(0) delta^(m-k)."""
        d: dict[int, sympy.Expr] = {}
        for m, a in self.deltas.items():
            for k in range(m + 1):
                fk = sympy.diff(f, U, k).subs(U, 0)
                d[m - k] = d.get(m - k, 0) + (-1) ** k * math.comb(m, k) * fk * a
        return Pieces(f * self.plus, f * self.minus, _clean(d))

    def reflect(self) -> Pieces:
        """The pieces of s(-u)."""
        return Pieces(self.minus.subs(U, -U), self.plus.subs(U, -U),
                      {m: (-1) ** m * a for m, a in self.deltas.items()})

    def as_expression(self) -> sympy.Expr:
        """Heaviside/DiracDelta form of the distribution."""
        plus, minus = sympy.expand(self.plus), sympy.expand(self.minus)
        if sympy.expand(plus - minus) == 0:
            out = plus
        elif minus == 0:
            out = plus * sympy.Heaviside(U)
        elif plus == 0:
            out = minus * sympy.Heaviside(-U)
        else:
            out = plus * sympy.Heaviside(U) + minus * sympy.Heaviside(-U)
        for m, a in sorted(self.deltas.items()):
            out += a * (sympy.DiracDelta(U) if m == 0 else sympy.DiracDelta(U, m))
        return out


def _clean(d: dict) -> dict:
    out = {}
    for m, a in d.items():
        a = sympy.nsimplify(sympy.expand(a)) if a.has(sympy.Float) else sympy.expand(a)
        if a != 0:
            out[m] = a
    return out


def _linear_slope(arg: sympy.Expr, what: str) -> sympy.Expr:
    """k for arg = k*u (k a nonzero real constant), else a DerivationError."""
    k = sympy.simplify(arg / U)
    if k.has(U) or k == 0 or not k.is_real:
        raise DerivationError(
            f"{what}: only kinks and jumps at u = 0 are supported (argument {sympy.sstr(arg)}); "
            "shift the activation so that its kink is at 0, or use quadrature"
        )
    return k


def _region_indicator(cond, covered: sympy.Set) -> tuple[sympy.Expr, sympy.Expr, sympy.Set]:
    """(indicator on u > 0, indicator on u < 0, set) of a Piecewise condition."""
    try:
        region = sympy.S.Reals if cond is sympy.true else cond.as_set()
    except Exception as exc:
        raise DerivationError(f"cannot read the Piecewise condition {cond}: {exc}") from exc
    region = sympy.Intersection(region, sympy.S.Reals) - covered
    pos = sympy.Intersection(region, sympy.Interval.open(0, sympy.oo))
    neg = sympy.Intersection(region, sympy.Interval.open(-sympy.oo, 0))

    def indicator(part, full) -> sympy.Expr:
        if part == full:
            return sympy.S.One
        if part.is_empty or part.measure == 0:
            return sympy.S.Zero
        raise DerivationError(
            f"Piecewise condition {cond} has a break point away from u = 0; only kinks at 0 "
            "are supported"
        )

    return (indicator(pos, sympy.Interval.open(0, sympy.oo)),
            indicator(neg, sympy.Interval.open(-sympy.oo, 0)), region)


_NONSMOOTH = (sympy.Heaviside, sympy.DiracDelta, sympy.Max, sympy.Min, sympy.Abs, sympy.sign,
              sympy.Piecewise)


def pieces(expr: sympy.Expr) -> Pieces:
    """Split an activation at u = 0 into smooth pieces and delta terms (see :class:`Pieces`)."""
    expr = sympy.sympify(expr)
    if not expr.has(*_NONSMOOTH):
        return Pieces(expr, expr)
    if expr.is_Add:
        out = Pieces(sympy.S.Zero, sympy.S.Zero)
        for a in expr.args:
            out = out + pieces(a)
        return out
    if expr.is_Mul:
        out = Pieces(sympy.S.One, sympy.S.One)
        for a in expr.args:
            out = _mul(out, pieces(a), expr)
        return out
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        base = pieces(expr.base)
        out = Pieces(sympy.S.One, sympy.S.One)
        for _ in range(int(expr.exp)):
            out = _mul(out, base, expr)
        return out
    if isinstance(expr, sympy.Heaviside):
        k = _linear_slope(expr.args[0], sympy.sstr(expr))
        return Pieces(sympy.S.One, sympy.S.Zero) if k > 0 else Pieces(sympy.S.Zero, sympy.S.One)
    if isinstance(expr, sympy.DiracDelta):
        k = _linear_slope(expr.args[0], sympy.sstr(expr))
        m = int(expr.args[1]) if len(expr.args) > 1 else 0
        return Pieces(sympy.S.Zero, sympy.S.Zero, {m: 1 / (sympy.Abs(k) * k**m)})
    if isinstance(expr, sympy.sign):
        k = _linear_slope(expr.args[0], sympy.sstr(expr))
        return Pieces(sympy.sign(k), -sympy.sign(k))
    if isinstance(expr, sympy.Abs):
        k = _linear_slope(expr.args[0], sympy.sstr(expr))
        return Pieces(sympy.Abs(k) * U, -sympy.Abs(k) * U)
    if isinstance(expr, (sympy.Max, sympy.Min)):
        args = list(expr.args)
        acc = pieces(args[0])
        for b in args[1:]:
            diff = args[0] - b if len(args) == 2 else None
            if diff is None:
                raise DerivationError(f"{expr}: use Max/Min with two arguments")
            k = _linear_slope(sympy.expand(diff), sympy.sstr(expr))
            # Max(a, b) = b + (a - b) Y(a - b); Min(a, b) = a - (a - b) Y(a - b)
            pa, pb, pd = acc, pieces(b), pieces(sympy.expand(diff))
            ind = Pieces(sympy.S.One, sympy.S.Zero) if k > 0 else Pieces(sympy.S.Zero, sympy.S.One)
            if isinstance(expr, sympy.Max):
                acc = pb + _mul(pd, ind, expr)
            else:
                acc = pa + _mul(_mul(pd, ind, expr), Pieces(-sympy.S.One, -sympy.S.One), expr)
        return acc
    if isinstance(expr, sympy.Piecewise):
        out = Pieces(sympy.S.Zero, sympy.S.Zero)
        covered: sympy.Set = sympy.S.EmptySet
        for piece, cond in expr.args:
            ip, im, region = _region_indicator(cond, covered)
            covered = sympy.Union(covered, region)
            inner = pieces(piece)
            out = out + _mul(inner, Pieces(ip, im), expr)
        if not (sympy.S.Reals - covered).measure == 0:
            raise DerivationError(f"{expr} is undefined on part of the real line")
        return out
    if expr.is_Function and any(a.has(*_NONSMOOTH) for a in expr.args):
        raise DerivationError(
            f"{sympy.sstr(expr)}: a smooth function of a non-smooth argument is not supported; "
            "write the activation as a sum of pieces times Heaviside(u)"
        )
    raise DerivationError(f"unsupported activation sub-expression {sympy.sstr(expr)}")


def _mul(a: Pieces, b: Pieces, context) -> Pieces:
    if a.deltas and b.deltas:
        raise DerivationError(f"{sympy.sstr(context)}: a product of Dirac deltas is undefined")
    if b.deltas:
        a, b = b, a
    if a.deltas:
        if not b.smooth:
            raise DerivationError(
                f"{sympy.sstr(context)}: a Dirac delta times a function with a jump at 0 "
                "is undefined")
        return a.scale_smooth(b.plus)
    return Pieces(a.plus * b.plus, a.minus * b.minus)


# --------------------------------------------------------- exact Taylor series
class _Num:
    """A number sum_k q_k * key_k: rational q_k, keys SymPy constants (1, sqrt(2), ...)."""

    __slots__ = ("t",)

    def __init__(self, t: dict | None = None) -> None:
        self.t = {k: v for k, v in (t or {}).items() if v}

    def __add__(self, other: _Num) -> _Num:
        t = dict(self.t)
        for k, v in other.t.items():
            t[k] = t.get(k, 0) + v
        return _Num(t)

    def __neg__(self) -> _Num:
        return _Num({k: -v for k, v in self.t.items()})

    def __sub__(self, other: _Num) -> _Num:
        return self + (-other)

    def __mul__(self, other: _Num) -> _Num:
        t: dict = {}
        for k1, v1 in self.t.items():
            for k2, v2 in other.t.items():
                for k, v in _keymul(k1, k2).items():
                    t[k] = t.get(k, 0) + v1 * v2 * v
        return _Num(t)

    def scale(self, q) -> _Num:
        q = Fraction(q)
        return _Num({k: v * q for k, v in self.t.items()}) if q else _Num()

    def to_sympy(self) -> sympy.Expr:
        return sympy.Add(*[sympy.Rational(v.numerator, v.denominator) * k
                           for k, v in self.t.items()])

    def is_zero(self) -> bool:
        return not self.t


def _to_fraction(c) -> Fraction:
    if c.is_Rational:
        return Fraction(int(c.p), int(c.q))
    if c.is_Float:
        return Fraction(str(c))
    raise DerivationError(f"cannot use the coefficient {c} exactly")


def _num(c) -> _Num:
    """Exact conversion of a SymPy constant."""
    c = sympy.expand(sympy.sympify(c))
    if c.has(U):
        raise DerivationError(f"internal: {c} is not a constant")
    t: dict = {}
    for term in sympy.Add.make_args(c):
        q, key = term.as_coeff_Mul()
        t[key] = t.get(key, 0) + _to_fraction(q)
    return _Num(t)


@lru_cache(maxsize=4096)
def _keymul(k1, k2) -> dict:
    return _num(k1 * k2).t


_ZERO = _Num()
_ONE = _Num({sympy.S.One: Fraction(1)})


class _Series:
    """Truncated Taylor series at u = 0 with :class:`_Num` coefficients."""

    def __init__(self, c: list[_Num], n: int) -> None:
        self.c = (c + [_ZERO] * n)[:n]
        self.n = n

    def __add__(self, o: _Series) -> _Series:
        return _Series([a + b for a, b in zip(self.c, o.c, strict=True)], self.n)

    def __mul__(self, o: _Series) -> _Series:
        n = self.n
        a_nz = [(i, a) for i, a in enumerate(self.c) if not a.is_zero()]
        out = [_ZERO] * n
        for j, b in enumerate(o.c):
            if b.is_zero():
                continue
            for i, a in a_nz:
                if i + j >= n:
                    break
                out[i + j] = out[i + j] + a * b
        return _Series(out, n)

    def derivative(self) -> _Series:
        return _Series([self.c[k].scale(k) for k in range(1, self.n)], self.n)

    def value(self) -> sympy.Expr:
        return self.c[0].to_sympy()


def taylor(expr: sympy.Expr, n: int) -> list[_Num]:
    """Exact Taylor coefficients f_0 .. f_{n-1} of an entire holonomic expression at 0."""
    return _taylor(sympy.sympify(expr), n).c


def _taylor(e: sympy.Expr, n: int) -> _Series:
    if not e.has(U):
        return _Series([_num(e)], n)
    if e == U:
        return _Series([_ZERO, _ONE], n)
    if e.is_Add:
        out = _Series([], n)
        for a in e.args:
            out = out + _taylor(a, n)
        return out
    if e.is_Mul:
        out = _Series([_ONE], n)
        for a in e.args:
            out = out * _taylor(a, n)
        return out
    if e.is_Pow and e.exp.is_Integer and e.exp >= 0:
        base, k, out = _taylor(e.base, n), int(e.exp), _Series([_ONE], n)
        while k:
            if k & 1:
                out = out * base
            base, k = base * base, k >> 1
        return out
    if isinstance(e, (sympy.sinh, sympy.cosh)):
        return _taylor(e.rewrite(sympy.exp), n)
    if isinstance(e, sympy.erfc):
        return _taylor(1 - sympy.erf(e.args[0]), n)
    if isinstance(e, (sympy.exp, sympy.sin, sympy.cos, sympy.erf)):
        a = _taylor(e.args[0], n)
        da = a.derivative()
        a0 = a.value()
        if isinstance(e, sympy.exp):
            f = [_num(sympy.exp(a0))] + [_ZERO] * (n - 1)
            for m in range(1, n):  # f' = a' f
                acc = _ZERO
                for k in range(1, m + 1):
                    if not a.c[k].is_zero() and not f[m - k].is_zero():
                        acc = acc + (a.c[k] * f[m - k]).scale(k)
                f[m] = acc.scale(Fraction(1, m))
            return _Series(f, n)
        if isinstance(e, (sympy.sin, sympy.cos)):
            s = [_num(sympy.sin(a0))] + [_ZERO] * (n - 1)
            c = [_num(sympy.cos(a0))] + [_ZERO] * (n - 1)
            for m in range(1, n):  # s' = a' c, c' = -a' s
                acc_s, acc_c = _ZERO, _ZERO
                for k in range(1, m + 1):
                    if a.c[k].is_zero():
                        continue
                    acc_s = acc_s + (a.c[k] * c[m - k]).scale(k)
                    acc_c = acc_c - (a.c[k] * s[m - k]).scale(k)
                s[m], c[m] = acc_s.scale(Fraction(1, m)), acc_c.scale(Fraction(1, m))
            return _Series(s if isinstance(e, sympy.sin) else c, n)
        # erf(a)' = 2/sqrt(pi) exp(-a^2) a'
        g = _taylor(sympy.exp(-sympy.expand(e.args[0] ** 2)), n) * da
        two = _num(2 / sympy.sqrt(sympy.pi))
        coeffs = [_num(sympy.erf(a0))] + [
            (g.c[m - 1] * two).scale(Fraction(1, m)) for m in range(1, n)
        ]
        return _Series(coeffs, n)
    raise DerivationError(
        f"unsupported function {sympy.sstr(e)}: smooth parts must be built from polynomials, "
        "exp, sin, cos, sinh, cosh, erf and erfc of polynomials, with sums and products"
    )


# ------------------------------------------------------------------ linear algebra
def _nullspace(rows: list[list[Fraction]], ncols: int) -> list[list[Fraction]]:
    """A basis of {c : rows . c = 0} over Q (python-flint rref)."""
    import flint

    if not rows:
        return [[Fraction(int(i == j)) for j in range(ncols)] for i in range(ncols)]
    mat = flint.fmpq_mat(len(rows), ncols,
                         [flint.fmpq(v.numerator, v.denominator) for r in rows for v in r])
    red, rank = mat.rref()
    pivots = []
    for i in range(rank):
        for j in range(ncols):
            if red[i, j] != 0:
                pivots.append(j)
                break
    free = [j for j in range(ncols) if j not in pivots]
    basis = []
    for f in free:
        vec = [Fraction(0)] * ncols
        vec[f] = Fraction(1)
        for i, p in enumerate(pivots):
            v = red[i, f]
            vec[p] = -Fraction(int(v.p), int(v.q))
        basis.append(vec)
    return basis


class _Problem:
    """The linear conditions of module docstring for one decomposed activation."""

    def __init__(self, p: Pieces) -> None:
        self.p = p
        self.funcs = [p.plus] if sympy.expand(p.plus - p.minus) == 0 else [p.plus, p.minus]
        self.deltas = {m: _num(a) for m, a in p.deltas.items()}
        self._series: list[list[_Num]] = []
        self._scaled: dict[tuple[int, int, int], dict] = {}

    def series(self, n: int) -> list[list[_Num]]:
        """The first ``n`` Taylor coefficients of each function.

        Truncated series arithmetic is exact, so the first n coefficients of a longer
        expansion are those of the length-n one: one expansion (grown by doubling) serves
        every ``n``.
        """
        have = len(self._series[0]) if self._series else 0
        if n > have:
            self._series = [taylor(f, max(n, 2 * have)) for f in self.funcs]
            self._scaled.clear()
        return [f[:n] for f in self._series]

    def _scaled_coefficient(self, which: int, m: int, i: int) -> dict:
        """{key: q} of m!/(m-i)! f_m of function ``which``: d^i f at u^(m-i), split by key."""
        got = self._scaled.get((which, m, i))
        if got is None:
            factor = math.perm(m, i)
            got = {k: v * factor for k, v in self._series[which][m].t.items()}
            self._scaled[(which, m, i)] = got
        return got

    def rows(self, order: int, degree: int, nterms: int) -> list[list[Fraction]]:
        unknowns = [(i, j) for i in range(order + 1) for j in range(degree + 1)]
        series = self.series(nterms)
        zero = Fraction(0)
        out: list[list[Fraction]] = []
        for which in range(len(series)):
            # Q f = 0: coefficient of u^k, k = 0 .. nterms - 1 - order, split by constant key
            for k in range(nterms - order):
                cols = [None if k < j else self._scaled_coefficient(which, k - j + i, i)
                        for i, j in unknowns]
                keys = {key for c in cols if c for key in c}
                for key in keys:
                    out.append([zero if c is None else c.get(key, zero) for c in cols])
        # singular part at 0: Q (Y g) + Q (sum a_m delta^(m))
        g = [a - b for a, b in zip(series[0], series[-1], strict=True)]
        top = order + max(self.deltas, default=0) + 1
        sing = [[_ZERO] * len(unknowns) for _ in range(top)]
        for col, (i, j) in enumerate(unknowns):
            terms: dict[int, _Num] = {}
            if len(self.funcs) == 2:
                for m in range(i):  # d^i (Y g) -> g^(i-1-m)(0) delta^(m)
                    kk = i - 1 - m
                    terms[m] = terms.get(m, _ZERO) + g[kk].scale(math.factorial(kk))
            for m, a in self.deltas.items():
                terms[m + i] = terms.get(m + i, _ZERO) + a
            for p_, val in terms.items():
                if j <= p_:  # u^j delta^(p) = (-1)^j p!/(p-j)! delta^(p-j)
                    sing[p_ - j][col] = sing[p_ - j][col] + val.scale(
                        (-1) ** j * math.perm(p_, j))
        for row in sing:
            keys = {k for v in row for k in v.t}
            for key in keys:
                out.append([v.t.get(key, Fraction(0)) for v in row])
        return [r for r in out if any(r)]

    def solve(self, order: int, degree: int, extra: int = 24) -> list[Operator]:
        unknowns = [(i, j) for i in range(order + 1) for j in range(degree + 1)]
        nterms = len(unknowns) + order + degree + extra
        basis = _nullspace(self.rows(order, degree, nterms), len(unknowns))
        return [
            Operator(UD, {((j,), (i,)): c for (i, j), c in zip(unknowns, vec, strict=True) if c})
            for vec in basis
        ]


# ------------------------------------------------------------ Groebner bases in A1
def _key(term) -> tuple[int, int, int]:
    (a,), (b,) = term
    return (a + b, b, a)


def _lead(op: Operator):
    t = max(op.terms, key=_key)
    return t, op.terms[t]


def _monomial(a: int, b: int) -> Operator:
    return Operator(UD, {((a,), (b,)): Fraction(1)})


def _reduce(f: Operator, basis: Sequence[Operator]) -> Operator:
    """Full reduction of f modulo basis (left multiples), remainder in normal form."""
    rem = UD.zero()
    while not f.is_zero():
        t, c = _lead(f)
        (a,), (b,) = t
        for g in basis:
            (ga,), (gb,) = _lead(g)[0]
            if ga <= a and gb <= b:
                gc = _lead(g)[1]
                f = f - (c / gc) * (_monomial(a - ga, b - gb) * g)
                break
        else:
            rem = rem + Operator(UD, {t: c})
            f = f - Operator(UD, {t: c})
    return rem


def groebner(ops: Iterable[Operator]) -> list[Operator]:
    """Reduced Groebner basis of the left ideal of Q[u]<d> generated by ``ops``.

    Term order: total degree in (u, d), then the power of d.  Leading monomials of Weyl
    products are products of leading monomials, so Buchberger's algorithm with left
    S-polynomials u^(A-a) d^(B-b) f applies unchanged.
    """
    basis = [o for o in ops if not o.is_zero()]
    basis = [_normalize(b) for b in basis]
    pairs = [(i, j) for i in range(len(basis)) for j in range(i)]
    while pairs:
        i, j = pairs.pop()
        (fa,), (fb,) = _lead(basis[i])[0]
        (ga,), (gb,) = _lead(basis[j])[0]
        A, B = max(fa, ga), max(fb, gb)
        s = (_monomial(A - fa, B - fb) * basis[i]) * _lead(basis[j])[1] - (
            _monomial(A - ga, B - gb) * basis[j]
        ) * _lead(basis[i])[1]
        r = _reduce(s, basis)
        if not r.is_zero():
            basis.append(_normalize(r))
            n = len(basis) - 1
            pairs.extend((n, k) for k in range(n))
    # minimal, then reduced
    minimal: list[Operator] = []
    for k, g in enumerate(basis):
        (a,), (b,) = _lead(g)[0]
        dominated = False
        for m, h in enumerate(basis):
            if m == k:
                continue
            (ha,), (hb,) = _lead(h)[0]
            if ha <= a and hb <= b and ((ha, hb) != (a, b) or m < k):
                dominated = True
                break
        if not dominated:
            minimal.append(g)
    reduced = []
    for k, g in enumerate(minimal):
        t, c = _lead(g)
        rest = g - Operator(UD, {t: c})
        others = minimal[:k] + minimal[k + 1:]
        reduced.append(_normalize(Operator(UD, {t: c}) + _reduce(rest, others)))
    return sorted(reduced, key=lambda o: _key(_lead(o)[0]))


def _normalize(op: Operator) -> Operator:
    """Primitive integer coefficients with a positive leading coefficient."""
    den = 1
    for v in op.terms.values():
        den = den * v.denominator // math.gcd(den, v.denominator)
    nums = [int(v * den) for v in op.terms.values()]
    g = 0
    for v in nums:
        g = math.gcd(g, v)
    lc = _lead(op)[1]
    scale = Fraction(den, g) * (1 if lc > 0 else -1)
    return Operator(UD, {k: v * scale for k, v in op.terms.items()})


def in_ideal(op: Operator, gens: Sequence[Operator]) -> bool:
    """Whether ``op`` lies in the left ideal generated by ``gens``."""
    return _reduce(op, groebner(gens)).is_zero()


def _minimal_generators(gb: list[Operator]) -> list[Operator]:
    gens = list(gb)
    for g in sorted(gb, key=lambda o: _key(_lead(o)[0]), reverse=True):
        others = [h for h in gens if h is not g]
        if others and in_ideal(g, others):
            gens = others
    return gens


# ---------------------------------------------------------------- public API
def annihilator(expr: sympy.Expr, *, full: bool = True, verify: bool = True) -> list[Operator]:
    """Generators of a left ideal of Q[u]<d> annihilating ``expr`` as a distribution on R.

    ``expr`` is a SymPy expression in ``u`` (see the module docstring for what is allowed).
    With ``full=True`` (default) the ideal is as large as the search finds (smallest 2-D
    rank); with ``full=False`` a single operator of least order and degree is returned.
    Raises :class:`NotHolonomicError` for non-holonomic activations and
    :class:`DerivationError` for unsupported input.  ``verify`` re-applies every generator
    to the expression with SymPy (:func:`verify_annihilator`).
    """
    expr = _as_expr(expr)
    check_holonomic(expr)
    prob = _Problem(pieces(expr))
    if prob.p.plus == 0 and prob.p.minus == 0 and not prob.p.deltas:
        raise DerivationError("the activation is identically zero")
    found = None
    for order in range(MAX_ORDER + 1):
        for degree in range(MAX_DEGREE + 1):
            if (order + 1) * (degree + 1) > MAX_UNKNOWNS:
                break
            sols = prob.solve(order, degree)
            if sols:
                found = (order, degree, sols)
                break
        if found:
            break
    if not found:
        raise DerivationError(
            f"no annihilator of {sympy.sstr(expr)} with order <= {MAX_ORDER} and polynomial "
            f"degree <= {MAX_DEGREE} found; give annihilators explicitly"
        )
    order, degree, sols = found
    if not full:
        result = [_normalize(min(sols, key=lambda o: len(o.terms)))]
    else:
        ext_order = order + 2
        ext_degree = degree + 1
        while (ext_order + 1) * (ext_degree + 1) > MAX_UNKNOWNS and ext_order > order:
            ext_order -= 1
        sols = prob.solve(ext_order, ext_degree) or sols
        result = _minimal_generators(groebner(sols))
    if verify:
        for op in result:
            if not verify_annihilator(op, expr):
                raise DerivationError(
                    f"internal error: the operator {op} found for {sympy.sstr(expr)} does not "
                    "annihilate it; please report this"
                )
    return result


def _as_expr(expr) -> sympy.Expr:
    if isinstance(expr, str):
        from ..expressions import parse_activation_expression

        return parse_activation_expression(expr)
    expr = sympy.sympify(expr)
    others = {s for s in expr.free_symbols if s.name == "u"}
    if others:
        expr = expr.subs({s: U for s in others})
    if expr.free_symbols - {U}:
        raise DerivationError(f"{expr} has symbols other than u")
    return expr


def to_heaviside(expr: sympy.Expr) -> sympy.Expr:
    """The activation written with Heaviside(+-u) and DiracDelta(u, m) only."""
    return pieces(_as_expr(expr)).as_expression()


def derivative_expression(expr: sympy.Expr) -> sympy.Expr:
    """s' as a distribution: Heaviside' = DiracDelta, f(u) delta^(m) reduced to constants.

    Written as Y(u) f_plus' + Y(-u) f_minus' + (f_plus(0) - f_minus(0)) delta + a_m delta^(m+1).
    """
    p = pieces(_as_expr(expr))
    deltas = {m + 1: a for m, a in p.deltas.items()}
    jump = sympy.simplify((p.plus - p.minus).subs(U, 0))
    if jump != 0:
        deltas[0] = deltas.get(0, 0) + jump
    out = Pieces(sympy.diff(p.plus, U), sympy.diff(p.minus, U), _clean(deltas))
    return sympy.simplify(out.as_expression()) if not out.deltas else out.as_expression()


def homogeneity_degree(expr: sympy.Expr) -> int | None:
    """The integer k with s(l u) = l^k s(u) for all l > 0, or None.

    Y(u) u^k, |u|^k, leaky ReLU: k; delta^(m)(u): -1 - m; anything else: None.
    """
    p = pieces(_as_expr(expr))
    degrees = set()
    for f in (p.plus, p.minus):
        f = sympy.expand(f)
        if f == 0:
            continue
        if not f.is_polynomial(U):
            return None
        poly = sympy.Poly(f, U)
        monos = poly.monoms()
        if len(monos) != 1:
            return None
        degrees.add(monos[0][0])
    for m in p.deltas:
        degrees.add(-1 - m)
    if len(degrees) != 1:
        return None
    # each piece is c u^k (or the delta part c delta^(m), k = -1 - m): homogeneous of degree k
    return degrees.pop()


def parse_annihilators(texts: Iterable[str]) -> list[Operator]:
    """Operators of Q[u]<d> from normally ordered text such as ``"u*d - 1"``."""
    from .weyl import parse_operator

    try:
        return [parse_operator(UD, t) for t in texts]
    except ValueError as exc:
        raise DerivationError(f"cannot read annihilator: {exc}") from exc


# -------------------------------------------------------------- verification
def apply_operator(op: Operator, expr: sympy.Expr) -> tuple[sympy.Expr, dict[int, sympy.Expr]]:
    """Q s as (regular part, {m: coefficient of delta^(m)}), computed by SymPy's diff.

    The expression is differentiated as written (Max, Abs, sign and Heaviside through
    SymPy's own rules; Piecewise is first rewritten with Heaviside), and every term
    phi(u) DiracDelta(u, m) is reduced to constants times delta^(j).
    """
    e = _as_expr(expr)
    if e.has(sympy.Piecewise):
        e = to_heaviside(e)
    e = e.rewrite(sympy.Heaviside) if e.has(sympy.Max, sympy.Min) else e
    total = sympy.S.Zero
    for ((j,), (i,)), c in op.terms.items():
        total += sympy.Rational(c.numerator, c.denominator) * U**j * sympy.diff(e, U, i)
    regular = sympy.S.Zero
    deltas: dict[int, sympy.Expr] = {}
    for term in sympy.Add.make_args(sympy.expand(total)):
        dd = [f for f in sympy.Mul.make_args(term) if isinstance(f, sympy.DiracDelta)]
        if not dd:
            regular += term
            continue
        if len(dd) != 1:
            raise DerivationError(f"product of deltas in {term}")
        delta = dd[0]
        k = sympy.simplify(delta.args[0] / U)
        m = int(delta.args[1]) if len(delta.args) > 1 else 0
        phi = term / delta / (sympy.Abs(k) * k**m)
        for r in range(m + 1):
            val = sympy.diff(phi, U, r).subs(U, 0)
            deltas[m - r] = deltas.get(m - r, 0) + (-1) ** r * math.comb(m, r) * val
    return regular, {m: sympy.simplify(v) for m, v in deltas.items()}


def verify_annihilator(op: Operator, expr: sympy.Expr, points: Sequence[float] = (
        -2.7, -1.3, -0.37, 0.41, 1.2, 2.9)) -> bool:
    """True if ``op`` annihilates ``expr`` as a distribution (delta terms exactly zero, the
    regular part zero by simplification or to 40 digits at sample points on both sides)."""
    import mpmath

    regular, deltas = apply_operator(op, expr)
    if any(v != 0 for v in deltas.values()):
        return False
    if sympy.simplify(regular) == 0:
        return True
    fn = sympy.lambdify(U, regular, modules=[{"Heaviside": lambda x, *a: mpmath.mpf(x > 0),
                                                "sign": mpmath.sign}, "mpmath"])
    with mpmath.workdps(60):
        for x in points:
            xv = mpmath.mpf(x)
            if abs(fn(xv)) > mpmath.mpf(10) ** -40:
                return False
    return True
