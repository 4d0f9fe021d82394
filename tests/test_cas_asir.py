"""Real Risa/Asir (asir-contrib nk_restriction): runs only where ``asir`` is installed.

Skipped with the reason otherwise (Risa/Asir has no Debian or PyPI package);
``HGMNTK_REQUIRE_CAS=all`` (or a list naming ``asir``) makes the skip a failure.  The
bridge's handling of the Asir protocol is tested against tests/fake_asir in
test_cas_bridge.py.
"""

from __future__ import annotations

import pytest

from hgmntk.cas_bridge.testing import RELU_IDEAL_TEXT, require_backend, restriction
from hgmntk.cas_bridge.weyl import XD, parse_operator

pytestmark = pytest.mark.asir

RELU_IDEAL = [parse_operator(XD, t) for t in RELU_IDEAL_TEXT]


@pytest.fixture(scope="module")
def asir():
    return require_backend("asir")


def test_relu_ideal(asir):
    ideal = restriction("asir", "relu")
    singular = require_backend("singular")
    assert singular.same_ideal(ideal, RELU_IDEAL)


@pytest.mark.singular
@pytest.mark.parametrize("activation", ["step", "sin", "erf", "resin"])
def test_same_ideal_as_singular(asir, activation):
    singular = require_backend("singular")
    assert singular.same_ideal(restriction("asir", activation), restriction("singular", activation))
