"""Singular backend: restriction ideals (dmodapp.lib) and Groebner bases (slimgb).

Skipped with the reason when Singular is missing; ``HGMNTK_REQUIRE_CAS=1`` makes that a
failure.
"""

from __future__ import annotations

import pytest

from hgmntk.cas_bridge.backend import block_standard_monomials
from hgmntk.cas_bridge.testing import (
    ACTIVATIONS,
    RELU_IDEAL_TEXT,
    normalized,
    require_backend,
    restriction,
)
from hgmntk.cas_bridge.weyl import UD, XD, parse_operator

pytestmark = pytest.mark.singular

RELU_IDEAL = [parse_operator(XD, t) for t in RELU_IDEAL_TEXT]


@pytest.fixture(scope="module")
def singular():
    return require_backend("singular")


def test_probe_reports_version(singular):
    status = singular.probe()
    assert status.usable and status.version and status.version[0].isdigit()


def test_relu_ideal_is_the_known_one(singular):
    ideal = restriction("singular", "relu")
    assert singular.same_ideal(ideal, RELU_IDEAL)
    # the comparison discriminates: the Heaviside ideal (constants 1) is another ideal
    step = [
        parse_operator(XD, t)
        for t in ("2*x11*d11 + x12*d12 + 1", "x12*d12 + 2*x22*d22 + 1", "4*d11*d22 - d12^2")
    ]
    assert not singular.same_ideal(ideal, step)
    assert singular.same_ideal(restriction("singular", "step"), step)


@pytest.mark.parametrize("activation", ["relu", "step", "sin", "erf", "resin"])
def test_rank(singular, activation):
    gb = singular.groebner_basis(restriction("singular", activation), order="block")
    assert len(block_standard_monomials(gb)) == ACTIVATIONS[activation][1]
    # a reduced Groebner basis is a fixed point
    red = singular.groebner_basis(gb, order="block", reduced=True)
    assert normalized(singular.groebner_basis(red, order="block", reduced=True)) == normalized(red)
    assert block_standard_monomials(red) == block_standard_monomials(gb)


def test_relu_block_basis_standard_monomials(singular):
    gb = singular.groebner_basis(RELU_IDEAL, order="block", reduced=True)
    assert block_standard_monomials(gb) == [(0, 0, 0), (0, 0, 1)]


@pytest.mark.slow
def test_gelu_rank(singular):
    gb = singular.groebner_basis(restriction("singular", "gelu"), order="block")
    assert len(block_standard_monomials(gb)) == ACTIVATIONS["gelu"][1]


@pytest.mark.parametrize("activation", ["relu", "step", "sin", "erf", "resin"])
def test_pure_python_engine_gives_the_same_ideal(singular, activation):
    """The pure-Python engine (integration by parts) against Singular's restriction."""
    from hgmntk.cas_bridge.backends import SympyBackend

    engine = SympyBackend()
    status = engine.probe()
    if not status.usable:
        pytest.skip(f"pure-Python engine: {status.reason}")
    ann = [parse_operator(UD, ACTIVATIONS[activation][0])]
    ideal = engine.restriction_ideal(ann, ann)
    assert singular.same_ideal(ideal, restriction("singular", activation))
