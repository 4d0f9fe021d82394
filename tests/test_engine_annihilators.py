"""Annihilators of 1-D activations (hgmntk.cas_bridge.annihilators).

Every annihilator is checked independently of the engine: it is applied to the expression
with SymPy's own differentiation rules (Heaviside' = DiracDelta), the terms
phi(u) delta^(m)(u) are reduced by hand here, and the regular part is evaluated at sample
points on both sides of 0 with mpmath.
"""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy

from hgmntk.cas_bridge.annihilators import (
    U,
    annihilator,
    derivative_expression,
    groebner,
    homogeneity_degree,
    in_ideal,
    parse_annihilators,
    pieces,
    verify_annihilator,
)
from hgmntk.cas_bridge.weyl import UD, Operator, format_operator, parse_operator
from hgmntk.errors import DerivationError, HgmntkError, NotHolonomicError

u = U
Y = sympy.Heaviside
PHI = (1 + sympy.erf(u / sympy.sqrt(2))) / 2

# name: (expression written with Heaviside, as a user would)
BUILTINS = {
    "relu": sympy.Max(0, u),
    "step": Y(u),
    "gelu": u * PHI,
    "erf": sympy.erf(u),
    "resin": Y(u) * sympy.sin(u),
    "sin": sympy.sin(u),
    "cos": sympy.cos(u),
    "relu2": u**2 * Y(u),
    "relu3": u**3 * Y(u),
    "leaky_relu": u * Y(u) + u / 10 * Y(-u),
    "abs": sympy.Abs(u),
    "elu": u * Y(u) + (sympy.exp(u) - 1) * Y(-u),
    "exp": sympy.exp(u),
    "gauss": sympy.exp(-u**2 / 2),
}
EXTRA = {
    "ycos": Y(u) * sympy.cos(u),
    "gauss_sin": sympy.exp(-u**2) * sympy.sin(u),
    "u2_erf": u**2 + sympy.erf(u),
    "delta": sympy.DiracDelta(u),
    "sign": sympy.sign(u),
    "elu_piecewise": sympy.Piecewise((u, u > 0), (sympy.exp(u) - 1, True)),
}
ALL = {**BUILTINS, **EXTRA}


def _heavisided(expr):
    """Rewrite Max/Min/Abs/sign/Piecewise with Heaviside, by SymPy's rules where it has them."""
    if expr.has(sympy.Piecewise):
        # (u, u > 0), (g, True)  ->  u Y(u) + g Y(-u)
        (p1, c1), (p2, _) = expr.args
        assert c1 == (u > 0)
        return p1 * Y(u) + p2 * Y(-u)
    return expr.rewrite(Y)


def independent_apply(op: Operator, expr) -> tuple[list, dict]:
    """(values of the regular part at sample points, delta coefficients) of op applied."""
    e = _heavisided(expr)
    total = sum(
        sympy.Rational(c.numerator, c.denominator) * u**j * sympy.diff(e, u, i)
        for ((j,), (i,)), c in op.terms.items()
    )
    regular, deltas = sympy.S.Zero, {}
    for term in sympy.Add.make_args(sympy.expand(total)):
        ds = [f for f in sympy.Mul.make_args(term) if isinstance(f, sympy.DiracDelta)]
        if not ds:
            regular += term
            continue
        (d,) = ds
        k = sympy.simplify(d.args[0] / u)  # DiracDelta(k u, m) = delta^(m)(u) / (|k| k^m)
        m = int(d.args[1]) if len(d.args) > 1 else 0
        phi = term / d / (abs(k) * k**m)
        # phi(u) delta^(m) = sum_r (-1)^r C(m, r) phi^(r)(0) delta^(m-r)
        for r in range(m + 1):
            val = sympy.diff(phi, u, r).subs(u, 0)
            deltas[m - r] = deltas.get(m - r, 0) + (-1) ** r * math.comb(m, r) * val
    fn = sympy.lambdify(u, regular, modules=[{"Heaviside": lambda x, *a: mpmath.mpf(x > 0),
                                               "sign": mpmath.sign}, "mpmath"])
    with mpmath.workdps(50):
        values = [fn(mpmath.mpf(x)) for x in (-2.3, -0.7, -0.11, 0.13, 0.9, 1.7, 3.1)]
    return values, {m: sympy.nsimplify(sympy.simplify(v)) for m, v in deltas.items()}


def assert_annihilates(op: Operator, expr) -> None:
    values, deltas = independent_apply(op, expr)
    assert all(v == 0 for v in deltas.values()), (format_operator(op), deltas)
    assert max(abs(v) for v in values) < 1e-35, (format_operator(op), values)


@pytest.mark.parametrize("name", sorted(ALL))
def test_annihilators_annihilate(name):
    expr = ALL[name]
    ops = annihilator(expr)
    assert ops
    for op in ops:
        assert op.alg == UD
        assert_annihilates(op, expr)


@pytest.mark.parametrize("name", sorted(ALL))
def test_derivative_annihilators_annihilate(name):
    expr = ALL[name]
    ds = derivative_expression(expr)
    for op in annihilator(ds):
        assert_annihilates(op, ds)


def test_independent_check_can_fail():
    # the order-1 ReLU operator with the wrong constant, or the smooth ReSin operator
    with pytest.raises(AssertionError):
        assert_annihilates(parse_operator(UD, "u*d - 2"), sympy.Max(0, u))
    with pytest.raises(AssertionError):
        assert_annihilates(parse_operator(UD, "d^2 + 1"), Y(u) * sympy.sin(u))
    assert not verify_annihilator(parse_operator(UD, "d^2 + 1"), Y(u) * sympy.sin(u))
    assert not verify_annihilator(parse_operator(UD, "u*d - 2"), sympy.Max(0, u))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("relu", ["u*d - 1"]),
        ("step", ["u*d"]),
        ("abs", ["u*d - 1"]),
        ("leaky_relu", ["u*d - 1"]),
        ("relu2", ["u*d - 2"]),
        ("relu3", ["u*d - 3"]),
        ("erf", ["d^2 + 2*u*d"]),
        ("sin", ["d^2 + 1"]),
        ("cos", ["d^2 + 1"]),
        ("exp", ["d - 1"]),
        ("gauss", ["d + u"]),
        ("resin", ["u*d^2 + u"]),
        ("delta", ["u"]),
    ],
)
def test_known_annihilating_ideals(name, expected):
    assert [format_operator(o) for o in annihilator(ALL[name])] == expected


def test_gelu_ideal_contains_both_known_operators():
    ops = annihilator(ALL["gelu"])
    p3 = parse_operator(UD, "d^3 + 2*u*d^2 + u^2*d - u")
    p2 = parse_operator(UD, "u^2*d^2 + u^3*d - 2*u*d - u^2 + 2")
    assert in_ideal(p3, ops) and in_ideal(p2, ops)
    # ... and is not the principal ideal of either one
    assert not in_ideal(p2, [p3]) and not in_ideal(p3, [p2])


def test_resin_full_ideal_is_smaller_than_rank8_operator():
    ops = annihilator(ALL["resin"])
    u2 = parse_operator(UD, "u^2*d^2 + u^2")
    assert in_ideal(u2, ops)
    assert not in_ideal(ops[0], [u2])


def test_single_operator_mode():
    (op,) = annihilator(ALL["gelu"], full=False)
    assert op.order() == 2
    assert_annihilates(op, ALL["gelu"])


def test_groebner_of_principal_ideal_is_the_generator():
    p = parse_operator(UD, "u*d^2 + u")
    assert groebner([p, parse_operator(UD, "d") * p, parse_operator(UD, "u") * p]) == [p]


@pytest.mark.parametrize(
    "expr",
    [
        "1/(1 + exp(-u))",
        "tanh(u)",
        "log(1 + exp(u))",
        "u/(1 + exp(-u))",
        "u*tanh(log(1 + exp(u)))",
    ],
)
def test_not_holonomic(expr):
    with pytest.raises(NotHolonomicError) as info:
        annihilator(expr)
    msg = str(info.value)
    assert "not holonomic" in msg and "gauss-hermite" in msg
    assert "poles" in msg or "branch points" in msg
    assert "polynomial coefficients" in msg


@pytest.mark.parametrize("expr", ["Max(0, u - 1)", "sqrt(u)", "log(1 + u**2)", "Abs(sin(u))",
                                  "0*u"])
def test_unsupported_input_is_a_clear_error(expr):
    with pytest.raises(HgmntkError) as info:
        annihilator(expr)
    assert not isinstance(info.value, NotHolonomicError)
    assert isinstance(info.value, DerivationError) or "u" in str(info.value)


@pytest.mark.parametrize(
    "name, k, kd",
    [("relu", 1, 0), ("step", 0, -1), ("abs", 1, 0), ("leaky_relu", 1, 0), ("relu2", 2, 1),
     ("relu3", 3, 2), ("sign", 0, -1), ("delta", -1, -2), ("gelu", None, None),
     ("elu", None, None), ("exp", None, None), ("resin", None, None)],
)
def test_homogeneity(name, k, kd):
    expr = ALL[name]
    assert homogeneity_degree(expr) == k
    assert homogeneity_degree(derivative_expression(expr)) == kd
    if k is not None:  # an independent numerical check of s(l u) = l^k s(u)
        f = sympy.lambdify(u, _heavisided(expr).subs(sympy.DiracDelta(u), 0),
                           modules=[{"Heaviside": lambda x, *a: float(x > 0)}, "math"])
        for x in (-1.3, 0.7):
            assert f(2.5 * x) == pytest.approx(2.5**k * f(x))


@pytest.mark.parametrize(
    "expr, expected",
    [
        (sympy.Max(0, u), Y(u)),
        (Y(u), sympy.DiracDelta(u)),
        (sympy.Abs(u), Y(u) - Y(-u)),
        (Y(u) * sympy.cos(u), -sympy.sin(u) * Y(u) + sympy.DiracDelta(u)),
        (ALL["elu"], Y(u) + sympy.exp(u) * Y(-u)),
        (sympy.erf(u), 2 * sympy.exp(-u**2) / sympy.sqrt(sympy.pi)),
    ],
)
def test_derivative_expression(expr, expected):
    assert sympy.simplify(derivative_expression(expr) - expected) == 0


def test_pieces_of_piecewise_and_max():
    p = pieces(ALL["elu_piecewise"])
    assert sympy.simplify(p.plus - u) == 0 and sympy.simplify(p.minus - sympy.exp(u) + 1) == 0
    p = pieces(sympy.Min(0, u))
    assert p.plus == 0 and sympy.simplify(p.minus - u) == 0


def test_parse_annihilators_error():
    with pytest.raises(DerivationError):
        parse_annihilators(["d*u + q"])
    assert format_operator(parse_annihilators(["u*d - 1"])[0]) == "u*d - 1"
