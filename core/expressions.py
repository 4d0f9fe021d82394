"""Parsing user activation expressions safely, and turning them into NumPy callables.

User text is never evaluated as Python and never sent to a CAS: it is tokenised, checked
against a whitelist of names (functions SymPy knows, the variable ``u``), and parsed by
SymPy's parser with empty builtins.  The resulting SymPy expression is what the rest of
hgmntk (and any CAS printer) sees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import sympy

from .errors import InvalidInputError

U = sympy.Symbol("u", real=True)

#: Names a user expression may contain (SymPy functions and constants).
ALLOWED_FUNCTIONS: dict[str, object] = {
    name: getattr(sympy, name)
    for name in (
        "Heaviside",
        "Max",
        "Min",
        "Piecewise",
        "Abs",
        "sign",
        "erf",
        "erfc",
        "sin",
        "cos",
        "tan",
        "exp",
        "sqrt",
        "log",
        "tanh",
        "sinh",
        "cosh",
        "atan",
        "pi",
        "E",
        "Rational",
        "DiracDelta",
        "Integer",
        "Float",
        "And",
        "Or",
    )
}
_ALIASES = {"abs": sympy.Abs, "max": sympy.Max, "min": sympy.Min, "e": sympy.E}
#: Python literals SymPy prints in Piecewise conditions (``Piecewise((1, u > 0), (0, True))``).
_LITERALS = frozenset({"True", "False"})
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_ALLOWED_CHARS = re.compile(r"^[A-Za-z0-9_+\-*/^()., <>=&|\t]*$")
MAX_EXPRESSION_LENGTH = 2000


def parse_activation_expression(text: str, variable: str = "u") -> sympy.Expr:
    """Parse ``text`` (e.g. ``"Heaviside(u)*cos(u)"``) into a SymPy expression in ``u``.

    Raises :class:`InvalidInputError` with the reason for anything that is not a plain
    expression in ``u`` built from whitelisted functions.
    """
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("empty activation expression; write e.g. 'Heaviside(u)*sin(u)'")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise InvalidInputError(f"activation expression longer than {MAX_EXPRESSION_LENGTH} chars")
    if not _ALLOWED_CHARS.match(text) or "__" in text or re.search(r"[A-Za-z_)]\s*\.", text):
        raise InvalidInputError(
            f"activation expression {text!r} contains characters that are not part of a "
            "formula (allowed: names, numbers, + - * / ^ ** ( ) , < > =)"
        )
    local = {variable: U, **ALLOWED_FUNCTIONS, **_ALIASES}
    for name in _TOKEN.findall(text):
        if name not in local and name not in _LITERALS:
            known = ", ".join(sorted(k for k in ALLOWED_FUNCTIONS if k[0].isupper() or k == "pi"))
            raise InvalidInputError(
                f"unknown name {name!r} in activation expression {text!r}: use the variable "
                f"'{variable}' and the functions Heaviside, Max, Abs, sign, erf, sin, cos, exp, "
                f"sqrt, ... (known: {known}, lower-case functions of SymPy)"
            )
    options = {
        "local_dict": local,
        "global_dict": {
            "__builtins__": {},
            "Symbol": sympy.Symbol,
            "Integer": sympy.Integer,
            "Float": sympy.Float,
            "Rational": sympy.Rational,
            # what parse_expr(evaluate=False) writes the operators as
            **{name: getattr(sympy, name) for name in (
                "Add", "Mul", "Pow", "Gt", "Lt", "Ge", "Le", "Eq", "Ne", "And", "Or", "Not",
                "UnevaluatedExpr",
            )},
        },
        "transformations": standard_transformations
        + (convert_xor, implicit_multiplication_application),
    }
    try:  # unevaluated first: '9**9**9' must be refused before SymPy computes it
        _check_magnitudes(parse_expr(text, evaluate=False, **options), text)
        expr = parse_expr(text, evaluate=True, **options)
    except InvalidInputError:
        raise
    except Exception as exc:  # SymPy raises many types for malformed input
        raise InvalidInputError(f"cannot parse activation expression {text!r}: {exc}") from exc
    if not isinstance(expr, sympy.Expr):
        raise InvalidInputError(f"activation expression {text!r} is not a scalar expression")
    extra = expr.free_symbols - {U}
    if extra:
        raise InvalidInputError(
            f"activation expression {text!r} has free symbols {sorted(map(str, extra))}; "
            f"only '{variable}' may appear"
        )
    return expr


#: Constants beyond 10^LARGEST (or exponents of u beyond MAX_EXPONENT) are refused: exact
#: arithmetic on them would hang, and no float64 computation could use them.
LARGEST = 400
MAX_EXPONENT = 1000


def _log10_size(node: sympy.Basic, text: str) -> float:
    """An upper estimate of log10 |value| of a numeric subtree, computed from the structure
    (never by evaluating it); raises InvalidInputError beyond :data:`LARGEST`."""
    def too_large() -> InvalidInputError:
        return InvalidInputError(
            f"activation expression {text!r} holds a constant of magnitude beyond 10^±{LARGEST} "
            f"({sympy.sstr(node)[:60]}); no float64 computation can use it"
        )

    if isinstance(node, sympy.Integer):
        size = abs(math.log10(abs(int(node)))) if node != 0 else 0.0
    elif isinstance(node, sympy.Rational):
        size = max(math.log10(abs(node.p)), math.log10(node.q))
    elif isinstance(node, sympy.Float):
        size = abs(float(sympy.log(abs(node), 10))) if node != 0 else 0.0
    elif isinstance(node, sympy.Pow):
        base, exponent = node.args
        e_size = _log10_size(exponent, text)
        if e_size > 6:
            raise too_large()
        size = _log10_size(base, text) * max(abs(float(exponent.evalf(15))), 1.0)
    elif isinstance(node, sympy.exp):
        a_size = _log10_size(node.args[0], text)
        if a_size > 6:
            raise too_large()
        size = abs(float(node.args[0].evalf(15))) / 2.302585092994046
    elif isinstance(node, (sympy.Mul, sympy.Add)):
        size = sum(_log10_size(a, text) for a in node.args) + (
            len(node.args) if isinstance(node, sympy.Add) else 0
        )
    else:  # bounded functions, constants such as pi
        size = max((_log10_size(a, text) for a in node.args), default=1.0)
    if size > LARGEST:
        raise too_large()
    return size


def _check_magnitudes(expr: sympy.Basic, text: str) -> None:
    """Refuse numbers too large to compute with, and powers of u beyond MAX_EXPONENT."""
    walker = sympy.preorder_traversal(expr)
    for node in walker:
        if isinstance(node, sympy.Pow) and node.args[0].has(U) and node.args[1].is_number:
            if _log10_size(node.args[1], text) > 3 or abs(
                float(node.args[1].evalf(15))
            ) > MAX_EXPONENT:
                raise InvalidInputError(
                    f"activation expression {text!r}: the exponent {sympy.sstr(node.args[1])} "
                    f"of u is beyond {MAX_EXPONENT}"
                )
        if node.is_number and not node.has(U):
            _log10_size(node, text)  # sizes the whole numeric subtree at once
            walker.skip()


def lambdify_activation(text: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A vectorised NumPy callable for the expression, or None if it holds a Dirac delta."""
    expr = parse_activation_expression(text)
    if expr.has(sympy.DiracDelta):
        return None
    import scipy.special

    modules = [
        {
            "Heaviside": lambda x, h0=0.5: np.heaviside(x, h0),
            "erf": scipy.special.erf,
            "erfc": scipy.special.erfc,
        },
        "numpy",
    ]
    fn = sympy.lambdify(U, expr, modules=modules)

    def call(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.asarray(fn(x), dtype=float)
        # a constant expression gives a scalar (broadcast_to costs microseconds, and
        # scalar quadratures call this a hundred thousand times)
        return out if out.shape == x.shape else np.broadcast_to(out, x.shape)

    return call


def derivative_expression(expr: sympy.Expr) -> sympy.Expr:
    """s'(u) of a parsed expression, as a distribution, by SymPy.

    SymPy differentiates Heaviside(u - p) to DiracDelta(u - p) and sign to 2 DiracDelta, but
    drops the jumps of a Piecewise: at each point p where a Piecewise condition switches,
    the jump J = s(p+) - s(p-) is added as J delta(u - p) (minus what SymPy already wrote
    there).  Terms f(u) delta(u - p) are reduced to f(p) delta(u - p), so u delta(u) = 0
    and relu written as u*Heaviside(u) has the derivative Heaviside(u).
    """
    deriv = sympy.diff(expr, U)
    if expr.has(sympy.Piecewise):
        deriv += _piecewise_jumps(expr, deriv)
    if deriv.has(sympy.DiracDelta):
        deriv = _reduce_deltas(deriv)
    return deriv


def _breakpoints(expr: sympy.Expr) -> set[sympy.Expr]:
    """Real points where a condition of a Piecewise in ``expr`` can switch."""
    points: set[sympy.Expr] = set()
    for pw in expr.atoms(sympy.Piecewise):
        for _, cond in pw.args:
            for rel in cond.atoms(sympy.core.relational.Relational):
                for root in sympy.solve(rel.lhs - rel.rhs, U):
                    if root.is_real:
                        points.add(root)
    return points


def _piecewise_jumps(expr: sympy.Expr, deriv: sympy.Expr) -> sympy.Expr:
    """sum_p (J_p - c_p) delta(u - p) over the Piecewise breakpoints of ``expr``, where J_p is
    the jump of s at p and c_p the weight SymPy's derivative already gives delta(u - p)."""
    extra = sympy.Integer(0)
    written = _reduce_deltas(deriv) if deriv.has(sympy.DiracDelta) else sympy.Integer(0)
    for p in sorted(_breakpoints(expr), key=float):
        t = sympy.Symbol("t", positive=True)
        try:  # with t > 0 the conditions at p +- t decide themselves (limit() may not)
            jump = sympy.limit(expr.subs(U, p + t), t, 0, "+") - sympy.limit(
                expr.subs(U, p - t), t, 0, "+"
            )
        except Exception as exc:  # SymPy raises many types for limits it cannot take
            raise InvalidInputError(
                f"cannot tell whether {sympy.sstr(expr)} jumps at u = {p}: {exc}"
            ) from exc
        delta = sympy.DiracDelta(U - p)
        present = sympy.expand(written).coeff(delta)
        missing = sympy.simplify(jump - present)
        if missing != 0:
            extra += missing * delta
    return extra


def _reduce_deltas(deriv: sympy.Expr) -> sympy.Expr:
    """Replace f(u) delta(u - p) by f(p) delta(u - p) (delta of order 0, linear argument)."""
    out = sympy.Integer(0)
    for term in sympy.Add.make_args(sympy.expand(deriv)):
        deltas = [f for f in sympy.Mul.make_args(term) if isinstance(f, sympy.DiracDelta)]
        if len(deltas) != 1 or len(deltas[0].args) != 1:
            out += term
            continue
        delta = deltas[0]
        arg = delta.args[0]
        if not arg.is_polynomial(U) or sympy.degree(arg, U) != 1:
            out += term
            continue
        (p,) = sympy.solve(arg, U)
        weight = sympy.simplify((term / delta).subs(U, p))
        if weight != 0:
            out += weight * delta
    return out


@lru_cache(maxsize=256)
def growth_exponent(expr: sympy.Expr) -> float:
    """L = max over u -> +-oo of lim log|s(u)| / u^2, clamped at 0 (inf: faster than any
    exp(c u^2)).

    E[s(U)^2] for U ~ N(0, a) is finite when 2 L a < 1/2, i.e. for variances a < 1/(4 L),
    and infinite above; L = 0 (at most exp(o(u^2)) growth: every activation hgmntk ships)
    means every variance.  Limits SymPy cannot take count as 0 (no claim is made).
    Cached: the limits take up to a second, and a derivation asks for them twice (the
    check, then the variance limit it records).
    """
    w = sympy.Symbol("w", positive=True)
    worst = 0.0
    for sign in (1, -1):
        try:
            limit = sympy.limit(sympy.log(sympy.Abs(expr.subs(U, sign * w))) / w**2, w, sympy.oo)
        except Exception:  # noqa: BLE001 - SymPy raises many types for limits it cannot take
            continue
        if limit is sympy.oo:
            return math.inf
        if limit.is_extended_real and limit.is_finite and limit > 0:
            worst = max(worst, float(limit))
    return worst


def check_variance(expr: sympy.Expr, variance: float, what: str = "s") -> None:
    """Raise :class:`~hgmntk.errors.DivergentDualError` if E[s(U)^2], U ~ N(0, variance),
    is infinite (see :func:`growth_exponent`), saying up to which variance it exists."""
    from .errors import DivergentDualError

    grow = growth_exponent(expr)
    if grow == math.inf:
        raise DivergentDualError(
            f"E[{what}(u) {what}(v)] diverges: {what} = {sympy.sstr(expr)} grows faster than "
            f"exp(c u^2) for every c, so E[{what}(U)^2] is infinite at every variance and no "
            "kernel exists"
        )
    if grow > 0 and variance >= 1 / (4 * grow):
        raise DivergentDualError(
            f"E[{what}(u) {what}(v)] diverges at variance {variance:g}: {what} = "
            f"{sympy.sstr(expr)} grows like exp({grow:g} u^2), so E[{what}(U)^2] is finite "
            f"only for variances below 1/(4 * {grow:g}) = {1 / (4 * grow):g}"
        )


@lru_cache(maxsize=128)
def dirac_split(text: str) -> tuple[str, tuple[tuple[float, float], ...]] | None:
    """s' = g(u) + sum_j w_j delta(u - t_j): (the text of g, ((w_j, t_j), ...)).

    For a derivative written as :func:`derivative_expression` writes it (order-0 deltas of
    linear arguments with constant weights); None if a Dirac term has another form.  The
    jump points and weights are floats (they place the delta on the Gaussian's axis).
    """
    expr = parse_activation_expression(text)
    if expr.has(sympy.DiracDelta):
        expr = _reduce_deltas(expr)  # f(u) delta(u - p) -> f(p) delta(u - p)
    expr = sympy.expand(expr)
    smooth = sympy.Integer(0)
    terms: dict[float, float] = {}
    for term in sympy.Add.make_args(expr):
        if not term.has(sympy.DiracDelta):
            smooth += term
            continue
        deltas = [f for f in sympy.Mul.make_args(term) if isinstance(f, sympy.DiracDelta)]
        if len(deltas) != 1 or len(deltas[0].args) != 1:
            return None
        weight = term / deltas[0]
        arg = deltas[0].args[0]
        if weight.has(U) or not arg.is_polynomial(U) or sympy.degree(arg, U) != 1:
            return None
        (point,) = sympy.solve(arg, U)
        t = float(point)  # delta(k (u - t)) = delta(u - t) / |k|
        terms[t] = terms.get(t, 0.0) + float(weight / abs(sympy.Poly(arg, U).LC()))
    return sympy.sstr(smooth), tuple((w, t) for t, w in sorted(terms.items()) if w != 0)


@lru_cache(maxsize=128)
def quadrature_activation(text: str):
    """An :class:`~hgmntk.Activation` of the expression ``text`` for quadrature integrators.

    No Pfaffian system is derived (the expression need not be holonomic): s is the parsed
    expression and s' its derivative by :func:`derivative_expression`.  A Dirac term in s'
    (s jumps) is kept, and quadrature then refuses the derivative dual.
    """
    from .activation import Activation

    expr = parse_activation_expression(text)
    deriv = derivative_expression(expr)
    check_variance(expr, 0.0, "s")  # raises if E[s(U)^2] is infinite at every variance
    grow = growth_exponent(expr)
    limit = {"variance_limit": 1 / (4 * grow)} if grow > 0 else {}
    deriv_text = sympy.sstr(deriv)
    try:  # the stored text is re-parsed (safely) wherever s' is evaluated
        same = sympy.simplify(parse_activation_expression(deriv_text) - deriv) == 0
    except InvalidInputError:
        same = False
    return Activation(
        name=text,
        expression=text,
        derivative=deriv_text if same else None,
        description="expression for quadrature only (no Pfaffian system derived)",
        holonomic=False,
        provenance={
            "engine": "none",
            "derivative": "SymPy" if same else "unavailable",
            **limit,
        },
    )
