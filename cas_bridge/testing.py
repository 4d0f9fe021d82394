"""Helpers for tests that need a computer algebra system (for hgmntk and plugin authors).

``HGMNTK_REQUIRE_CAS=1`` turns "Singular/Macaulay2 missing" skips into failures (for CI
machines that are supposed to have them), and with ``CI`` set also "Risa/Asir missing"
(scripts/run-tests.sh provides it in CI from the test tool in ../shared/tools);
``HGMNTK_REQUIRE_CAS=all`` always requires all three, and a comma-separated list
(``singular,asir``) requires exactly those.
"""

from __future__ import annotations

import os
from fractions import Fraction
from functools import cache

from .weyl import UD, Operator, parse_operator

#: Backends that ``HGMNTK_REQUIRE_CAS=1`` requires (the ones with Debian packages).
PACKAGED = ("singular", "macaulay2")


def required_cas() -> set[str]:
    """The backend names that must be present according to ``HGMNTK_REQUIRE_CAS``."""
    value = os.environ.get("HGMNTK_REQUIRE_CAS", "").strip().lower()
    if value in ("", "0", "no", "false"):
        return set()
    if value in ("1", "yes", "true"):
        return {*PACKAGED, "asir"} if os.environ.get("CI") else set(PACKAGED)
    if value == "all":
        return {*PACKAGED, "asir"}
    return {s.strip() for s in value.split(",") if s.strip()}


def require_backend(name: str, backend=None):
    """The usable backend ``name``; pytest-skip (or fail, if required) with the reason."""
    import pytest

    if backend is None:
        from .backends import BUILTIN_BACKENDS

        backend = next(b for b in BUILTIN_BACKENDS if b.name == name)
    status = backend.probe()
    if not status.usable:
        msg = f"backend {name!r} not usable: {status.reason}"
        if name in required_cas():
            pytest.fail(msg + " (HGMNTK_REQUIRE_CAS requires it)", pytrace=False)
        pytest.skip(msg)
    return backend


def normalized(ops) -> frozenset[Operator]:
    """Operators scaled so that their largest term (by exponent tuple) has coefficient 1.

    Two lists of operators that agree up to non-zero scalar factors per element (as two
    reduced Groebner bases of one ideal do) give equal sets.
    """
    out = set()
    for op in ops:
        if op.is_zero():
            continue
        c = op.terms[max(op.terms)]
        out.add(Operator(op.alg, {k: v / Fraction(c) for k, v in op.terms.items()}))
    return frozenset(out)


#: Test activations: annihilator in Q[u]<d> and the holonomic rank of the 2-D system
#: (MATH.md sections 2 and 4; CAS.md timings).  GeLU takes a minute per CAS: mark it slow.
ACTIVATIONS: dict[str, tuple[str, int]] = {
    "relu": ("u*d - 1", 2),
    "step": ("u*d", 2),
    "sin": ("d^2 + 1", 2),
    "erf": ("d^2 + u*d", 2),
    "resin": ("u*d^2 + u", 5),
    "gelu": ("d^3 + 2*u*d^2 + u^2*d - u", 5),
}

#: The ReLU restriction ideal of MATH.md section 4.
RELU_IDEAL_TEXT = ("2*x11*d11 + x12*d12 + 2", "x12*d12 + 2*x22*d22 + 2", "4*d11*d22 - d12^2")


@cache
def restriction(backend_name: str, activation: str) -> tuple[Operator, ...]:
    """Restriction ideal of ``activation`` x itself by a built-in backend (cached per run)."""
    from .backends import BUILTIN_BACKENDS

    backend = next(b for b in BUILTIN_BACKENDS if b.name == backend_name)
    ann = [parse_operator(UD, ACTIVATIONS[activation][0])]
    return tuple(backend.restriction_ideal(ann, ann))
