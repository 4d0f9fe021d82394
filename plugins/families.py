"""The built-in activation families: neural-tangents' stax nonlinearities (same names,
parameter names and defaults) and elu and resin, registered through the
``hgmntk_register_families`` hook (see :mod:`hgmntk.family` for what a family is).

Closed forms: :mod:`hgmntk.plugins.closed_forms` for the rectified monomials (ABRelu,
LeakyRelu, Abs, Sign, RectifiedMonomial up to degree 12), :mod:`hgmntk.plugins.smooth_forms`
for Erf, Sin, Cos, Rbf, Exp, Gaussian, Gelu, Monomial, Polynomial and Hermite.  Gabor,
ELU, ReSin and RectifiedMonomial of degree > 12 are computed by the holonomic gradient
method.  neural-tangents' ExpNormalized is no elementwise activation (it normalises the
kernel itself) and has no counterpart here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hgmntk.activation import CollinearData
from hgmntk.errors import InvalidInputError
from hgmntk.family import Family, Member, Parameter, exact
from hgmntk.hookspecs import hookimpl

from . import closed_forms, smooth_forms


def _expr(text: str) -> str:
    """Normalise a SymPy expression string (parsed by SymPy, printed back)."""
    import sympy

    return sympy.sstr(sympy.sympify(text, locals={"u": sympy.Symbol("u", real=True)}))



# ---------------------------------------------------------------------- the families
def _rectified(n: int, alpha: float, beta: float, description: str,
               shipped: str | None = None) -> Member:
    """s = alpha u^n Y(u) + beta (-u)^n Y(-u) (closed forms for n <= MAX_DEGREE = 12)."""
    if alpha == beta == 0:
        raise InvalidInputError("the activation is identically zero")
    al, be = exact(alpha), exact(beta)
    expression = _expr(f"({al})*u**{n}*Heaviside(u) + ({be})*(-u)**{n}*Heaviside(-u)")
    if n == 0:
        derivative = _expr(f"({al} - ({be}))*DiracDelta(u)")
    else:
        derivative = _expr(f"{n}*({al})*u**{n - 1}*Heaviside(u) "
                           f"- {n}*({be})*(-u)**{n - 1}*Heaviside(-u)")
    forms = {}
    if n <= closed_forms.MAX_DEGREE:
        forms = closed_forms.RectifiedFamily(n, alpha, beta).forms()
    return Member(expression, derivative, description, forms,
                  homogeneity={"s": n, "ds": n - 1},
                  collinear={"ss": _rectified_collinear(n, alpha, beta),
                             "dsds": _rectified_collinear(n - 1, n * alpha, -n * beta)
                             if n else CollinearData("homogeneous", math.inf, math.inf)},
                  shipped=shipped)


def _rectified_collinear(n: int, alpha: float, beta: float) -> CollinearData:
    """E[s(U)s(U)] = (alpha^2 + beta^2)(2n - 1)!!/2, E[s(U)s(-U)] = alpha beta (2n - 1)!!."""
    double_factorial = math.prod(range(2 * n - 1, 0, -2))
    return CollinearData("homogeneous", (alpha**2 + beta**2) * double_factorial / 2,
                         alpha * beta * double_factorial)


def _abrelu(a: float, b: float, do_stabilize: bool = False) -> Member:
    shipped = {(0.0, 1.0): "relu", (-1.0, 1.0): "abs", (0.1, 1.0): "leaky_relu"}.get((a, b))
    return _rectified(1, b, -a, f"a min(u, 0) + b max(u, 0) with a = {a!r}, b = {b!r}",
                      shipped)


def _erf(a: float = 1.0, b: float = 1.0, c: float = 0.0,
         exact_abc: tuple[str, str, str] | None = None) -> Member:
    A, B, C = exact_abc or (exact(a), exact(b), exact(c))
    return Member(
        _expr(f"({A})*erf(({B})*u) + ({C})"),
        _expr(f"2*({A})*({B})*exp(-({B})**2*u**2)/sqrt(pi)"),
        f"a erf(b u) + c with a = {a!r}, b = {b!r}, c = {c!r}",
        smooth_forms.ErfForm(a, b, c).forms(),
        shipped="erf" if (a, b, c) == (1.0, 1.0, 0.0) else None,
    )


def _trig(a: float, b: float, c: float, cosine: bool,
          exact_abc: tuple[str, str, str] | None = None) -> Member:
    A, B, C = exact_abc or (exact(a), exact(b), exact(c))
    f, g, sign = ("cos", "sin", "-") if cosine else ("sin", "cos", "")
    return Member(
        _expr(f"({A})*{f}(({B})*u + ({C}))"),
        _expr(f"{sign}({A})*({B})*{g}(({B})*u + ({C}))"),
        f"a {f}(b u + c) with a = {a!r}, b = {b!r}, c = {c!r}",
        smooth_forms.TrigForm(a, b, c, cosine=cosine).forms(),
        shipped=f if (a, b, c) == (1.0, 1.0, 0.0) else None,
    )


def _exp(a: float = 1.0, b: float = 1.0) -> Member:
    A, B = exact(a), exact(b)
    return Member(
        _expr(f"({A})*exp(({B})*u)"), _expr(f"({A})*({B})*exp(({B})*u)"),
        f"a exp(b u) with a = {a!r}, b = {b!r}",
        smooth_forms.ExpForm(a, b).forms(),
        shipped="exp" if (a, b) == (1.0, 1.0) else None,
    )


def _gaussian(a: float = 1.0, b: float = -1.0) -> Member:
    A, B = exact(a), exact(b)
    return Member(
        _expr(f"({A})*exp(({B})*u**2)"), _expr(f"2*({A})*({B})*u*exp(({B})*u**2)"),
        f"a exp(b u^2) with a = {a!r}, b = {b!r}",
        smooth_forms.GaussianForm(a, b).forms(),
        shipped="gauss" if (a, b) == (1.0, -0.5) else None,
        variance_limit=1 / (4 * b) if b > 0 else None,
    )


def _gelu(approximate: bool = False) -> Member:
    if approximate:
        import sympy

        u = sympy.Symbol("u", real=True)
        approx = u * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi)
                                     * (u + sympy.Rational(44715, 10**6) * u**3))) / 2
        return Member(
            sympy.sstr(approx),
            sympy.sstr(sympy.diff(approx, u)),
            "gelu's tanh approximation (not holonomic: quadrature only)",
            holonomic=False,
        )
    return Member("u*(1 + erf(u/sqrt(2)))/2", "", "u Phi(u)", smooth_forms.GeluForm().forms(),
                  shipped="gelu")


def _polynomial_member(coef: tuple[float, ...], description: str,
                       exact_coef: list[str] | None = None) -> Member:
    exact_coef = exact_coef or [exact(x) for x in coef]
    terms = [f"({p})*u**{j}" for j, p in enumerate(exact_coef)]
    dterms = [f"{j}*({p})*u**{j - 1}" for j, p in enumerate(exact_coef) if j]
    return Member(_expr(" + ".join(terms)), _expr(" + ".join(dterms) or "0"), description,
                  smooth_forms.PolynomialForm(coef).forms())


def _monomial(degree: int) -> Member:
    coef = (0.0,) * degree + (1.0,)
    return _polynomial_member(coef, f"u^{degree}", ["0"] * degree + ["1"])


def _polynomial(coef: tuple[float, ...]) -> Member:
    return _polynomial_member(coef, "sum_j coef[j] u^j")


def _hermite(degree: int) -> Member:
    """He_n(u)/sqrt(n!), the probabilists' Hermite polynomial normalised in L2(N(0, 1))."""
    import sympy

    u = sympy.Symbol("u")
    poly = sympy.Poly(sympy.hermite_prob_poly(degree, u), u)
    integer = [int(poly.coeff_monomial(u**j)) for j in range(degree + 1)]
    norm = math.sqrt(math.factorial(degree))
    coef = tuple(k / norm for k in integer)
    exact_coef = [f"{k}/sqrt({math.factorial(degree)})" for k in integer]
    return _polynomial_member(coef, f"He_{degree}(u)/sqrt({degree}!)", exact_coef)


def _elu(alpha: float = 1.0) -> Member:
    A = exact(alpha)
    return Member(
        _expr(f"u*Heaviside(u) + ({A})*(exp(u) - 1)*Heaviside(-u)"),
        _expr(f"Heaviside(u) + ({A})*exp(u)*Heaviside(-u)"),
        f"u (u > 0), alpha (exp(u) - 1) (u < 0) with alpha = {alpha!r}",
        shipped="elu" if alpha == 1.0 else None,
    )


def _fixed(expression: str, derivative: str, description: str, forms=None,
           shipped: str | None = None) -> Callable[..., Member]:
    def make() -> Member:
        return Member(_expr(expression), _expr(derivative), description, forms or {},
                      shipped=shipped)
    return make


_STABILIZE = Parameter("do_stabilize", False, "bool",
                       "accepted for neural-tangents compatibility (hgmntk needs no switch)",
                       shown=False)
_ABC = (Parameter("a", 1.0), Parameter("b", 1.0), Parameter("c", 0.0))
_SIGMOID_SCALE = 2.4020563531719796


def builtin_families() -> list[Family]:
    """The families shipped with hgmntk."""
    shipped = "shipped system (defaults), else "
    return [
        Family("relu", "Relu", (_STABILIZE,),
               lambda do_stabilize=False: _abrelu(0.0, 1.0), "max(u, 0)",
               "shipped system"),
        Family("leaky_relu", "LeakyRelu", (Parameter("alpha"), _STABILIZE),
               lambda alpha, do_stabilize=False: _abrelu(alpha, 1.0),
               "max(u, 0) + alpha min(u, 0)"),
        Family("abrelu", "ABRelu", (Parameter("a"), Parameter("b"), _STABILIZE), _abrelu,
               "a min(u, 0) + b max(u, 0)"),
        Family("abs", "Abs", (_STABILIZE,),
               lambda do_stabilize=False: _abrelu(-1.0, 1.0), "|u|", "shipped system"),
        Family("sign", "Sign", (),
               lambda: _rectified(0, 1.0, -1.0, "sign(u)"), "sign(u)"),
        Family("rectified_monomial", "RectifiedMonomial", (Parameter("degree", kind="int"),),
               lambda degree: _rectified(
                   degree, 1.0, 0.0, f"u^{degree} Y(u)",
                   {0: "step", 1: "relu", 2: "relu2", 3: "relu3"}.get(degree)),
               "u^degree Y(u) (closed form for degree <= 12)"),
        Family("erf", "Erf", _ABC, _erf, "a erf(b u) + c", shipped + "derived"),
        Family("sigmoid_like", "Sigmoid_like", (),
               lambda: _erf(0.5, 1 / _SIGMOID_SCALE, 0.5,
                            ("1/2", f"1/({exact(_SIGMOID_SCALE)})", "1/2")),
               "erf(u / 2.4020563531719796)/2 + 1/2"),
        Family("gelu", "Gelu", (Parameter("approximate", False, "bool"),), _gelu,
               "u Phi(u); approximate=True is the tanh approximation (quadrature only)",
               "shipped system"),
        Family("sin", "Sin", _ABC, lambda a=1.0, b=1.0, c=0.0: _trig(a, b, c, False),
               "a sin(b u + c)", shipped + "derived"),
        Family("cos", "Cos", _ABC, lambda a=1.0, b=1.0, c=0.0: _trig(a, b, c, True),
               "a cos(b u + c)", shipped + "derived"),
        Family("rbf", "Rbf", (Parameter("gamma", 1.0),),
               lambda gamma=1.0: _trig(math.sqrt(2), math.sqrt(2 * gamma), math.pi / 4, False,
                                       ("sqrt(2)", f"sqrt(2*({exact(gamma)}))", "pi/4")),
               "sqrt(2) sin(sqrt(2 gamma) u + pi/4)"),
        Family("exp", "Exp", (Parameter("a", 1.0), Parameter("b", 1.0)), _exp, "a exp(b u)",
               shipped + "derived"),
        Family("gaussian", "Gaussian", (Parameter("a", 1.0), Parameter("b", -1.0)), _gaussian,
               "a exp(b u^2)", shipped + "derived"),
        Family("monomial", "Monomial", (Parameter("degree", kind="int"),), _monomial,
               "u^degree"),
        Family("polynomial", "Polynomial", (Parameter("coef", kind="floats"),), _polynomial,
               "sum_j coef[j] u^j"),
        Family("hermite", "Hermite", (Parameter("degree", kind="int"),), _hermite,
               "He_degree(u) / sqrt(degree!)"),
        Family("gabor", "Gabor", (),
               _fixed("exp(-u**2)*sin(u)", "exp(-u**2)*(cos(u) - 2*u*sin(u))",
                      "exp(-u^2) sin(u)"),
               "exp(-u^2) sin(u) (no closed form here: hgm)"),
        Family("elu", None, (Parameter("alpha", 1.0),), _elu,
               "u (u > 0), alpha (exp(u) - 1) (u < 0)", shipped + "derived"),
        Family("resin", None, (),
               _fixed("Heaviside(u)*sin(u)", "Heaviside(u)*cos(u)", "Y(u) sin(u)",
                      shipped="resin"),
               "Y(u) sin(u)", "shipped system"),
    ]


@hookimpl
def hgmntk_register_families(register):
    """Register the built-in families."""
    for family in builtin_families():
        register(family)


