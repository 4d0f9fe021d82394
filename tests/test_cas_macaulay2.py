"""Macaulay2 backend, cross-checked against Singular: equal restriction ideals.

Two ideals are compared in two independent ways: (1) mutual reduction in Singular (each
ideal's generators reduce to zero modulo a Groebner basis of the other), and (2) the reduced
Groebner bases for the block order, computed one in each CAS, are equal as sets of
operators normalised to leading coefficient 1.
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
from hgmntk.cas_bridge.weyl import XD, parse_operator

pytestmark = pytest.mark.macaulay2

RELU_IDEAL = [parse_operator(XD, t) for t in RELU_IDEAL_TEXT]


@pytest.fixture(scope="module")
def m2():
    return require_backend("macaulay2")


def test_probe_reports_version(m2):
    status = m2.probe()
    assert status.usable and status.version and status.version[0].isdigit()


def test_relu_ideal_and_rank(m2):
    ideal = restriction("macaulay2", "relu")
    gb = m2.groebner_basis(ideal, order="block")
    assert normalized(gb) == normalized(m2.groebner_basis(RELU_IDEAL, order="block"))
    assert m2.holonomic_rank(ideal) == 2
    assert len(block_standard_monomials(gb)) == 2


@pytest.mark.singular
@pytest.mark.parametrize("activation", ["relu", "step", "sin", "erf", "resin"])
def test_same_ideal_as_singular(m2, activation):
    singular = require_backend("singular")
    mine = restriction("macaulay2", activation)
    theirs = restriction("singular", activation)
    assert singular.same_ideal(mine, theirs)
    gb_m2 = m2.groebner_basis(mine, order="block")
    gb_singular = singular.groebner_basis(theirs, order="block", reduced=True)
    assert normalized(gb_m2) == normalized(gb_singular)
    assert len(block_standard_monomials(gb_m2)) == ACTIVATIONS[activation][1]


@pytest.mark.slow
@pytest.mark.singular
def test_gelu_same_ideal_as_singular(m2):
    """GeLU (about 1.5 min per CAS): equal ideals by mutual reduction, rank 5."""
    singular = require_backend("singular")
    mine = restriction("macaulay2", "gelu")
    assert singular.same_ideal(mine, restriction("singular", "gelu"))
    gb = singular.groebner_basis(mine, order="block")
    assert len(block_standard_monomials(gb)) == ACTIVATIONS["gelu"][1]


def test_macaulay2_session_faults(m2):
    """The interactive bridge on a real Macaulay2: answers, errors, a hang, a restart."""
    from hgmntk.cas_bridge.process import CASSession, macaulay2_dialect
    from hgmntk.errors import CASError

    session = CASSession(macaulay2_dialect(), timeout=60)
    try:
        assert session.eval("R = QQ[x,y]; << toString((x+y)^2) << endl;") == "x^2+2*x*y+y^2"
        with pytest.raises(CASError, match="error"):
            session.eval('1/"a"')
        assert session.eval("<< toString(1+2) << endl;") == "3"
        with pytest.raises(CASError, match="no answer within 2 s"):
            session.eval("while true do 1", timeout=2)
        assert session.eval("<< toString(2+2) << endl;") == "4"
    finally:
        session.close()
