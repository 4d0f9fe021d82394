"""Real Risa/Asir (asir-contrib nk_restriction and yang): runs only where ``asir`` works.

scripts/run-tests.sh unpacks the Risa/Asir test tool from ../shared/tools when no ``asir``
is on PATH, so CI runs these for real.  Elsewhere they skip with the reason; under
``HGMNTK_REQUIRE_CAS`` (``1`` with ``CI`` set, ``all``, or a list naming ``asir``) a
missing Asir is a failure.  The bridge's process handling is tested against
tests/fake_asir in test_cas_bridge.py; ``test_transcripts_are_current`` keeps that fake
honest.  Whole derivations with Asir (duals against the reference values) are in
test_cas_backend_duals.py.

Timings on a shared 2-core machine: each Asir call starts a fresh process (about 1 s with
the libraries); restriction of ReSin about 3 s, its Pfaffian system by yang about 1.5 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hgmntk.cas_bridge.asir_output import records
from hgmntk.cas_bridge.pfaffian import pfaffian_from_ideal, same_system
from hgmntk.cas_bridge.testing import ACTIVATIONS, RELU_IDEAL_TEXT, require_backend, restriction
from hgmntk.cas_bridge.weyl import UD, XD, parse_operator
from tests.record_asir_transcripts import TRANSCRIPTS, normalise, run_real, without_contrib

pytestmark = pytest.mark.asir

RELU_IDEAL = [parse_operator(XD, t) for t in RELU_IDEAL_TEXT]


@pytest.fixture(scope="module")
def asir():
    return require_backend("asir")


def test_transcripts_are_current(asir):
    """The fake Asir's transcripts are what this Asir prints now (records compared)."""
    data = json.loads(Path(TRANSCRIPTS).read_text())
    env = asir.env()
    for case in data["cases"]:
        run_env = env if case["variant"] == "normal" else without_contrib(env)
        now = run_real(asir, case["code"], run_env)
        assert records(now["stdout"]) == records(case["stdout"]), case["code"][:80]
        if case["variant"] != "normal":  # the error message of a broken installation
            assert normalise(now["stderr"]) == case["stderr"]


def test_relu_ideal(asir):
    """Asir's generators of the ReLU restriction ideal span the ideal of MATH.md."""
    ideal = restriction("asir", "relu")
    same_system(pfaffian_from_ideal(list(ideal)), pfaffian_from_ideal(RELU_IDEAL), what="asir")


@pytest.mark.singular
@pytest.mark.parametrize("activation", ["step", "sin", "erf", "resin"])
def test_same_ideal_as_singular(asir, activation):
    singular = require_backend("singular")
    assert singular.same_ideal(restriction("asir", activation), restriction("singular", activation))


@pytest.mark.parametrize("activation", ["resin"])
def test_yang_pfaffian_equals_engine(asir, activation):
    """yang's Pfaffian system of Asir's restriction ideal is the engine's, exactly.

    For relu, step, sin and erf the derivations of test_cas_backend_duals.py make the
    same check (the derivation stops unless both systems agree); ReSin's rank 5 is here.
    """
    ideal = list(restriction("asir", activation))
    theirs = asir.pfaffian_system(ideal)
    assert theirs.rank == ACTIVATIONS[activation][1]
    mine = pfaffian_from_ideal(ideal)
    assert same_system(theirs, mine, what="asir").standard_monomials == mine.standard_monomials


def test_session_mode(asir):
    """One interpreter behind its prompt gives the batch answers (files end with end$)."""
    from hgmntk.cas_bridge.backends import AsirBackend

    session = AsirBackend(mode="session")
    try:
        ideal = session.restriction_ideal(*[[parse_operator(UD, "u*d - 1")]] * 2)
        assert ideal == list(restriction("asir", "relu"))
        assert session.pfaffian_system(ideal).rank == 2
    finally:
        session.close()


def test_batch_error_is_reported(asir):
    """An Asir error stops the script with exit status 0; the bridge still reports it."""
    from hgmntk.errors import CASError

    with pytest.raises(CASError, match="no_such_function undefined"):
        asir.run("no_such_function(1)$")
