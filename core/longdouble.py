"""Activations evaluated in numpy longdouble (x87 extended precision where the platform has
it), for the extended-precision tier of the deep kernels (:mod:`hgmntk.mehler`).

NumPy's sin, cos, exp, log, sqrt, tanh, ... accept longdouble arrays and return values
accurate to its unit roundoff; SciPy's erf and erfc do not (they round to float64).  This
module adds both:

* |x| < 3: erf(x) = (2x/sqrt(pi)) e^(-x^2) sum_n (2x^2)^n / (2n+1)!!, a series of positive
  terms (no cancellation), summed until the terms fall below the unit roundoff;
* |x| >= 3: erfc(|x|) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), the
  continued fraction of Laplace, evaluated bottom-up with a fixed depth (its truncation
  error from x = 1.5 on is below the unit roundoff), and erf = sign(x) (1 - erfc(|x|));
  erfc itself uses the fraction from x = 1.5 on.

:func:`lambdify_longdouble` turns an activation's expression into a longdouble callable
when every function in it has such an implementation, else returns None.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy

LD = np.longdouble
#: pi to long-double accuracy (numpy's np.pi is a float64 constant)
PI_LD = LD("3.14159265358979323846264338327950288")
_CF_DEPTH = 160
_SERIES_MAX = 200


def _erf_series(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| < 3 by the positive series (module docstring)."""
    x2 = x * x
    term = np.ones_like(x)
    total = np.ones_like(x)
    eps = np.finfo(LD).eps
    for n in range(_SERIES_MAX):
        term = term * (2 * x2) / (2 * n + 3)
        total += term
        if np.all(term <= eps * total / 4):
            break
    return 2 * x / np.sqrt(PI_LD) * np.exp(-x2) * total


def _erfc_fraction(x: np.ndarray, depth: int = _CF_DEPTH) -> np.ndarray:
    """erfc(x) for x >= 1.5 by Laplace's continued fraction (module docstring); from x = 3
    on a depth of 80 suffices."""
    tail = x.copy()
    for k in range(depth, 0, -1):
        tail = x + (LD(k) / 2) / tail
    return np.exp(-x * x) / np.sqrt(PI_LD) / tail


def erf_ld(x) -> np.ndarray:
    """The error function in longdouble, to a few units of its roundoff."""
    x = np.asarray(x, dtype=LD)
    out = np.empty_like(x)
    small = np.abs(x) < 3
    out[small] = _erf_series(x[small])
    # beyond |x| = 7, erfc < 5e-23 is below half the unit roundoff of 1: erf = sign(x)
    far = np.abs(x) >= 7
    out[far] = np.sign(x[far])
    big = ~small & ~far
    if np.any(big):
        out[big] = np.sign(x[big]) * (1 - _erfc_fraction(np.abs(x[big]), 80))
    return out


def erfc_ld(x) -> np.ndarray:
    """The complementary error function in longdouble (the continued fraction from x = 2
    on, so no cancellation there)."""
    x = np.asarray(x, dtype=LD)
    out = np.empty_like(x)
    big = x >= 1.5
    out[big] = _erfc_fraction(x[big])
    out[~big] = 1 - erf_ld(x[~big])
    return out


#: SymPy functions whose NumPy counterpart computes in longdouble, and the two added here.
_NATIVE = (sympy.sin, sympy.cos, sympy.tan, sympy.exp, sympy.log, sympy.sinh, sympy.cosh,
           sympy.tanh, sympy.atan, sympy.asinh)
_ADDED = {"erf": erf_ld, "erfc": erfc_ld}


def _constants_as_symbols(expr: sympy.Expr, found: dict) -> sympy.Expr:
    """``expr`` with every maximal numeric subexpression that is not an integer (1/2,
    sqrt(2), pi, ...) replaced by a symbol; ``found`` maps the symbols to the constants.
    Printed as Python code they would otherwise be float64 numbers."""
    if expr.is_number and not expr.is_Integer:
        sym = sympy.Symbol(f"_c{len(found)}")
        found[sym] = expr
        return sym
    if not expr.args:
        return expr
    return expr.func(*(_constants_as_symbols(a, found) for a in expr.args))


def lambdify_longdouble(expression: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A longdouble callable s(x) for an activation expression built from +, *, powers,
    the functions NumPy evaluates in longdouble and erf, erfc; None for anything else.
    Its constants (1/2, sqrt(2), pi, ...) enter as longdouble values from 30 digits."""
    from .expressions import U, parse_activation_expression

    expr = parse_activation_expression(expression)
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Symbol, sympy.Number, sympy.NumberSymbol, sympy.Add,
                             sympy.Mul, sympy.Pow, *_NATIVE)):
            continue
        if type(node).__name__ not in _ADDED:
            return None
    found: dict = {}
    body = _constants_as_symbols(expr, found)
    values = [LD(str(sympy.N(c, 30))) for c in found.values()]
    fn = sympy.lambdify([U, *found], body, modules=[_ADDED, "numpy"])

    def call(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=LD)
        out = np.asarray(fn(x, *values), dtype=LD)
        return out if out.shape == x.shape else np.broadcast_to(out, x.shape)

    return call
