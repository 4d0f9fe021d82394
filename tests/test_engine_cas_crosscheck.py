"""Cross-check: the engine's IBP systems equal those from Singular's restriction ideal.

The restriction ideal (Oaku-Takayama, computed by Singular) goes through
``pfaffian_from_groebner_basis`` (after Singular's block-order Groebner basis) and through
``pfaffian_from_ideal`` (our own Groebner basis by Macaulay matrices); both must give the
same standard monomials and the same matrices, as exact rational functions, as
``derive_pfaffian``.  Skipped when Singular is not installed.
"""

from __future__ import annotations

import pytest

from hgmntk.cas_bridge.pfaffian import (
    derive_pfaffian,
    matrix_entries,
    pfaffian_from_groebner_basis,
    pfaffian_from_ideal,
)
from hgmntk.cas_bridge.weyl import UD, parse_operator

pytestmark = pytest.mark.singular


@pytest.fixture(scope="module")
def singular():
    from hgmntk.cas_bridge.backends import SingularBackend

    backend = SingularBackend()
    status = backend.probe()
    if not status.usable:
        pytest.skip(f"Singular not usable: {status.reason}")
    return backend


def _same(a, b) -> bool:
    return a.standard_monomials == b.standard_monomials and all(
        matrix_entries(a.matrices[i], a.factors) == matrix_entries(b.matrices[i], b.factors)
        for i in range(3)
    )


@pytest.mark.parametrize(
    "text",
    [
        "u*d - 1",
        "d^2 + 1",
        "d^2 + 2*u*d",
        pytest.param("u*d^2 + u", marks=pytest.mark.slow),
        # Singular's restriction takes 60-130 s here; its block-order Groebner basis of the
        # result did not finish in 300 s, so only pfaffian_from_ideal is compared.
        pytest.param("d^3 + 2*u*d^2 + u^2*d - u", marks=pytest.mark.slow),
    ],
)
def test_ibp_equals_singular_restriction(singular, text):
    ann = [parse_operator(UD, text)]
    ideal = singular.restriction_ideal(ann, ann, timeout=600)
    ibp = derive_pfaffian(ann, ann)
    assert _same(pfaffian_from_ideal(ideal), ibp)


@pytest.mark.parametrize("text", ["u*d - 1", "d^2 + 1", "d^2 + 2*u*d"])
def test_singular_groebner_basis_route(singular, text):
    ann = [parse_operator(UD, text)]
    ideal = singular.restriction_ideal(ann, ann, timeout=600)
    gb = singular.groebner_basis(ideal, timeout=600)
    assert _same(pfaffian_from_groebner_basis(gb), derive_pfaffian(ann, ann))
