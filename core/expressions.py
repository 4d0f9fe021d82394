"""Parsing user activation expressions safely, and turning them into NumPy callables.

User text is never evaluated as Python and never sent to a CAS: it is tokenised, checked
against a whitelist of names (functions SymPy knows, the variable ``u``), and parsed by
SymPy's parser with empty builtins.  The resulting SymPy expression is what the rest of
hgmntk (and any CAS printer) sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
        if name not in local:
            known = ", ".join(sorted(k for k in ALLOWED_FUNCTIONS if k[0].isupper() or k == "pi"))
            raise InvalidInputError(
                f"unknown name {name!r} in activation expression {text!r}: use the variable "
                f"'{variable}' and the functions Heaviside, Max, Abs, sign, erf, sin, cos, exp, "
                f"sqrt, ... (known: {known}, lower-case functions of SymPy)"
            )
    try:
        expr = parse_expr(
            text,
            local_dict=local,
            global_dict={
                "__builtins__": {},
                "Symbol": sympy.Symbol,
                "Integer": sympy.Integer,
                "Float": sympy.Float,
                "Rational": sympy.Rational,
            },
            transformations=standard_transformations
            + (convert_xor, implicit_multiplication_application),
            evaluate=True,
        )
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
        return np.broadcast_to(np.asarray(fn(x), dtype=float), x.shape)

    return call
