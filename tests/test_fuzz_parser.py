"""The expression parser fed random and hostile text: a SymPy expression or a clear
InvalidInputError, quickly, and nothing ever executed (hypothesis; see test_fuzz_duals)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from hgmntk.errors import InvalidInputError
from hgmntk.expressions import parse_activation_expression

HOSTILE = [
    "__import__('os').system('touch {flag}')",
    "u.__class__.__mro__",
    "exec('open(\"{flag}\", \"w\")')",
    "eval('1')*u",
    "getattr(u, 'func')",
    "system(\"touch {flag}\")",  # Singular / Asir syntax
    "u; import os",
    "lambda: u",
    "[u for u in ().__class__.__bases__]",
    "u\x00",
    "u\u200b + 1",
    "\u0075",  # a unicode escape of u itself: fine
    "9**9**9*u",
    "u**(10**10)",
    "exp(exp(exp(1000)))*u",
    "(" * 400 + "u" + ")" * 400,
    "u" + "+u" * 5000,
    "Piecewise((u, u > 0), (u, ))",
    "Heaviside(u)*",
    "1/(u-u)",
    "sin(u)(u)",
    "u >= 0",
    "True",
    "Symbol('x')*u",
    "Function('f')(u)",
]


def _parse(text: str):
    start = time.perf_counter()
    try:
        expr = parse_activation_expression(text)
    except InvalidInputError as exc:
        assert str(exc)
        expr = None
    assert time.perf_counter() - start < 5.0, text[:80]
    if expr is not None:
        assert isinstance(expr, sympy.Expr)
        assert expr.free_symbols <= {sympy.Symbol("u", real=True)}
    return expr


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_strings_end_in_a_value_or_a_clear_error(template, tmp_path):
    flag = tmp_path / "executed"
    _parse(template.replace("{flag}", str(flag)))
    assert not flag.exists()


def test_unicode_escape_of_u_is_just_u():
    assert _parse("\u0075") == sympy.Symbol("u", real=True)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("u()+-*/^.,<>= 0123456789eEpisnxaHvdt_'\"[]{};:")),
               max_size=60))
def test_random_formula_like_text(text):
    _parse(text)


@settings(max_examples=200)
@given(st.text(max_size=80))
def test_random_unicode_text(text):
    _parse(text)


def test_nothing_was_written_next_to_the_tests():
    here = Path(__file__).parent
    assert not any(p.name == "executed" for p in here.iterdir())
    assert os.path.basename(__file__) == "test_fuzz_parser.py"
