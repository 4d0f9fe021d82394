"""One-dimensional Gaussian moments of activations and the initial values of Ehat.

For an activation s (a distribution, split at 0 as in
:class:`~hgmntk.cas_bridge.annihilators.Pieces`) and y < 0,

    M_n(y) = int u^n s(u) exp(y u^2) du
           = int_0^inf u^n f_plus(u) e^(y u^2) du + int_-inf^0 u^n f_minus(u) e^(y u^2) du
             + sum_m a_m (-1)^m (d/du)^m [u^n e^(y u^2)] at u = 0.

Pieces of the form c u^k exp(alpha u^2) are integrated exactly,
int_0^inf u^k e^(-beta u^2) du = Gamma((k+1)/2) / (2 beta^((k+1)/2)); everything else by
mpmath tanh-sinh quadrature at raised precision, checked against a second evaluation at
higher precision.  At a base point with x12 = 0 the integrand of Ehat factorises, and

    d11^i d12^j d22^k Ehat = 2^j M1_(2i+j)(x11) M2_(2k+j)(x22).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath
import sympy

from ..errors import DerivationError
from .annihilators import Pieces, U, _as_expr, pieces

_Y = sympy.Symbol("y", negative=True)


def _gauss_terms(f: sympy.Expr) -> list[tuple[sympy.Expr, int, sympy.Expr]] | None:
    """f as a list of (c, k, alpha) with f = sum c u^k exp(alpha u^2), or None."""
    out = []
    for term in sympy.Add.make_args(sympy.expand(sympy.powsimp(sympy.expand(f)))):
        if term == 0:
            continue
        c, k, alpha = sympy.S.One, 0, sympy.S.Zero
        for factor in sympy.Mul.make_args(term):
            if not factor.has(U):
                c *= factor
            elif factor == U:
                k += 1
            elif factor.is_Pow and factor.base == U and factor.exp.is_Integer and factor.exp > 0:
                k += int(factor.exp)
            elif isinstance(factor, sympy.exp):
                arg = sympy.expand(factor.args[0])
                a2 = sympy.simplify(arg / U**2)
                if a2.has(U):
                    return None
                alpha += a2
            else:
                return None
        out.append((c, k, alpha))
    return out


def _half_line_exact(terms, n: int, y, side: int) -> sympy.Expr:
    """int over u > 0 (side 1) or u < 0 (side -1) of u^n sum c u^k e^((alpha + y) u^2)."""
    total = sympy.S.Zero
    for c, k, alpha in terms:
        beta = -(alpha + y)
        p = n + k
        val = sympy.gamma(sympy.Rational(p + 1, 2)) / (2 * beta ** sympy.Rational(p + 1, 2))
        total += c * (side**p) * val
    return total


def _delta_part(p: Pieces, n: int, y) -> sympy.Expr:
    total = sympy.S.Zero
    for m, a in p.deltas.items():
        total += a * (-1) ** m * sympy.diff(U**n * sympy.exp(y * U**2), U, m).subs(U, 0)
    return total


def moment_exact(expr: sympy.Expr, n: int, y) -> sympy.Expr | None:
    """M_n(y) in closed form when every piece is a sum of c u^k exp(alpha u^2), else None.

    ``y`` may be a SymPy number (negative) or a symbol; the result is simplified.
    """
    p = pieces(_as_expr(expr))
    tp, tm = _gauss_terms(p.plus), _gauss_terms(p.minus)
    if tp is None or tm is None:
        return None
    y = sympy.sympify(y)
    out = _half_line_exact(tp, n, y, 1) + _half_line_exact(tm, n, y, -1) + _delta_part(p, n, y)
    return sympy.simplify(out)


def _mp_function(f: sympy.Expr):
    return sympy.lambdify(U, f, modules="mpmath")


class QuadratureCache:
    """Integrand values at tanh-sinh nodes, shared by the moments M_n of one piece.

    For every n the quadrature of u^n f(u) e^(y u^2) over a half line uses the same nodes
    (they depend on y, the working precision and the degree only), so f(side t) and
    e^(y t^2) are computed once per node and precision and reused; the integrand is
    evaluated with exactly the same operations as without the cache, hence bit for bit the
    same values.
    """

    def __init__(self) -> None:
        self._functions: dict[sympy.Expr, object] = {}
        self._tables: dict[tuple[object, ...], dict[tuple[int, tuple], tuple]] = {}

    def function(self, f: sympy.Expr):
        """``f`` lambdified for mpmath (once per expression)."""
        if f not in self._functions:
            self._functions[f] = _mp_function(f)
        return self._functions[f]

    def table(self, f: sympy.Expr, side: int, y: mpmath.mpf) -> dict:
        """The node table of (f, side, y): (precision, raw t) -> (f(side t), exp(y t^2))."""
        return self._tables.setdefault((f, side, y), {})


def _quad_half(
    f: sympy.Expr, n: int, y: mpmath.mpf, side: int, cache: QuadratureCache | None = None
) -> mpmath.mpf:
    if sympy.expand(f) == 0:
        return mpmath.mpf(0)
    cache = QuadratureCache() if cache is None else cache
    fn = cache.function(f)
    table = cache.table(f, side, y)
    scale = 1 / mpmath.sqrt(-y)
    edges = [0, scale, 3 * scale, 6 * scale, mpmath.inf]

    def integrand(t):
        x = side * t
        key = (mpmath.mp.prec, t._mpf_)
        got = table.get(key)
        if got is None:
            got = table[key] = (fn(x), mpmath.exp(y * t * t))
        return x**n * got[0] * got[1]

    return mpmath.quad(integrand, edges)


def moment(expr: sympy.Expr, n: int, y, dps: int = 40) -> mpmath.mpf:
    """M_n(y) = int u^n s(u) exp(y u^2) du to ``dps`` digits (exact when possible)."""
    exact = moment_exact(expr, n, sympy.nsimplify(y) if not isinstance(y, sympy.Basic) else y)
    if exact is not None:
        with mpmath.workdps(dps + 10):
            return mpmath.mpf(sympy.N(exact, dps + 10))
    return _moment_numeric(pieces(_as_expr(expr)), n, y, dps)


def _moment_numeric(
    p: Pieces, n: int, y, dps: int, cache: QuadratureCache | None = None
) -> mpmath.mpf:
    """M_n(y) by quadrature at dps + 15 and dps + 30 digits; the two must agree to ``dps``.

    ``cache`` shares integrand values between calls for different n (same pieces and y).
    """
    cache = QuadratureCache() if cache is None else cache
    yv = sympy.nsimplify(y) if not isinstance(y, sympy.Basic) else y
    if not (yv.is_real and yv < 0):
        raise DerivationError(f"moments need y < 0, got {y}")
    delta = _delta_part(p, n, yv)
    values = []
    for extra in (15, 30):
        with mpmath.workdps(dps + extra):
            ym = mpmath.mpf(sympy.N(yv, dps + extra))
            v = _quad_half(p.plus, n, ym, 1, cache) + _quad_half(p.minus, n, ym, -1, cache)
            v += mpmath.mpf(sympy.N(delta, dps + extra))
            values.append(v)
    with mpmath.workdps(dps + 15):
        a, b = values
        scale = max(abs(b), mpmath.mpf(10) ** (-dps))
        if abs(a - b) > scale * mpmath.mpf(10) ** (-dps):
            raise DerivationError(
                f"moment M_{n}({y}) did not converge to {dps} digits by quadrature "
                f"({mpmath.nstr(a, 20)} vs {mpmath.nstr(b, 20)})"
            )
        return +b


def _to_sympy_number(v) -> sympy.Expr:
    if isinstance(v, sympy.Basic):
        return v
    if isinstance(v, str):
        return sympy.sympify(v, rational=True)
    return sympy.nsimplify(v, rational=True)


def initial_values(
    s1_expr: sympy.Expr,
    s2_expr: sympy.Expr,
    standard_monomials: Sequence[Sequence[int]],
    base_point: Sequence[object] = (-1, 0, -1),
    dps: int = 40,
) -> tuple[list[str], list[str] | None]:
    """F(base_point) for F = (m Ehat for m in standard_monomials), decimal and exact.

    ``base_point`` = (x11, 0, x22) with x11, x22 < 0; monomial (i, j, k) = d11^i d12^j d22^k
    gives 2^j M1_(2i+j)(x11) M2_(2k+j)(x22).  Returns (decimal strings with ``dps``
    significant digits, exact SymPy strings or None when some moment has no closed form).
    """
    x11, x12, x22 = (_to_sympy_number(v) for v in base_point)
    if x12 != 0:
        raise DerivationError("initial values need a base point with x12 = 0")
    if not (x11 < 0 and x22 < 0):
        raise DerivationError("the base point must be negative definite (x11, x22 < 0)")
    s1, s2 = _as_expr(s1_expr), _as_expr(s2_expr)
    # keyed by (expression, y, n): for s1 = s2 and x11 = x22 both sides share each moment
    cache: dict[tuple[sympy.Expr, sympy.Expr, int], tuple[mpmath.mpf, sympy.Expr | None]] = {}
    quadrature = QuadratureCache()
    split = {s1: pieces(s1), s2: pieces(s2)}

    def mom(side: int, n: int):
        expr, y = (s1, x11) if side == 1 else (s2, x22)
        if (expr, y, n) not in cache:
            ex = moment_exact(expr, n, y)
            with mpmath.workdps(dps + 15):
                val = (mpmath.mpf(sympy.N(ex, dps + 15)) if ex is not None
                       else _moment_numeric(split[expr], n, y, dps, quadrature))
            cache[(expr, y, n)] = (val, ex)
        return cache[(expr, y, n)]

    decimals, exacts = [], []
    for mono in standard_monomials:
        i, j, k = (int(e) for e in mono)
        (v1, e1), (v2, e2) = mom(1, 2 * i + j), mom(2, 2 * k + j)
        with mpmath.workdps(dps + 15):
            val = 2**j * v1 * v2
            decimals.append(mpmath.nstr(val, dps, strip_zeros=False, min_fixed=-math.inf,
                                        max_fixed=math.inf) if val != 0 else "0")
        exacts.append(None if e1 is None or e2 is None else sympy.simplify(2**j * e1 * e2))
    exact_out = None if any(e is None for e in exacts) else [sympy.sstr(e) for e in exacts]
    return decimals, exact_out


def collinear_constants(s1: sympy.Expr, s2: sympy.Expr, dps: int = 40) -> tuple[str, str]:
    """(E[s1(U) s2(U)], E[s1(U) s2(-U)]) for U ~ N(0, 1), as decimal strings or "inf".

    Products of Dirac deltas at the same point are infinite ("inf"); a delta against a
    function continuous at 0 gives its value there.
    """
    p1 = pieces(_as_expr(s1))
    p2 = pieces(_as_expr(s2))
    out = []
    for q in (p2, p2.reflect()):
        out.append(_gauss_pair(p1, q, dps))
    return out[0], out[1]


def _gauss_pair(p1: Pieces, p2: Pieces, dps: int) -> str:
    if p1.deltas and p2.deltas:
        return "inf"
    if p2.deltas:
        p1, p2 = p2, p1
    if p1.deltas:
        if not p2.smooth:
            raise DerivationError("a Dirac delta against a function with a jump at 0")
        prod = p1.scale_smooth(p2.plus * sympy.exp(-U**2 / 2) / sympy.sqrt(2 * sympy.pi))
        # phi delta^(m) was reduced to constants times delta^(j); int delta^(j) = [j == 0]
        total = prod.deltas.get(0, 0)
        with mpmath.workdps(dps + 10):
            return mpmath.nstr(mpmath.mpf(sympy.N(total, dps + 10)), dps)
    prod = Pieces(sympy.expand(p1.plus * p2.plus), sympy.expand(p1.minus * p2.minus))
    ex = moment_exact(prod.as_expression(), 0, sympy.Rational(-1, 2))
    with mpmath.workdps(dps + 15):
        if ex is not None:
            val = mpmath.mpf(sympy.N(ex / sympy.sqrt(2 * sympy.pi), dps + 15))
        else:
            val = _moment_numeric(prod, 0, sympy.Rational(-1, 2), dps) / mpmath.sqrt(
                2 * mpmath.pi)
        return mpmath.nstr(val, dps) if val != 0 else "0"


def series_values(
    s1_expr: sympy.Expr,
    s2_expr: sympy.Expr,
    standard_monomials: Sequence[Sequence[int]],
    point: Sequence[object],
    dps: int = 30,
    max_terms: int = 400,
) -> list[mpmath.mpf]:
    """F(x) = (m Ehat)(x) at a point with small x12, by the Taylor series in x12.

    (d11^i d12^j d22^k Ehat)(x11, x12, x22)
        = sum_n x12^n / n! * 2^(j+n) M1_(2i+j+n)(x11) M2_(2k+j+n)(x22),

    which converges for x12^2 < x11 x22 (fast when |x12| is small).  Useful to start an ODE
    off the line x12 = 0 when a Pfaffian matrix has an (apparent) pole there.
    """
    x11, x12, x22 = (_to_sympy_number(v) for v in point)
    s1, s2 = _as_expr(s1_expr), _as_expr(s2_expr)
    p1, p2 = pieces(s1), pieces(s2)
    cache: dict[tuple[int, int], mpmath.mpf] = {}
    quadrature = QuadratureCache()

    def mom(side: int, n: int) -> mpmath.mpf:
        if (side, n) not in cache:
            expr, p, y = (s1, p1, x11) if side == 1 else (s2, p2, x22)
            ex = moment_exact(expr, n, y)
            cache[(side, n)] = (mpmath.mpf(sympy.N(ex, dps + 15)) if ex is not None
                                else _moment_numeric(p, n, y, dps, quadrature))
        return cache[(side, n)]

    out = []
    with mpmath.workdps(dps + 15):
        t = mpmath.mpf(sympy.N(x12, dps + 15))
        for mono in standard_monomials:
            i, j, k = (int(e) for e in mono)
            total, small = mpmath.mpf(0), 0
            for n in range(max_terms):
                term = t**n / mpmath.factorial(n) * 2 ** (j + n) * mom(1, 2 * i + j + n) * mom(
                    2, 2 * k + j + n)
                total += term
                if t == 0:
                    break
                small = small + 1 if abs(term) <= abs(total) * mpmath.mpf(10) ** (-dps - 3) \
                    else 0
                if small >= 4:
                    break
            else:
                raise DerivationError(f"x12 series did not converge at {tuple(point)}")
            out.append(+total)
    return out
