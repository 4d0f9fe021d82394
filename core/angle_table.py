"""A table of the angle function of a positively homogeneous dual, for the fast path.

For a pair of degrees (k, k), E(a, b, c) = (ab)^(k/2) e(theta) with theta = arccos(rho)
(:func:`hgmntk.hgm.angle_sweep` integrates e along one trajectory).  The table holds e on
``PANELS`` equal panels of [0, pi] as Chebyshev interpolants of degree ``DEGREE - 1``,
built from the trajectory's dense output; every panel is checked at points between its
nodes, and that check plus the trajectory's own error estimate is the table's error
bound, taken as absolute (relative to max |e|).  Entries where that bound is not small
against the value (e(theta) -> 0, e.g. relu-like duals at rho -> -1) get an infinite bound
and go to the careful path, and so do the first and last panel (theta or pi - theta below
pi / PANELS), where the trajectory is not evaluated.
"""

from __future__ import annotations

import numpy as np

from .hgm import angle_sweep
from .integrator import PairBlock
from .system import PfaffianSystem

PANELS = 64
DEGREE = 16
#: Relative (to max |e|) table error above which the table is not used at all.
MAX_TABLE_ERROR = 1e-14


class AngleTable:
    """e(theta) of a homogeneous dual as piecewise Chebyshev interpolants (module
    docstring); ``evaluate(theta)`` -> (e, absolute error bound, de/dtheta)."""

    def __init__(self, system: PfaffianSystem, rtol: float = 1e-12):
        width = np.pi / PANELS
        nodes = np.cos(np.pi * (np.arange(DEGREE) + 0.5) / DEGREE)  # Chebyshev points
        centres = width * (np.arange(PANELS) + 0.5)
        inner = slice(1, PANELS - 1)  # the end panels are left to the careful path
        theta = (centres[inner, None] + 0.5 * width * nodes[None, :]).ravel()
        res = angle_sweep(system, theta, np.pi - theta, rtol=rtol)
        values = np.asarray(res.values, dtype=float).reshape(PANELS - 2, DEGREE)
        self.coeffs = np.zeros((PANELS, DEGREE))
        self.coeffs[inner] = np.polynomial.chebyshev.chebfit(nodes, values.T, DEGREE - 1).T
        # check between the nodes
        mid = np.cos(np.pi * np.arange(1, DEGREE) / DEGREE)
        check_theta = (centres[inner, None] + 0.5 * width * mid[None, :]).ravel()
        check = angle_sweep(system, check_theta, np.pi - check_theta, rtol=rtol)
        table = np.array([
            np.polynomial.chebyshev.chebval(mid, self.coeffs[p]) for p in range(1, PANELS - 1)
        ]).ravel()
        scale = float(np.max(np.abs(values)))
        self.error = float(
            np.max(np.abs(table - np.asarray(check.values, dtype=float)))
            + np.max(res.error) + np.max(check.error)
        )
        self.scale = scale
        self.width = width
        self.usable = self.error <= MAX_TABLE_ERROR * max(scale, 1e-300)

    def evaluate(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(e(theta), absolute error bound, |de/dtheta|) for float64 theta in [0, pi]."""
        panel = np.clip((theta / self.width).astype(int), 0, PANELS - 1)
        t = (theta - self.width * (panel + 0.5)) / (0.5 * self.width)
        c = self.coeffs[panel]  # (..., DEGREE)
        # Clenshaw for the value and the derivative in t
        b1 = np.zeros(theta.shape)
        b2 = np.zeros(theta.shape)
        d1 = np.zeros(theta.shape)
        d2 = np.zeros(theta.shape)
        for k in range(DEGREE - 1, 0, -1):
            d1, d2 = 2 * b1 + 2 * t * d1 - d2, d1
            b1, b2 = c[..., k] + 2 * t * b1 - b2, b1
        value = c[..., 0] + t * b1 - b2
        slope = np.abs(b1 + t * d1 - d2) / (0.5 * self.width)
        err = np.full(theta.shape, self.error + 4 * np.finfo(float).eps * self.scale)
        inside = (panel > 0) & (panel < PANELS - 1)
        err = np.where(inside & (err <= 1e-3 * np.abs(value)), err, np.inf)
        return value, err, slope


class HomogeneousBlock:
    """Block evaluator of a homogeneous dual of degrees (k, k) from an :class:`AngleTable`
    (E = (ab)^(k/2) e(theta)); for E[s's'] also the slope |dE/dc| = (ab)^(k/2)
    |e'(theta)| / (sqrt(ab) sin theta), which carries the error of c."""

    def __init__(self, table: AngleTable, degree: float, derivative: bool):
        self.table, self.degree, self.derivative = table, degree, derivative

    def __call__(self, block: PairBlock):
        theta = np.asarray(block.theta, dtype=float)
        value, err, de = self.table.evaluate(theta)
        sab = np.asarray(block.sa * block.sb, dtype=float)
        scale = sab**self.degree if self.degree else np.ones_like(sab)
        if not self.derivative:
            return scale * value, scale * err, None
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = scale * de / (sab * np.asarray(block.sin, dtype=float))
        return scale * value, scale * err, slope
