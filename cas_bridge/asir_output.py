"""Reading the answers of Risa/Asir: one record per line, never Asir's polynomial print.

Asir prints a polynomial recursively, e.g. ``(-2*d22^2*x22^2-7*d22*x22-3)*x11+...``:
coefficients are parenthesised polynomials in the other variables and d-variables may
stand left of x-variables, although the text means the normally ordered operator.  The
helpers of ``asir_scripts/hgmntk.rr`` therefore print every term on its own line with
exact fields, read off Asir's distributed polynomials (``dp_ptod``, ``dp_hc``, ``dp_ht``,
``dp_rest``)::

    HGMNTK_T k c e1 ... en ;        term c v^e of operator k (v: the variables asked for)
    HGMNTK_S k e1 e2 e3 ;           standard monomial k of a Pfaffian system
    HGMNTK_N i k l c e1 e2 e3 ;     numerator term of entry (k, l) of Pfaffian matrix i
    HGMNTK_D i k l c e1 e2 e3 ;     denominator term of that entry
    HGMNTK_END terms N ;            N records T were printed
    HGMNTK_END pfaffian r N ;       rank r, N records N and D were printed

c is ``rtostr`` of a rational number (``-3/7``).  A record is found by its tag and the
closing `` ;`` anywhere in a line: Asir's own messages (timings printed without a newline,
``redeclaration of ...`` warnings) may stand before it on the same line.  The END record
carries the count, so a truncated answer is an error, never a smaller ideal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from hgmntk.errors import CASError

from .ratfun import ZERO, RatFun, zpoly_from_fraction_terms
from .weyl import Operator, WeylAlgebra

_RECORD = re.compile(r"HGMNTK_([A-Z]+) ([-0-9a-z/ ]*?) ;")
_RATIONAL = re.compile(r"-?\d+(?:/\d+)?")


def records(output: str) -> list[tuple[str, list[str]]]:
    """All records (tag, fields) in the order printed."""
    return [(m.group(1), m.group(2).split()) for m in _RECORD.finditer(output)]


def _rational(text: str, name: str) -> Fraction:
    if not _RATIONAL.fullmatch(text):
        raise CASError(f"{name} printed the coefficient {text[:80]!r}, not a rational number")
    return Fraction(text)


def _exponents(fields: Sequence[str], n: int, name: str) -> tuple[int, ...]:
    if len(fields) != n or not all(f.isdigit() for f in fields):
        raise CASError(f"{name} printed the exponent vector {list(fields)}, expected {n} numbers")
    return tuple(int(f) for f in fields)


def _end(recs: list[tuple[str, list[str]]], kind: str, output: str, name: str) -> list[str]:
    ends = [f[1:] for tag, f in recs if tag == "END" and f and f[0] == kind]
    if len(ends) != 1:
        raise CASError(
            f"{name} gave no complete answer (no record 'HGMNTK_END {kind}'). Output tail:\n"
            f"{output[-2000:]}"
        )
    return ends[0]


def parse_operators(output: str, alg: WeylAlgebra, *, name: str = "Risa/Asir") -> list[Operator]:
    """The non-zero operators of records ``T`` (exponents over ``alg.xs + alg.ds``)."""
    recs = records(output)
    (count,) = _end(recs, "terms", output, name)
    terms: dict[int, dict] = {}
    found = 0
    for tag, f in recs:
        if tag != "T":
            continue
        found += 1
        if len(f) < 2 or not f[0].isdigit():
            raise CASError(f"{name} printed a malformed term record {f}")
        e = _exponents(f[2:], 2 * alg.n, name)
        op = terms.setdefault(int(f[0]), {})
        key = (e[: alg.n], e[alg.n :])
        op[key] = op.get(key, Fraction(0)) + _rational(f[1], name)
    if found != int(count):
        raise CASError(f"{name} announced {count} terms but printed {found} (output damaged)")
    ops = [Operator(alg, terms[k]) for k in sorted(terms)]
    return [op for op in ops if not op.is_zero()]


def parse_pfaffian(
    output: str, order: Sequence[int], *, name: str = "Risa/Asir"
) -> tuple[list[tuple[int, ...]], list[list[list[RatFun]]]]:
    """Standard monomials and Pfaffian matrices from records ``S``, ``N``, ``D``.

    The script was given the variables x_i for i in ``order`` (indices into
    (x11, x12, x22)): exponents and matrix numbers are printed in that order and are put
    back into hgmntk's.  Returns (monomials, entries) with ``entries[i][k][l]`` the exact
    rational function P_i[k][l] of d/dx_i m_k = sum_l P_i[k][l] m_l (zero where no record
    names it).
    """
    n = len(order)
    if sorted(order) != list(range(n)):
        raise ValueError(f"order {order} is not a permutation")

    def ours(e: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(e[order.index(i)] for i in range(n))

    recs = records(output)
    rank_text, count = _end(recs, "pfaffian", output, name)
    r = int(rank_text)
    monomials: dict[int, tuple[int, ...]] = {}
    parts: dict[tuple[int, int, int], tuple[dict, dict]] = {}
    found = 0
    for tag, f in recs:
        if tag == "S":
            monomials[int(f[0])] = ours(_exponents(f[1:], n, name))
        elif tag in ("N", "D"):
            found += 1
            if len(f) != 4 + n or not all(x.isdigit() for x in f[:3]):
                raise CASError(f"{name} printed a malformed Pfaffian record {f}")
            i, k, l = (int(x) for x in f[:3])
            if i >= n or k >= r or l >= r:
                raise CASError(f"{name} printed an entry {(i, k, l)} outside {n} matrices {r}x{r}")
            num, den = parts.setdefault((order[i], k, l), ({}, {}))
            poly = num if tag == "N" else den
            e = ours(_exponents(f[4:], n, name))
            poly[e] = poly.get(e, Fraction(0)) + _rational(f[3], name)
    if found != int(count) or sorted(monomials) != list(range(r)):
        raise CASError(f"{name} printed an incomplete Pfaffian system (output damaged)")
    zero = RatFun(ZERO)
    entries = [[[zero] * r for _ in range(r)] for _ in range(n)]
    for (i, k, l), (num, den) in parts.items():
        pn, cn = zpoly_from_fraction_terms(num)
        pd, cd = zpoly_from_fraction_terms(den)
        if pd.is_zero():
            raise CASError(f"{name} printed a zero denominator in entry {(i, k, l)}")
        entries[i][k][l] = RatFun(pn * cd, pd * cn)
    return [monomials[k] for k in range(r)], entries
