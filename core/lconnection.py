"""The Pfaffian system pulled back to covariance coordinates (a, b, c).

With x = -1/2 L^-1, i.e. x11 = -b/(2 det), x12 = c/(2 det), x22 = -a/(2 det),
det = ab - c^2, the normalised vector G = F sqrt(det x)/pi = F / (2 pi sqrt(det)) satisfies

    dG/dv = Q_v(a, b, c) G,   Q_v = sum_i (d x_i / d v) P_i(x(L)) - (1/2) d log(det)/dv,

for v in (a, b, c).  Evaluating the P_i in x and then combining them loses all digits near
det = 0: the terms grow like det^-3 and cancel down to det^-1.  Here the combination is done
exactly, with python-flint polynomials over Q, once per system; every Q_v entry is reduced
to lowest terms and its denominator factored, so that the only large quantity left is a
power of the factor ab - c^2, which the integrator supplies from the accurate determinant.
"""

from __future__ import annotations

from fractions import Fraction

import flint

from .rational import RationalMatrix, SparsePoly

L_VARIABLES = ("a", "b", "c")
_CTX = flint.fmpq_mpoly_ctx.get(L_VARIABLES, "lex")
_A, _B, _C = _CTX.gens()
_DET = _A * _B - _C**2


class _Frac:
    """A rational function num/den of flint polynomials, kept in lowest terms."""

    __slots__ = ("num", "den")

    def __init__(self, num, den=None):
        den = _CTX.from_dict({(0, 0, 0): 1}) if den is None else den
        g = num.gcd(den)
        if g != 1 and not g.is_zero():
            num, den = divmod(num, g)[0], divmod(den, g)[0]
        self.num, self.den = num, den

    def __add__(self, other: _Frac) -> _Frac:
        if self.num.is_zero():
            return other
        if other.num.is_zero():
            return self
        g = self.den.gcd(other.den)
        d1 = divmod(self.den, g)[0]
        d2 = divmod(other.den, g)[0]
        return _Frac(self.num * d2 + other.num * d1, d1 * other.den)

    def __mul__(self, other: _Frac) -> _Frac:
        return _Frac(self.num * other.num, self.den * other.den)


def _poly_in_l(p: SparsePoly):
    """(numerator, degree) with p(x(L)) = numerator / (2 det)^degree."""
    if p.is_zero():
        return _CTX.from_dict({}), 0
    deg = max(sum(m) for m in p.terms)
    two_det = 2 * _DET
    out = _CTX.from_dict({})
    for (i, j, k), coef in p.terms.items():
        term = _CTX.from_dict({(0, 0, 0): flint.fmpq(coef.numerator, coef.denominator)})
        term = term * (-_B) ** i * _C**j * (-_A) ** k * two_det ** (deg - i - j - k)
        out = out + term
    return out, deg


def _entry_in_l(num: SparsePoly, constant: Fraction, powers, factors_l) -> _Frac:
    n, dn = _poly_in_l(num)
    if n.is_zero():
        return _Frac(n)
    den = _CTX.from_dict({(0, 0, 0): flint.fmpq(constant.numerator, constant.denominator)})
    shift = -dn
    for k, e in powers:
        fk, dk = factors_l[k]
        den = den * fk**e
        shift += dk * e
    two_det = 2 * _DET
    if shift >= 0:
        return _Frac(n * two_det**shift, den)
    return _Frac(n, den * two_det ** (-shift))


def _weights():
    one = _CTX.from_dict({(0, 0, 0): 1})
    det2 = _DET**2
    half = flint.fmpq(1, 2)
    # d x_i / d v for v = a, b, c  (rows v, columns x11, x12, x22) and (1/2) d log det / dv
    dx = {
        "a": (_Frac(half * _B**2, det2), _Frac(-half * _C * _B, det2), _Frac(half * _C**2, det2)),
        "b": (_Frac(half * _C**2, det2), _Frac(-half * _C * _A, det2), _Frac(half * _A**2, det2)),
        "c": (_Frac(-_B * _C, det2), _Frac(half * (_A * _B + _C**2), det2), _Frac(-_A * _C, det2)),
    }
    dlog = {"a": _Frac(half * _B, _DET), "b": _Frac(half * _A, _DET), "c": _Frac(-_C, _DET)}
    return dx, dlog, one


def _to_sparse(p) -> SparsePoly:
    return SparsePoly(
        3,
        {tuple(int(e) for e in m): Fraction(int(c.p), int(c.q)) for m, c in p.to_dict().items()},
    )


def covariance_connection(system) -> tuple[tuple[SparsePoly, ...], tuple[RationalMatrix, ...]]:
    """Factors and matrices (Q_a, Q_b, Q_c) of the system in coordinates (a, b, c).

    The factor list contains ab - c^2 (as ``a*b - c**2``) whenever a denominator has it.
    """
    factors_l = [_poly_in_l(f) for f in system.factors]
    r = system.rank
    p_l = []
    for m in system.matrices:
        p_l.append(
            [
                [_entry_in_l(p, m.constant, m.factor_powers, factors_l) for p in row]
                for row in m.numerators
            ]
        )
    dx, dlog, one = _weights()
    factor_keys: dict[str, int] = {}
    factor_polys: list = []
    matrices = []
    for v in ("a", "b", "c"):
        entries = []
        for i in range(r):
            row = []
            for j in range(r):
                acc = _Frac(_CTX.from_dict({}))
                for w, pm in zip(dx[v], p_l, strict=False):
                    acc = acc + w * pm[i][j]
                if i == j:
                    acc = acc + _Frac(-dlog[v].num, dlog[v].den)
                row.append(acc)
            entries.append(row)
        # common denominator = lcm of entry denominators, factored
        lcm = one
        for row in entries:
            for e in row:
                if not e.num.is_zero():
                    g = lcm.gcd(e.den)
                    lcm = lcm * divmod(e.den, g)[0]
        const, facs = lcm.factor()
        powers = []
        for f, e in facs:
            key = str(f)
            if key not in factor_keys:
                factor_keys[key] = len(factor_polys)
                factor_polys.append(f)
            powers.append((factor_keys[key], int(e)))
        numerators = []
        for row in entries:
            nrow = []
            for e in row:
                if e.num.is_zero():
                    nrow.append(SparsePoly(3, {}))
                else:
                    q, rem = divmod(lcm, e.den)
                    nrow.append(_to_sparse(e.num * q))
            numerators.append(tuple(nrow))
        c = Fraction(int(flint.fmpq(const).p), int(flint.fmpq(const).q))
        matrices.append(RationalMatrix(tuple(numerators), c, tuple(powers)))
    return tuple(_to_sparse(f) for f in factor_polys), tuple(matrices)


def determinant_factor_index(factors) -> int | None:
    """Index and sign of the factor +-(ab - c^2) in a factor list, or None."""
    for k, f in enumerate(factors):
        t = f.terms
        if set(t) == {(1, 1, 0), (0, 0, 2)} and t[(1, 1, 0)] == -t[(0, 0, 2)]:
            return k
    return None
