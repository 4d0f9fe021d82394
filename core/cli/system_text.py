"""Text of a Pfaffian system for ``hgmntk activations show``, straight from its JSON.

A stored system (see :mod:`hgmntk.system`) writes each P_i as a matrix of polynomial
numerators over one denominator ``constant * prod_k f_k^e_k``.  These helpers print it in
that form, in SymPy syntax, without parsing a fraction or calling SymPy: gelu's systems
(2.6 MB of JSON, entries of 10^5 characters) print in well under a second, where building
and cancelling SymPy rational functions took minutes.  :func:`summary` gives the sizes that
tell a reader what the matrices are like when they are too large to read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Lines (an ideal generator, a factor) longer than this are cut unless --full.
SHORT = 400
#: Matrices whose entries hold more characters than this are summarised unless --full.
SHORT_MATRIX = 2000


def monomial(exponents: Sequence[int], variables: Sequence[str]) -> str:
    """(i, j, k) -> 'd11^i d12^j d22^k' (zero exponents left out, '1' for the constant)."""
    names = [("d" + v[1:]) if v.startswith("x") else f"d{v}" for v in variables]
    parts = [n if e == 1 else f"{n}^{e}" for n, e in zip(names, exponents, strict=True) if e]
    return " ".join(parts) or "1"


def nonzero_terms(terms: Sequence) -> list:
    """The terms of a JSON polynomial whose coefficient is not zero ('0', '-0', '0/3')."""
    return [t for t in terms if float(str(t[0]).split("/")[0]) != 0]


def polynomial(terms: Sequence, variables: Sequence[str]) -> str:
    """The JSON polynomial [[coefficient, exponents], ...] as SymPy text ('0' if empty)."""
    out = []
    for coef, exps in nonzero_terms(terms):
        c = str(coef)
        negative = c.startswith("-")
        c = c.lstrip("-")
        powers = [v if e == 1 else f"{v}**{e}" for v, e in zip(variables, exps, strict=True) if e]
        if powers:
            body = "*".join(([] if c == "1" else [c]) + powers)
        else:
            body = c
        out.append(("- " if negative else "+ ") + body)
    if not out:
        return "0"
    text = " ".join(out)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def degree(terms: Sequence) -> int:
    """Total degree of a JSON polynomial (-1 for zero)."""
    return max((sum(int(e) for e in exps) for _, exps in nonzero_terms(terms)), default=-1)


def denominator(matrix: Mapping, factor_names: Sequence[str]) -> str:
    """'c * f0 * f2**3' for a stored matrix's common denominator."""
    parts = [] if str(matrix.get("constant", "1")) == "1" else [str(matrix["constant"])]
    for k, e in matrix.get("denominator", []):
        parts.append(factor_names[k] if e == 1 else f"{factor_names[k]}**{e}")
    return " * ".join(parts) or "1"


def summary(system: Mapping) -> dict[str, Any]:
    """Sizes of a stored system: per matrix the nonzero entries, terms and degrees."""
    variables = system["variables"]
    factors = system.get("factors", [])
    matrices = {}
    for v, m in zip(variables, system["pfaffian"], strict=True):
        entries = [nonzero_terms(e) for row in m["numerators"] for e in row]
        nonzero = [e for e in entries if e]
        den_degree = sum(degree(factors[k]) * e for k, e in m.get("denominator", []))
        matrices[v] = {
            "nonzero_entries": len(nonzero),
            "entries": len(entries),
            "numerator_terms": sum(len(e) for e in nonzero),
            "numerator_degree": max((degree(e) for e in nonzero), default=-1),
            "denominator_degree": den_degree,
        }
    return {
        "denominator_factors": [
            {"degree": degree(f), "terms": len(nonzero_terms(f))} for f in factors
        ],
        "matrices": matrices,
        "ideal_characters": sum(len(g) for g in system.get("ideal", [])),
    }


def factor_names(system: Mapping) -> list[str]:
    """Names f0, f1, ... of the shared denominator factors."""
    return [f"f{k}" for k in range(len(system.get("factors", [])))]


def matrix_rows(system: Mapping, index: int) -> list[list[str]]:
    """The numerators of P_(variables[index]) as SymPy text, row by row."""
    variables = system["variables"]
    return [
        [polynomial(e, variables) for e in row] for row in system["pfaffian"][index]["numerators"]
    ]


def shorten(text: str, limit: int = 160) -> str:
    """``text`` cut to ``limit`` characters with a note of its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} ... ({len(text)} characters)"


def write_system(system: Mapping, write, *, full: bool) -> None:
    """Write the ideal, base point, initial values and Pfaffian matrices of one dual.

    Lines longer than :data:`SHORT` characters are cut (with their length) and matrices
    longer than :data:`SHORT_MATRIX` summarised by their sizes, unless ``full``; the
    matrices are printed as stored, numerators over one denominator.
    """
    variables = system["variables"]
    monomials = [monomial(m, variables) for m in system["standard_monomials"]]
    write(f"  standard monomials: {', '.join(monomials)}\n")
    ideal = system.get("ideal", [])
    if ideal:
        write(f"  ideal ({len(ideal)} generators):\n")
        for g in ideal:
            write(f"    {g if full or len(g) <= SHORT else shorten(g)}\n")
    bp = ", ".join(f"{k} = {v}" for k, v in zip(variables, system["base_point"], strict=True))
    write(f"  base point: {bp}\n")
    write("  initial values F(base point):\n")
    for m, v in zip(monomials, system["initial_values"], strict=True):
        write(f"    {m:<14} {v}\n")
    sizes = summary(system)
    names = factor_names(system)
    write(
        "  Pfaffian matrices dF/dx = P(x) F, each as numerators N over one denominator "
        "(entries not listed are 0):\n"
    )
    for name, f, size in zip(
        names, system.get("factors", []), sizes["denominator_factors"], strict=True
    ):
        text = polynomial(f, variables)
        shown = text if full or len(text) <= SHORT else shorten(text)
        write(
            f"    {name} = {shown}   (degree {size['degree']}, {_count(size['terms'], 'term')})\n"
        )
    summarised = False
    for i, v in enumerate(variables):
        m = system["pfaffian"][i]
        s = sizes["matrices"][v]
        write(
            f"    P_{v} = N / ({denominator(m, names)}): {s['nonzero_entries']} of "
            f"{s['entries']} entries nonzero, {_count(s['numerator_terms'], 'term')}, "
            f"numerator degree <= {s['numerator_degree']}, "
            f"denominator degree {s['denominator_degree']}\n"
        )
        rows = matrix_rows(system, i)
        if not full and sum(len(e) for row in rows for e in row) > SHORT_MATRIX:
            summarised = True
            continue
        for r, row in enumerate(rows):
            for c, entry in enumerate(row):
                if entry != "0":
                    write(f"      N[{r},{c}] = {entry}\n")
    if summarised:
        write("    (large matrices summarised: --full prints every entry)\n")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
