"""The precise HGM path: analytic continuation of a Pfaffian system in arbitrary precision.

Along the straight segment L(t) = (1 - t) L0 + t L1 from the base point L0 = diag(a0, b0) to
a target L1 = [[a, c], [c, b]] (it stays in the positive definite cone, which is convex),
the normalised vector G = F / (2 pi sqrt(det L)) of :mod:`hgmntk.lconnection` solves

    D(t) dG/dt = N(t) G,   N(t) / D(t) = (a - a0) Q_a + (b - b0) Q_b + c Q_c  at L(t),

where N is a matrix of polynomials and D a polynomial in t with *exact* rational
coefficients: the entries of Q_v are rational functions of (a, b, c) over Q, and a double
is an exact dyadic rational.  At a regular point t0 the Taylor coefficients g_k of
G(t0 + h u) obey the recurrence (D_j, N_j the coefficients of D(t0 + h u), h N(t0 + h u))

    D_0 (k + 1) g_{k+1} = sum_j N_j g_{k-j} - sum_{j>=1} D_j (k + 1 - j) g_{k+1-j},

and the series converges for |h| < R, the distance from t0 to the nearest complex root of
D.  Each step takes h = R / 2 (about one bit per term), and the steps shrink geometrically
as the path approaches the singular locus det L = 0 just beyond a target near rho = +-1.

The arithmetic is arb (python-flint) at a working precision of a few hundred bits, with the
radii dropped after every coefficient (interval radii of such recurrences overestimate
wildly).  Every value is computed at two precisions; their difference is the error
estimate, and the precision doubles until it is below the tolerance.  This is slower than
the float64 paths of :mod:`hgmntk.hgm` (milliseconds to a second per target) but immune to
the two things that defeat them: cancellation where the wanted value is tiny compared with
the other solutions of the system (rho -> -1 for u^k Y(u), large variances for sin and cos),
and the stiffness near det L = 0, where float64 step sizes collapse.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction

import flint
import numpy as np

from .errors import IntegrationError
from .system import PfaffianSystem, parse_number

_CTX = flint.fmpq_mpoly_ctx.get(("a", "b", "c"), "lex")
_MAX_STEPS = 5000
#: Precision (bits) at which values and their differences are handled between runs.
_FULL_WIDTH = 2048


def _fmpq(x: Fraction | float) -> flint.fmpq:
    q = Fraction(x)
    return flint.fmpq(q.numerator, q.denominator)


def _to_mpoly(poly) -> flint.fmpq_mpoly:
    return _CTX.from_dict({m: _fmpq(c) for m, c in poly.terms.items()})


_ZCTX = flint.fmpz_mpoly_ctx.get(("a", "b", "c"), "lex")


def _homogeneous_parts(poly: flint.fmpq_mpoly) -> list[tuple[flint.fmpz_mpoly, int] | None]:
    """The homogeneous components H_n of ``poly`` by total degree n, each as an integer
    polynomial and its denominator, H_n = Z_n / q_n (None for a zero component)."""
    parts: dict[int, dict] = {}
    for mono, coef in poly.to_dict().items():
        parts.setdefault(sum(mono), {})[mono] = coef
    out: list[tuple[flint.fmpz_mpoly, int] | None] = []
    for n in range(max(parts, default=-1) + 1):
        terms = parts.get(n)
        if not terms:
            out.append(None)
            continue
        q = 1
        for c in terms.values():
            q = math.lcm(q, int(c.q))
        out.append((_ZCTX.from_dict({m: int(c * q) for m, c in terms.items()}), q))
    return out


def _along_line(parts: list, direction: tuple[flint.fmpz, ...], scale: int) -> flint.fmpq_poly:
    """P(start + t d) as a polynomial in t, from the homogeneous components H_n of
    P(start + w): the coefficient of t^n is H_n(d) = Z_n(D) / (q_n Q^n) for d = D / Q
    (D integers; integer evaluation is several times faster than rational)."""
    coeffs = []
    power = 1
    for part in parts:
        coeffs.append(0 if part is None else flint.fmpq(part[0](*direction), part[1] * power))
        power *= scale
    return flint.fmpq_poly(coeffs)


@dataclass
class ExactConnection:
    """Q_a, Q_b, Q_c over one common denominator const * prod_k f_k^e_k, as flint polynomials,
    shifted to the base point and split into homogeneous parts.

    With w = (alpha, beta, gamma) and L = (a0 + alpha, b0 + beta, gamma), the numerator of
    the connection along the segment from diag(a0, b0) in direction d = (da, db, dc) is
    N(t) = da N_a + db N_b + dc N_c = K(t d) / t for K(w) = alpha N_a + beta N_b +
    gamma N_c (at the shifted point): the coefficient of t^n is the homogeneous part of
    degree n + 1 of K, evaluated at d.  ``combined[i][j]`` holds those parts (None for a
    zero entry), ``factor_parts[k]`` those of the shifted denominator factors.
    """

    rank: int
    factor_parts: list
    powers: dict[int, int]
    combined: list
    a0: Fraction
    b0: Fraction
    initial: tuple[str, ...]
    base_point: tuple[str, ...]
    #: the denominator factors and Q_c's numerators over the common denominator, unshifted
    #: (for paths along c at fixed variances, :meth:`along_c`)
    factors: list
    c_numerators: list
    #: bits that settled paths needed beyond their own estimates (see :func:`_settle`)
    shortfall: list = field(default_factory=list)

    @classmethod
    def from_system(cls, system: PfaffianSystem) -> ExactConnection:
        from .lconnection import covariance_connection

        factors, matrices = covariance_connection(system)
        fl = [_to_mpoly(f) for f in factors]
        powers: dict[int, int] = {}
        for m in matrices:
            for k, e in m.factor_powers:
                powers[k] = max(powers.get(k, 0), e)
        x11, x12, x22 = (Fraction(str(parse_number(v))) for v in system.base_point)
        if x12 != 0 or x11 >= 0 or x22 >= 0:
            raise IntegrationError("the base point must have x12 = 0 and x11, x22 < 0")
        a0, b0 = -1 / (2 * x11), -1 / (2 * x22)
        ga, gb, gc = _CTX.gens()
        shift = (ga + _fmpq(a0), gb + _fmpq(b0), gc)
        # the weights alpha, beta, gamma in unshifted coordinates
        weights = (ga - _fmpq(a0), gb - _fmpq(b0), gc)
        r = system.rank
        combined: list = [[_CTX.from_dict({}) for _ in range(r)] for _ in range(r)]
        c_numerators: list = []
        for weight, m in zip(weights, matrices):
            own = dict(m.factor_powers)
            extra = _CTX.from_dict({(0, 0, 0): 1})
            for k, e in powers.items():
                extra = extra * fl[k] ** (e - own.get(k, 0))
            scale = _fmpq(m.constant)
            numerators = [[_CTX.from_dict({}) for _ in range(r)] for _ in range(r)]
            for i, row in enumerate(m.numerators):
                for j, p in enumerate(row):
                    if not p.is_zero():
                        numerators[i][j] = _to_mpoly(p) * extra / scale
                        combined[i][j] += weight * numerators[i][j]
            c_numerators = numerators  # the last matrix is Q_c
        parts = [
            [None if p.is_zero() else _homogeneous_parts(p.compose(*shift)) for p in row]
            for row in combined
        ]
        return cls(
            r, [_homogeneous_parts(f.compose(*shift)) for f in fl], powers, parts,
            a0, b0, tuple(system.initial_values), tuple(system.base_point), fl,
            [[None if p.is_zero() else p for p in row] for row in c_numerators],
        )

    def along(self, end: tuple[float, float, float]):
        """(N, D, factors): the connection on the segment from the base point diag(a0, b0)
        (where the parts are centred) to ``end``."""
        a, b, c = end
        d = (_fmpq(a) - _fmpq(self.a0), _fmpq(b) - _fmpq(self.b0), _fmpq(c))
        scale = math.lcm(*(int(v.q) for v in d))
        d = tuple(flint.fmpz(int(v * scale)) for v in d)
        num = [
            [
                flint.fmpq_poly([])
                if parts is None
                else flint.fmpq_poly(_along_line(parts, d, scale).coeffs()[1:])
                for parts in row
            ]
            for row in self.combined
        ]
        return _path(num, [(_along_line(self.factor_parts[k], d, scale), e)
                           for k, e in self.powers.items()])

    def along_c(self, a: Fraction, b: Fraction, c_end: Fraction):
        """(N, D, factors) on the segment L(t) = (a, b, t c_end), t in [0, 1], from diag(a, b):
        dG/dt = c_end Q_c(a, b, t c_end) G, N / D = c_end Q_c along it."""
        fixed = {"a": _fmpq(a), "b": _fmpq(b)}
        scale = _fmpq(c_end)

        def in_t(p: flint.fmpq_mpoly) -> flint.fmpq_poly:
            terms = p.subs(fixed).to_dict()
            coeffs = [flint.fmpq(0)] * (max((m[2] for m in terms), default=-1) + 1)
            for mono, coef in terms.items():
                coeffs[mono[2]] = coef * scale ** mono[2]
            return flint.fmpq_poly(coeffs)

        num = [
            [flint.fmpq_poly([]) if p is None else in_t(p) * scale for p in row]
            for row in self.c_numerators
        ]
        return _path(num, [(in_t(self.factors[k]), e) for k, e in self.powers.items()])


def _path(num: list, powers: list) -> tuple:
    """(N, D, factors) of a path from the numerators N and the denominator's factors with
    their powers, D = prod f^e: the common factor of D and every entry of N divided out (on
    a line the common denominator often shares one with all numerators: elu's E[s s] loses
    degree 5 of 18), ``factors`` the non-constant f that still divide D (their roots bound
    the Taylor steps)."""
    den = flint.fmpq_poly([1])
    for f, e in powers:
        den = den * f**e
    factors = [f for f, _ in powers if f.degree() > 0]
    common = den
    for row in num:
        for p in row:
            if p.degree() >= 0:
                common = common.gcd(p)
    if common.degree() <= 0:
        return num, den, factors
    den = den // common
    num = [[p // common for p in row] for row in num]
    return num, den, [f for f in factors if f.gcd(den).degree() > 0]


_CACHE: dict[int, tuple[PfaffianSystem, ExactConnection]] = {}


def exact_connection(system: PfaffianSystem) -> ExactConnection:
    """The cached :class:`ExactConnection` of a system."""
    entry = _CACHE.get(id(system))
    if entry is None or entry[0] is not system:
        entry = (system, ExactConnection.from_system(system))
        _CACHE[id(system)] = entry
    return entry[1]


def _normalised(base_point, values) -> flint.arb_mat:
    """G = F sqrt(x11 x22) / pi at a base point (x11, 0, x22) from F (decimal strings)."""
    x11, x22 = flint.arb(base_point[0]), flint.arb(base_point[2])
    scale = (x11 * x22).sqrt() / flint.arb.pi()
    return flint.arb_mat(len(values), 1, [flint.arb(v) * scale for v in values]).mid()


_STARTS: dict[tuple, tuple[str, ...]] = {}


def base_vector(activation, key: str, digits: int) -> flint.arb_mat:
    """G at the system's base point from one-dimensional moments, to ``digits`` digits.

    At the base point x12 = 0 the integrand of Ehat factorises,
    d11^i d12^j d22^k Ehat = 2^j M1_(2i+j)(x11) M2_(2k+j)(x22) with
    M_n(y) = int u^n s(u) e^(y u^2) du (:func:`hgmntk.cas_bridge.moments.initial_values`);
    the stored initial values carry 40 digits, targets that amplify their rounding beyond
    that need more.
    """
    import sympy

    from .cas_bridge.moments import initial_values

    system = activation.duals[key]
    cache_key = (activation.name, activation.expression, key, digits)
    if cache_key not in _STARTS:
        u = sympy.Symbol("u", real=True)
        sides = {"s": activation.expression, "ds": activation.derivative}
        s1, s2 = (sympy.sympify(sides[side], locals={"u": u}) for side in system.pair)
        point = tuple(sympy.Rational(str(parse_number(v))) for v in system.base_point)
        decimals, _ = initial_values(s1, s2, system.standard_monomials, point, digits)
        _STARTS[cache_key] = tuple(decimals)
    return _normalised(system.base_point, _STARTS[cache_key])


#: Seconds the precise path may spend settling one target (or one march along c, which
#: serves a group of targets): a bound on work, so that a target it cannot reach ends in
#: an IntegrationError instead of a hang.  The built-in activations' reference targets
#: settle within 8 s each here; elu at a = b = 500 ran 210 s before failing.
PRECISE_TIME_LIMIT = 30.0
_DEADLINE: ContextVar[float | None] = ContextVar("hgmntk_precise_deadline", default=None)


class _OutOfTime(Exception):
    """Raised inside the Taylor marches when the settling's deadline has passed."""


def _check_deadline() -> None:
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline:
        raise _OutOfTime


def _distance_to_roots(factors: list, t0: flint.fmpq) -> float:
    """The distance from t0 to the nearest complex root of the polynomials ``factors``,
    from the roots of f(t0 + s) (exact shift, certified roots): accurate even where the
    roots themselves are 1 + 1e-17 (a target at det L / ab ~ 1e-17)."""
    shift = flint.fmpq_poly([t0, 1])
    return min(
        (abs(complex(z)) for f in factors for z, _ in f(shift).complex_roots()),
        default=math.inf,
    )


def _continue(conn: ExactConnection, path, g: flint.arb_mat, prec: int) -> flint.arb_mat:
    """G at the end of ``path`` (from :meth:`ExactConnection.along`), from G = g at its
    start, at ``prec`` bits."""
    return _march(conn, path, g, prec, [])[0]


def _march(conn: ExactConnection, path, g: flint.arb_mat, prec: int, nodes: list):
    """(G at the end of ``path``, [G[0] at each of ``nodes``]) from G = g at its start, at
    ``prec`` bits; ``nodes`` are increasing path parameters in (0, 1] (fmpq), read off the
    Taylor series of the step that covers them (|u| <= 1, inside its disc of convergence)."""
    num, den, factors = path
    with flint.ctx.workprec(prec):
        r = conn.rank
        d_num = max(p.degree() for row in num for p in row)
        if d_num < 0:
            return g, [g[0, 0]] * len(nodes)
        values: list = []
        tol = flint.arb(2) ** (20 - prec)
        # N and D in arb at the working precision: N(t0 + h u) and D(t0 + h u) are then
        # compositions with the linear polynomial t0 + h u (scaled coefficients included)
        den_arb = flint.arb_poly([flint.arb(v) for v in den.coeffs()])
        entries = [
            (i, j, flint.arb_poly([flint.arb(v) for v in num[i][j].coeffs()]))
            for i in range(r)
            for j in range(r)
            if num[i][j].degree() >= 0
        ]
        t0 = flint.fmpq(0)
        for _ in range(_MAX_STEPS):
            if t0 >= 1:
                return g, values
            radius = _distance_to_roots(factors, t0)
            if not radius > 1e-300:
                raise IntegrationError("the continuation path runs into a singular point")
            h = 1 - t0 if radius / 2 >= float(1 - t0) else _fmpq(radius / 2)
            hs = flint.arb(h)
            shift = flint.arb_poly([flint.arb(t0), hs])
            dk = [v.mid() for v in den_arb(shift).coeffs()]
            nk = [flint.arb_mat(r, r) for _ in range(d_num + 1)]
            for i, j, p in entries:
                for k, v in enumerate(p(shift).coeffs()):
                    nk[k][i, j] = (v * hs).mid()
            _check_deadline()
            inside = [t for t in nodes[len(values):] if t <= t0 + h]
            g, partial = _taylor_step(g, nk, dk, tol, prec, [flint.arb((t - t0) / h)
                                                             for t in inside])
            values.extend(partial)
            t0 = t0 + h
        raise IntegrationError("the continuation needs too many steps")


def _taylor_step(g, nk, dk, tol, prec: int, points=()) -> tuple[flint.arb_mat, list]:
    """(G(1), [G[0](u) for u in ``points``]): sums of g_k and of g_k[0] u^k for
    D(u) G'(u) = N(u) G(u), G(0) = g (see the module docstring), 0 < u <= 1."""
    r = g.nrows()
    coeffs = [g]
    total = g
    powers = list(points)
    partial = [g[0, 0] for _ in powers]
    scale = max(abs(g[i, 0]).mid() for i in range(r))
    d_num, d_den = len(nk) - 1, len(dk) - 1
    inv_d0 = 1 / dk[0]
    small = 0
    # the terms decay like 2^-k (h = R/2); past 2 prec terms only rounding noise is left,
    # which the comparison of two precisions in :func:`continue_to` exposes
    for k in range(2 * prec + 64):
        s = flint.arb_mat(r, 1)
        for j in range(min(k, d_num) + 1):
            s += nk[j] * coeffs[k - j]
        for j in range(1, min(k, d_den) + 1):  # (j = k + 1 has the factor 0)
            s -= coeffs[k + 1 - j] * (dk[j] * (k + 1 - j))
        nxt = (s * (inv_d0 / (k + 1))).mid()
        coeffs.append(nxt)
        total += nxt
        for i, u in enumerate(points):
            partial[i] += nxt[0, 0] * powers[i]
            powers[i] *= u
        size = max(abs(nxt[i, 0]).mid() for i in range(r))
        if k % 256 == 255:
            _check_deadline()
        if size <= tol * scale:
            small += 1
            if small == 3:
                break
        else:
            small = 0
        if size > scale:
            scale = size
    return total.mid(), [v.mid() for v in partial]


def _to_float(x: flint.arb, dtype) -> np.floating:
    return dtype.type(x.mid().str(30, radius=False)) if dtype == np.longdouble else dtype.type(
        float(x.mid())
    )


def _start_precision(conn: ExactConnection, path) -> int:
    """A working precision (bits) for a path: the entries of N / D reach D_0^-1 ~ dist^-p
    near the end, where dist is the distance of t = 1 to the nearest singular point and p
    the largest pole order, and the result is their cancellation; 30 digits on top."""
    _, _, factors = path
    p = max(conn.powers.values(), default=1)
    dist = min(_distance_to_roots(factors, flint.fmpq(1)), 1.0)
    digits = 30 + p * max(0.0, -np.log10(max(dist, 1e-300)))
    return int(64 * np.ceil(digits * 3.33 / 64))


def _perturbed(g: flint.arb_mat, digits: int) -> flint.arb_mat:
    """g with component i scaled by 1 + (-1)^i 10^-digits (a probe of the sensitivity)."""
    eps = flint.arb(10) ** (-digits)
    return flint.arb_mat(
        g.nrows(), 1, [g[i, 0] * (1 + eps if i % 2 == 0 else 1 - eps) for i in range(g.nrows())]
    )


def exact_number(x) -> Fraction:
    """The exact rational value of a float or numpy (long) double."""
    if isinstance(x, np.floating):
        return Fraction(*x.as_integer_ratio())
    return Fraction(x)


def consistent_c(a, b, c, det) -> Fraction:
    """sign(c) sqrt(ab - det) to ~190 bits: the c whose determinant with a and b is ``det``.

    Near rho = +-1 a determinant det = ab sin^2(angle) given with c = +-sqrt(ab) cos(angle)
    (Price's nodes) is accurate where the rounded c is not: 1e-16 in c is 1e-16 c^2/det in
    det.  The target is then defined by (a, b, det), and its c is recomputed from them
    (where |rho| > 1/sqrt(2); elsewhere c itself is returned).
    """
    if 2 * exact_number(c) ** 2 <= exact_number(a) * exact_number(b):
        return exact_number(c)  # away from rho = +-1 the rounded c is as good
    with flint.ctx.workprec(192):
        ab = flint.arb(_fmpq(exact_number(a))) * flint.arb(_fmpq(exact_number(b)))
        root = (ab - flint.arb(_fmpq(exact_number(det)))).sqrt().mid()
        man, exp = root.man_exp()
        value = Fraction(int(man)) * Fraction(2) ** int(exp)
    return value if c >= 0 else -value


def significant_digits(text) -> int:
    """Significant digits of a decimal string (0 for an exact "0")."""
    mantissa = str(text).strip().lstrip("+-").lower().split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0"))


def stored_digits(values) -> int:
    """The digits a system's stored initial values carry: the fewest significant digits
    among those written with at least 20 (shorter ones, "2" or "0.25", are exact); 40
    when every value is short."""
    counts = [d for d in map(significant_digits, values) if d >= 20]
    return min(counts, default=40)


def continue_to(
    activation, key: str, a, b, c, *, rtol: float = 1e-14, det=None
) -> tuple[flint.arb, float]:
    """E = G[0] at (a, b, c) (det > 0) and an estimate of its absolute error.

    Along the straight segment from the system's base point, starting from its stored
    initial values (D digits, :func:`stored_digits`; 160 for the built-in plugins), the
    value is computed twice: at a working precision chosen from the path's singular points,
    and at 64 bits more with the initial vector perturbed by 10^(3 - D) (relative).  It is
    accepted when the two agree to ``rtol / 100``.  Otherwise a third computation (the
    unperturbed start at the higher precision) tells the two causes apart:

    * the working precision was too low (the first two differ, the last two agree): it is
      raised by the bits the observed rounding error asks for (by half when that value
      is no value at all: near det L = 0 a rounding error can grow without bound);
    * the path amplifies the start vector's error beyond what its digits allow (the last
      two differ): the initial values are recomputed from one-dimensional moments
      (:func:`base_vector`) to the digits that amplification needs.

    Then the pair is repeated.  The error estimate is the difference of the accepted pair,
    which bounds the start vector's own error a thousand times over.
    """
    with flint.ctx.workprec(_FULL_WIDTH):
        return _continue_to(activation, key, a, b, c, rtol, det)


def _needed_digits(diff: flint.arb, value: flint.arb, probe_digits: int, rtol: float) -> int:
    """Digits of the start vector for which a perturbation of 10^(3 - digits) moves the
    value by less than ``rtol / 100`` of it, when one of 10^(-probe_digits) moved it by
    ``diff`` (the amplification is linear); rounded up to a multiple of 16."""
    d, v = float(diff.mid()), abs(float(value.mid()))
    if not (d > 0 and v > 0 and math.isfinite(d) and math.isfinite(v)):
        return 16 * math.ceil(2 * probe_digits / 16)
    need = 3 + math.log10(d) + probe_digits - math.log10(v * rtol / 100) + 2
    return 16 * math.ceil(max(need, probe_digits + 1) / 16)


def _needed_bits(diff: flint.arb, value: flint.arb, prec: int, rtol: float) -> int:
    """A working precision at which the rounding error ``diff`` observed at ``prec`` bits
    falls below ``rtol / 100`` of ``value`` (with 32 bits to spare), a multiple of 64; half
    as much again when ``diff`` is as large as the value itself (no estimate then)."""
    d, v = float(diff.mid()), abs(float(value.mid()))
    if not (v > 0 and math.isfinite(d) and math.isfinite(v)) or d >= v:
        return 64 * math.ceil(1.5 * prec / 64)
    bits = prec + math.log2(max(d, 1e-300) / (v * rtol / 100)) + 32
    return 64 * math.ceil(max(bits, prec + 64) / 64)


def _targets(a, b, cs, dets) -> tuple[Fraction, Fraction, list[Fraction]]:
    """Exact (a, b, [c_i]) of positive definite targets: c_i itself, or from det_i
    (:func:`consistent_c`) where the determinants are given."""
    a, b = exact_number(a), exact_number(b)
    exact = [exact_number(c) if det is None else consistent_c(a, b, c, det)
             for c, det in zip(cs, [None] * len(cs) if dets is None else dets, strict=True)]
    if not (a > 0 and b > 0 and all(a * b > c**2 for c in exact)):
        raise IntegrationError("the precise path needs positive definite covariances")
    return a, b, exact


def _continue_to(activation, key, a, b, c, rtol, det):
    a, b, (c,) = _targets(a, b, [c], None if det is None else [det])
    conn = exact_connection(activation.duals[key])
    path = conn.along((a, b, c))
    values, errors = _settle(
        activation, key, conn, lambda g, bits: [_continue(conn, path, g, bits)[0, 0]],
        _start_precision(conn, path), rtol, f"(a, b, c) = ({a!r}, {b!r}, {c!r})",
    )
    return values[0], errors[0]


def _settle(activation, key, conn: ExactConnection, run, work: int, rtol: float, where: str):
    """Values ``run(g0, bits)`` (a list of arb) settled as :func:`continue_to` describes,
    for every value at once; returns (values, error estimates).

    ``work`` is the path's own estimate of the working precision; the bits that earlier
    paths of the same system needed beyond their estimates (the median) are added to it,
    so that a run of similar targets does not fail its first round every time.  At most
    8 rounds and PRECISE_TIME_LIMIT seconds."""
    token = _DEADLINE.set(time.monotonic() + PRECISE_TIME_LIMIT)
    try:
        return _settle_rounds(activation, key, conn, run, work, rtol, where)
    except _OutOfTime:
        raise IntegrationError(
            f"the precise continuation to {where} did not settle within "
            f"{PRECISE_TIME_LIMIT:g} s: the target is too far from the base point for this "
            "system (large variances, or rho very near +-1); rescale the inputs or the "
            "weight variances so that the variances stay nearer 1"
        ) from None
    finally:
        _DEADLINE.reset(token)


def _settle_rounds(activation, key, conn: ExactConnection, run, work: int, rtol: float,
                   where: str):
    """The rounds of :func:`_settle`."""
    digits = stored_digits(conn.initial)
    g0 = _normalised(conn.base_point, conn.initial)
    start = work
    work += _median(conn.shortfall)
    plain: dict[int, list] = {}  # unperturbed runs of the current start vector, by bits

    def unperturbed(bits: int) -> list:
        if bits not in plain:
            plain[bits] = run(g0, bits)
        return plain[bits]

    for _ in range(8):
        v1 = unperturbed(work)
        v2 = run(_perturbed(g0, digits - 3), work + 64)
        goals = [abs(y) * (rtol / 100) for y in v2]
        if all(abs(x - y) <= goal for x, y, goal in zip(v1, v2, goals)):
            conn.shortfall.append(work - start)
            return v2, [float(abs(x - y).mid()) for x, y in zip(v1, v2)]
        v3 = unperturbed(work + 64)
        rounding = [(abs(x - z), z) for x, z, goal in zip(v1, v3, goals) if abs(x - z) > goal / 2]
        if rounding:
            work = max(_needed_bits(diff, z, work, rtol) for diff, z in rounding)
            continue
        # the start vector's digits are what limits: recompute it to the digits needed
        digits = max(
            _needed_digits(abs(y - z), z, digits - 3, rtol)
            for y, z, goal in zip(v2, v3, goals)
            if abs(y - z) > goal / 2
        )
        work = max(work, 64 * math.ceil((digits * 3.33 + 40) / 64))
        with flint.ctx.workprec(work):
            g0 = base_vector(activation, key, digits)
        plain.clear()
    raise IntegrationError(
        f"the precise continuation to {where} did not settle at {work} bits with initial "
        f"values to {digits} digits"
    )


def _median(values: list[int]) -> int:
    """The median of the last 32 ``values`` rounded to a multiple of 64 (0 for none)."""
    recent = sorted(values[-32:])
    return 64 * round(recent[len(recent) // 2] / 64) if recent else 0


def continue_along_c(activation, key: str, a, b, cs, *, rtol: float = 1e-14, dets=None):
    """E at (a, b, c_i) for several c_i of one sign sharing the variances (a, b) (det > 0),
    and error estimates: one continuation from the base point to diag(a, b), then one march
    along c (L(t) = (a, b, t c_max)) that reads every target off the Taylor series of the
    step covering it.  Price's nodes share (a, b), so one march serves all of a target's
    nodes.  Settled like :func:`continue_to`."""
    with flint.ctx.workprec(_FULL_WIDTH):
        a, b, exact = _targets(a, b, cs, dets)
        end = max(exact, key=abs)
        if end == 0 or any(c * end <= 0 for c in exact):
            raise IntegrationError("continue_along_c needs nonzero c of one sign")
        times = sorted({c / end for c in exact})
        nodes = [_fmpq(t) for t in times]
        conn = exact_connection(activation.duals[key])
        first = conn.along((a, b, Fraction(0)))
        second = conn.along_c(a, b, end)

        def run(g, bits):
            return _march(conn, second, _continue(conn, first, g, bits), bits, nodes)[1]

        work = max(_start_precision(conn, first), _start_precision(conn, second))
        values, errors = _settle(activation, key, conn, run, work, rtol,
                                 f"(a, b) = ({a!r}, {b!r}) along c up to {end!r}")
        at = {t: i for i, t in enumerate(times)}
        return [values[at[c / end]] for c in exact], [errors[at[c / end]] for c in exact]


#: The precise path refuses targets whose diagonal stiffness
#: (:func:`hgmntk.hgm.diagonal_stiffness`) exceeds this: its Taylor series need about that
#: many terms, and the rounding they amplify asks for thousands of bits (resin at
#: a = b = 1e3, stiffness 900: 2.5 s; at 1e4, stiffness 1e4: 50 s, then no settled value).
PRECISE_MAX_STIFFNESS = 3000.0


def _refuse_stiff(system, cov, groups: dict) -> None:
    """Raise :func:`hgmntk.hgm.too_stiff`'s error for the first target of ``groups`` (keyed
    by (a, b, sign c)) beyond PRECISE_MAX_STIFFNESS; cheap (one batch of eigenvalues)."""
    from .hgm import diagonal_stiffness, too_stiff

    keys = list(groups)
    a = np.array([float(k[0]) for k in keys])
    b = np.array([float(k[1]) for k in keys])
    stiff = np.flatnonzero(~(diagonal_stiffness(system, a, b) <= PRECISE_MAX_STIFFNESS))
    if stiff.size:
        i = groups[keys[int(stiff[0])]][0]
        raise too_stiff(system, cov.a[i], cov.b[i], cov.c[i])


def precise_values(activation, key: str, cov, *, rtol: float, dtype=float):
    """The precise path over a batch of :class:`~hgmntk.covariance.Covariances` (their
    accurate determinants define the targets): targets sharing (a, b) and the sign of c
    on one march along c (:func:`continue_along_c`), the others by :func:`continue_to`;
    returns (values, error estimates)."""
    dtype = np.dtype(dtype)
    n = len(cov)
    values = np.empty(n, dtype=dtype)
    errors = np.empty(n)
    groups: dict[tuple, list[int]] = {}
    for i in range(n):
        groups.setdefault((cov.a[i], cov.b[i], np.sign(cov.c[i])), []).append(i)
    _refuse_stiff(activation.duals[key], cov, groups)
    for (a, b, sign), idx in groups.items():
        if len(idx) > 1 and sign != 0:
            vals, errs = continue_along_c(activation, key, a, b, [cov.c[i] for i in idx],
                                          rtol=rtol, dets=[cov.det[i] for i in idx])
        else:
            pairs = [continue_to(activation, key, a, b, cov.c[i], rtol=rtol, det=cov.det[i])
                     for i in idx]
            vals, errs = [p[0] for p in pairs], [p[1] for p in pairs]
        for i, val, err in zip(idx, vals, errs):
            values[i] = _to_float(val, dtype)
            errors[i] = err
    return values, errors
