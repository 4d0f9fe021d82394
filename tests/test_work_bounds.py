"""Bounds on work: a target the HGM cannot reach ends in a clear IntegrationError, soon.

The Pfaffian systems of resin and elu turn stiff as the variances grow (solutions like
exp(-u^2/2) beside the wanted one): the explicit ODE would need about a steps and the
Taylor continuation thousands of bits.  Such targets are refused up front from the
stiffness of their path (:func:`hgmntk.hgm.diagonal_stiffness`), and the precise path
stops after PRECISE_TIME_LIMIT seconds.  Before, resin at a = b = 1e10 ran for minutes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import hgmntk
from hgmntk import continuation
from hgmntk.covariance import Covariances
from hgmntk.dual_activation import get_activation
from hgmntk.errors import IntegrationError
from hgmntk.hgm import DIAGONAL_MAX_STIFFNESS, diagonal_stiffness


@pytest.mark.parametrize("method", ["auto", "hgm"])
@pytest.mark.parametrize("variance", [1e6, 1e10, 1e150])
def test_stiff_targets_are_refused_at_once(method, variance):
    start = time.monotonic()
    with pytest.raises(IntegrationError, match=r"(?s)cannot reach \(a, b, c\).*stiff.*rescale"):
        hgmntk.dual("resin", variance, variance, 0.5 * variance, method=method)
    assert time.monotonic() - start < 20  # the refusal needs no ODE step (was minutes)


def test_stiffness_measures_the_step_count():
    """S grows like a log a for resin and elu and stays small for gelu and erf; the ODE's
    step count on a path is about S / 2 where S rules (here resin at 1e3: S = 985,
    1846 steps at 1e-14 include the accuracy-limited ones)."""
    a = np.array([1.0, 1e2, 1e4, 1e10])
    for name, low, high in (("resin", 1, 2e10), ("elu", 1, 2e10), ("gelu", 1, 100),
                            ("erf", 0.5, 100)):
        s = diagonal_stiffness(get_activation(name).duals["ss"], a, a)
        assert np.all(np.diff(s) > 0) and low <= s[0] and s[-1] <= high, (name, s)
    resin = diagonal_stiffness(get_activation("resin").duals["ss"], a, a)
    assert resin[2] == pytest.approx(1e4, rel=0.05) and resin[3] > 1e9
    assert resin[1] < DIAGONAL_MAX_STIFFNESS < resin[3]


def test_precise_path_stops_at_its_time_limit(monkeypatch):
    """The precise continuation to resin at a = b = 1000 takes about 2.5 s; with a limit
    of 0.2 s it ends in an IntegrationError naming the target, promptly."""
    monkeypatch.setattr(continuation, "PRECISE_TIME_LIMIT", 0.2)
    cov = Covariances.from_arrays(np.array([1000.0]), np.array([1000.0]), np.array([500.0]))
    start = time.monotonic()
    with pytest.raises(IntegrationError, match=r"did not settle within 0.2 s"):
        continuation.precise_values(get_activation("resin"), "ss", cov, rtol=1e-13)
    assert time.monotonic() - start < 10


def test_precise_path_refuses_stiff_targets(monkeypatch):
    cov = Covariances.from_arrays(np.array([1e4]), np.array([1e4]), np.array([5e3]))
    start = time.monotonic()
    with pytest.raises(IntegrationError, match=r"cannot reach \(a, b, c\) = \(10000, 10000, 5000"):
        continuation.precise_values(get_activation("resin"), "ss", cov, rtol=1e-13)
    assert time.monotonic() - start < 10  # it used to run 50 s and then fail
