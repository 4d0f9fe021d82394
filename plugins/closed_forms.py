"""Closed forms of the duals of the rectified monomials u^k Y(u), k = 0, 1 (Cho and Saul 2009).

With theta = arccos(c / sqrt(ab)) in [0, pi] (computed as atan2(sqrt(det), c)) and
pi - theta computed directly as atan2(sqrt(det), -c):

- E[relu(u) relu(v)] = sqrt(ab) / (2 pi) (sin theta + (pi - theta) cos theta),
- E[Y(u) Y(v)]       = (pi - theta) / (2 pi),
- E[delta(u) delta(v)] = 1 / (2 pi sqrt(det)).

Each takes a :class:`~hgmntk.covariance.Covariances` batch and returns an array.
"""

from __future__ import annotations

import numpy as np

from hgmntk.covariance import Covariances


def _pi(x: np.ndarray):
    """pi in the precision of x (numpy longdouble keeps its extra digits)."""
    return np.arctan2(np.zeros((), dtype=x.dtype), -np.ones((), dtype=x.dtype))


def relu_relu(cov: Covariances) -> np.ndarray:
    """sqrt(ab)/(2 pi) * (sin t + (pi - t) cos t)."""
    t = cov.theta
    pi = _pi(t)
    sin_t = np.sqrt(cov.det / (cov.a * cov.b))
    return np.sqrt(cov.a * cov.b) / (2 * pi) * (sin_t + cov.psi * np.cos(t))


def step_step(cov: Covariances) -> np.ndarray:
    """(pi - t) / (2 pi)."""
    psi = cov.psi  # pi - theta, accurate near rho = -1
    return psi / (2 * _pi(psi))


def delta_delta(cov: Covariances) -> np.ndarray:
    """1 / (2 pi sqrt(det))."""
    with np.errstate(divide="ignore"):
        return 1.0 / (2 * _pi(cov.det) * np.sqrt(cov.det))
