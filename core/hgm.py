"""The holonomic gradient method: solving a Pfaffian system along paths of covariances.

Let F = (m_1 Ehat, ..., m_r Ehat) solve dF/dx_i = P_i(x) F, x = -1/2 L^-1.  We integrate the
normalised vector

    G = F * sqrt(det x) / pi = F / (2 pi sqrt(det L)),     G[0] = E[s1(u) s2(v)],

whose components are Gaussian expectations and stay bounded as L becomes singular, along
paths in the space of covariances L = [[a, c], [c, b]]:

    dG/dt = ( sum_i x_i'(t) P_i(x(t)) - (1/2) d/dt log det L(t) ) G.

Paths never leave the positive definite cone, and det L(t) is always formed as a sum of
non-negative terms from the accurate det of the target, so the determinant factor
x11 x22 - x12^2 = 1/(4 det L) of the denominators is passed to the evaluator exactly.

* :func:`diagonal_path`: from the system's base point (x12 = 0) to diag(a, b) through
  a(t) = a0 (a/a0)^t, b(t) = b0 (b/b0)^t;
* :func:`correlation_path`: from diag(a, b) to [[a, c], [c, b]] with c(t) = t c and
  det L(t) = ab (1 - t)(1 + t) + t^2 det L;
* :func:`angle_sweep`: for positively homogeneous pairs only the angle theta matters,
  E(a, b, c) = a^(k1/2) b^(k2/2) e(theta); one trajectory in theta (a = b = 1,
  c = cos theta, det L = sin^2 theta) serves every target through its dense output.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np

from .covariance import Covariances
from .diagonal_memory import DIAGONALS, DIAGONALS_MAX
from .errors import IntegrationError
from .odes import solve_batched
from .system import PfaffianSystem


@dataclass
class HGMResult:
    """Values E[s1(u)s2(v)] and an estimate of their absolute error."""

    values: np.ndarray
    error: np.ndarray


def base_covariance(system: PfaffianSystem) -> tuple[float, float, np.ndarray]:
    """(a0, b0, G0): the base point as variances and the normalised initial vector."""
    x11, x12, x22 = system.base_point_float
    if x12 != 0 or not (x11 < 0 and x22 < 0):
        raise IntegrationError(
            "the base point of a Pfaffian system must have x12 = 0, x11, x22 < 0"
        )
    g0 = system.initial_values_float * np.sqrt(x11 * x22) / np.pi
    return -0.5 / x11, -0.5 / x22, g0


def diagonal_path(
    system: PfaffianSystem, a: np.ndarray, b: np.ndarray, *, rtol: float, probe: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """G at diag(a, b) for a batch, from the base point; returns (G, error estimate).

    ``probe`` perturbs the initial vector (relative, see :func:`perturbed`); see
    :func:`remembered_diagonals`."""
    memory = DIAGONALS.get()
    if memory is None:
        return _solve_diagonal(system, a, b, rtol=rtol, probe=probe)
    entry = memory.get(id(system))
    if entry is None or entry[0] is not system:
        entry = (system, {})
        memory[id(system)] = entry
    known = entry[1]
    keys = [(rtol, probe, x, y) for x, y in zip(a.tolist(), b.tolist())]
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        if len(known) + 2 * len(missing) > DIAGONALS_MAX:
            known.clear()
        # a pair's stiffness is the same at every tolerance and probe: measured once
        pairs = [("stiffness", keys[i][2], keys[i][3]) for i in missing]
        new = [j for j, k in enumerate(pairs) if k not in known]
        if new:
            fresh = diagonal_stiffness(system, a[missing][new], b[missing][new])
            known.update(zip((pairs[j] for j in new), fresh.tolist()))
        g, err = _solve_diagonal(system, a[missing], b[missing], rtol=rtol, probe=probe,
                                 stiffness=np.array([known[k] for k in pairs]))
        for i, gi, ei in zip(missing, g, err):
            known[keys[i]] = (gi, ei)
    out = np.empty((len(keys), system.rank))
    err = np.empty(len(keys))
    for i, k in enumerate(keys):
        out[i], err[i] = known[k]
    return out, err


#: Most steps of the explicit solver on a diagonal path (about 1 ms per step and pair).
DIAGONAL_MAX_STEPS = 30_000
#: Diagonal paths stiffer than this (:func:`diagonal_stiffness`) are not tried: where
#: stiffness rules DOP853 takes S / 2.6 to S / 1.5 steps (measured, resin and elu at
#: variances 1e4..3e4), so S = 20 000 is about 13 000 steps, 10 s for one pair.
DIAGONAL_MAX_STIFFNESS = 20_000.0


def _diagonal_matrix(system: PfaffianSystem, a0: float, b0: float, la: np.ndarray,
                     lb: np.ndarray, t) -> np.ndarray:
    """M(t) of dG/dt = M(t) G on the diagonal path a(t) = a0 e^(t la), b(t) = b0 e^(t lb)."""
    at, bt = a0 * np.exp(t * la), b0 * np.exp(t * lb)
    qa, qb = system.connection_at(at, bt, np.zeros_like(at), at * bt, which=(0, 1))
    return (la * at)[:, None, None] * qa + (lb * bt)[:, None, None] * qb


def _spectral_radius(m: np.ndarray) -> np.ndarray:
    """max |eigenvalue| of each matrix of a batch (n, r, r); inf where an entry is not
    finite (the connection overflowed)."""
    out = np.full(m.shape[0], np.inf)
    finite = np.isfinite(m).all(axis=(1, 2))
    if np.any(finite):
        out[finite] = np.abs(np.linalg.eigvals(m[finite])).max(axis=1)
    return out


def diagonal_stiffness(system: PfaffianSystem, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """S = integral over t in [0, 1] of the spectral radius of M(t) on the diagonal path to
    diag(a, b), per pair: a measure of the work of any solver of the path.

    An explicit solver needs at least S / 6 steps (DOP853 is stable for h |lambda| up to
    about 6 on the negative real axis); a Taylor series about S terms in all.  The radius
    is sampled at t = 0, 1/4, ..., 1 and integrated as piecewise exponential (it grows like
    the variances, e^(t log(a/a0))).  Large variances make a system stiff where its
    solutions include exp(-u^2/2)-like ones: resin's and elu's S grows like a log a (1e4 at
    a = b = 1e4, 1e10 at 1e10); erf's and gelu's stay below 100 even at 1e10."""
    a0, b0, _ = base_covariance(system)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        la, lb = np.log(a / a0), np.log(b / b0)
        knots = np.linspace(0.0, 1.0, 5)
        radius = np.stack([_spectral_radius(_diagonal_matrix(system, a0, b0, la, lb, t))
                           for t in knots])
        r0, r1 = radius[:-1], radius[1:]
        growth = np.log(r1 / r0)
        piece = np.where(np.abs(growth) > 1e-9, (r1 - r0) / growth, r0)
    total = piece.sum(axis=0) / (len(knots) - 1)
    return np.where(np.isfinite(total), total, np.inf)


def too_stiff(system: PfaffianSystem, a, b, c) -> IntegrationError:
    """The error for a target whose path from the base point is too stiff to solve."""
    stiffness = float(diagonal_stiffness(system, np.array([float(a)]), np.array([float(b)]))[0])
    return IntegrationError(
        f"the HGM cannot reach (a, b, c) = ({float(a):.6g}, {float(b):.6g}, {float(c):.6g}): "
        f"the Pfaffian system is stiff at these variances (stiffness {stiffness:.3g} along "
        "the path from the base point, where about 1e4 is the most its solvers finish in "
        "seconds); rescale the inputs or the weight variances so that the variances stay "
        "nearer 1, or use a quadrature method (method='gauss-hermite', not exact)"
    )


def _solve_diagonal(
    system: PfaffianSystem, a: np.ndarray, b: np.ndarray, *, rtol: float, probe: float,
    stiffness: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The diagonal paths of a batch; pairs too stiff for the explicit solver
    (:func:`diagonal_stiffness`, measured here unless given, beyond
    DIAGONAL_MAX_STIFFNESS) get NaN and an infinite error estimate without being tried."""
    a0, b0, g0 = base_covariance(system)
    if probe:
        g0 = perturbed(g0, probe)
    out = np.full((a.shape[0], g0.shape[0]), np.nan)
    err = np.full(a.shape[0], np.inf)
    if stiffness is None:
        stiffness = diagonal_stiffness(system, a, b)
    easy = stiffness <= DIAGONAL_MAX_STIFFNESS
    if not np.any(easy):
        return out, err
    a, b = a[easy], b[easy]
    la, lb = np.log(a / a0), np.log(b / b0)

    def rhs(t: float, g: np.ndarray) -> np.ndarray:
        return np.einsum("nij,nj->ni", _diagonal_matrix(system, a0, b0, la, lb, t), g)

    y0 = np.broadcast_to(g0, (a.shape[0], g0.shape[0]))
    sol = solve_batched(rhs, y0, 0.0, 1.0, rtol=rtol, max_steps=DIAGONAL_MAX_STEPS)
    out[easy], err[easy] = sol.y, sol.error
    return out, err


def correlation_path(
    system: PfaffianSystem, cov: Covariances, g_diag: np.ndarray, *, rtol: float
) -> tuple[np.ndarray, np.ndarray]:
    """G at [[a, c], [c, b]] from G at diag(a, b) (c(t) = t c); returns (G, error)."""
    a, b, c, det1 = cov.a, cov.b, cov.c, cov.det
    ab = a * b

    def rhs(t: float, g: np.ndarray) -> np.ndarray:
        det = ab * (1.0 - t) * (1.0 + t) + t * t * det1
        qc = system.connection_at(a, b, t * c, det, which=(2,))[0]
        return c[:, None] * np.einsum("nij,nj->ni", qc, g)

    sol = solve_batched(rhs, g_diag, 0.0, 1.0, rtol=rtol)
    return sol.y, sol.error


def solve_generic(system: PfaffianSystem, cov: Covariances, *, rtol: float) -> HGMResult:
    """E at every (a, b, c) of a batch with det > 0: diagonal path, then correlation path."""
    g1, e1 = diagonal_path(system, cov.a, cov.b, rtol=rtol)
    stiff = ~np.isfinite(g1).all(axis=1)
    if np.any(stiff):
        i = int(np.flatnonzero(stiff)[0])
        raise too_stiff(system, cov.a[i], cov.b[i], cov.c[i])
    g2, e2 = correlation_path(system, cov, g1, rtol=rtol)
    return HGMResult(g2[:, 0], e1 + e2)


_PI_LD = np.arctan(np.longdouble(1)) * 4
_HALF_PI_LD = _PI_LD / 2


def _angle_rhs(system: PfaffianSystem, toward_zero: bool):
    """dG/d(angle) on a = b = 1 in the angle theta (toward_zero) or psi = pi - theta.

    With c = cos(theta) = -cos(psi), det = sin^2: dG/dtheta = -sin(theta) Q_c G and
    dG/dpsi = sin(psi) Q_c G.  Parametrising the upper half by psi keeps rho -> -1 exact.
    """
    one = np.ones(1, dtype=np.longdouble)
    sign = -1 if toward_zero else 1

    def rhs(angle, g: np.ndarray) -> np.ndarray:
        s = np.sin(angle)
        c = np.array([-sign * np.cos(angle)], dtype=np.longdouble)
        qc = system.connection_at(one, one, c, np.array([s * s], dtype=np.longdouble), (2,))[0]
        return sign * s * np.einsum("nij,nj->ni", qc, g)

    return rhs


def sweep_start(system: PfaffianSystem) -> np.ndarray:
    """G at a = b = 1, c = 0 (theta = pi/2), from the base point, in extended precision."""
    a0, b0, _ = base_covariance(system)
    x11, _, x22 = system.base_point_float
    g0 = np.array(
        [np.longdouble(mpmath.nstr(v, 30, strip_zeros=False)) for v in system.initial_values_mp],
        dtype=np.longdouble,
    )
    g0 = g0 * np.sqrt(np.longdouble(x11) * np.longdouble(x22)) / _PI_LD
    la = np.log(np.longdouble(1) / np.longdouble(a0))
    lb = np.log(np.longdouble(1) / np.longdouble(b0))
    zero = np.zeros(1, dtype=np.longdouble)

    def rhs(t, g):
        at = np.longdouble(a0) * np.exp(t * la) * np.ones(1, dtype=np.longdouble)
        bt = np.longdouble(b0) * np.exp(t * lb) * np.ones(1, dtype=np.longdouble)
        qa, qb = system.connection_at(at, bt, zero, at * bt, which=(0, 1))
        return np.einsum("nij,nj->ni", la * at[:, None, None] * qa + lb * bt[:, None, None] * qb, g)

    sol = solve_batched(rhs, g0[None, :], 0.0, 1.0, rtol=1e-17)
    return sol.y[0]


class _Trajectory:
    """A cached dense trajectory of the angle ODE from pi/2 towards angle 0, extendable.

    The angle is theta (lower half) or psi = pi - theta (upper half).
    """

    def __init__(self, system: PfaffianSystem, g_half: np.ndarray, rtol: float, lower: bool):
        self.rhs = _angle_rhs(system, lower)
        self.rtol = rtol
        self.end = _HALF_PI_LD
        self.y_end = g_half[None, :]
        self.segments: list = []
        self.g_half = g_half

    def extend(self, target) -> None:
        """Integrate on until ``target`` (a bit beyond it, to reuse the result)."""
        if target >= self.end:
            return
        new_end = max(target * np.longdouble(0.5), target - np.longdouble(0.05))
        sol = solve_batched(self.rhs, self.y_end, self.end, new_end, rtol=self.rtol, dense=True)
        self.segments.extend(sol.segments or [])
        self.end, self.y_end = new_end, sol.y

    def __call__(self, angle: np.ndarray) -> np.ndarray:
        if angle.size == 0:
            return np.empty(0, dtype=np.longdouble)
        self.extend(angle.min())
        if not self.segments:
            return np.full(angle.shape, self.g_half[0])
        from .odes import BatchedSolution

        holder = BatchedSolution(self.y_end, np.zeros(1), 0, 0, self.segments)
        return holder.dense(angle)[:, 0, 0]


_TRAJECTORIES: dict[int, tuple[PfaffianSystem, dict]] = {}
#: Relative perturbations of the start vector of the looser of two solves (a probe of the
#: amplification of rounding errors, ~100 ulp of the working precision).
_SWEEP_PROBE = 1e-17
_PAIRS_PROBE = 1e-14


def perturbed(g: np.ndarray, relative: float) -> np.ndarray:
    """g with component i scaled by 1 + (-1)^i ``relative`` (last axis)."""
    signs = np.where(np.arange(g.shape[-1]) % 2 == 0, 1.0, -1.0).astype(g.dtype)
    return g * (1 + signs * g.dtype.type(relative))


def _trajectories(system: PfaffianSystem, tight: float) -> dict:
    entry = _TRAJECTORIES.get(id(system))
    if entry is None or entry[0] is not system:
        entry = (system, {})
        _TRAJECTORIES[id(system)] = entry
    cache = entry[1]
    if tight not in cache:
        g_half = sweep_start(system)
        # the looser trajectory starts from a perturbed vector, so that the difference of
        # the two also measures how much the rounding of the start is amplified
        probe = perturbed(g_half, _SWEEP_PROBE)
        cache[tight] = {
            (tol, side): _Trajectory(system, g_half if tol == tight else probe, tol, side)
            for tol in (10 * tight, tight)
            for side in (True, False)
        }
    return cache[tight]


def angle_sweep(
    system: PfaffianSystem, theta: np.ndarray, psi: np.ndarray | None = None, *, rtol: float
) -> HGMResult:
    """e(theta) = E at a = b = 1, c = cos(theta) for all theta in (0, pi), from one trajectory.

    The trajectory starts at theta = pi/2 (reached from the base point along the diagonal)
    and is solved in extended precision (numpy longdouble) at tolerance min(rtol, 1e-17)
    and again at ten times that; values come from the tighter solve's dense output (order 7)
    and the error estimate is the difference of the two.  Extended precision keeps the
    relative accuracy of values that are tiny compared with the solution vector
    (rho -> -1).  Trajectories are cached per system and extended on demand, so later
    calls cost only the dense-output evaluation.  ``psi`` = pi - theta (computed directly
    from the covariance) is used for theta >= pi/2, where theta itself cannot carry the
    distance to pi accurately.
    """
    theta = np.asarray(theta)
    dtype = np.longdouble if theta.dtype == np.longdouble else np.dtype(float)
    out = np.empty(theta.shape, dtype=dtype)
    err = np.zeros(theta.shape)
    if theta.size == 0:
        return HGMResult(out, err)
    if psi is None:
        psi = _PI_LD - np.asarray(theta, dtype=np.longdouble)
    psi = np.asarray(psi)
    if np.any((theta <= 0) | (psi <= 0)):
        raise IntegrationError("angle_sweep needs 0 < theta < pi (collinear points are separate)")
    tight = min(rtol, 1e-17)
    trajectories = _trajectories(system, tight)
    for lo_side in (True, False):
        mask = theta < _HALF_PI_LD if lo_side else theta >= _HALF_PI_LD
        if not np.any(mask):
            continue
        targets = (theta if lo_side else psi)[mask].astype(np.longdouble)
        loose = trajectories[(10 * tight, lo_side)](targets)
        fine = trajectories[(tight, lo_side)](targets)
        out[mask] = fine.astype(dtype)
        err[mask] = np.abs(fine - loose).astype(float)
    return HGMResult(out, err)


def _pair_angle_rhs(system: PfaffianSystem, a: np.ndarray, b: np.ndarray, toward_zero: bool):
    """dG/d(angle) at fixed (a, b) for a batch of pairs: c = +-sqrt(ab) cos(angle).

    theta (toward_zero): c = sqrt(ab) cos(theta), det = ab sin^2(theta),
    dG/dtheta = -sqrt(ab) sin(theta) Q_c G; psi = pi - theta: c = -sqrt(ab) cos(psi),
    dG/dpsi = sqrt(ab) sin(psi) Q_c G.  The determinant is formed exactly as ab sin^2.
    """
    ab = a * b
    sab = np.sqrt(ab)
    sign = -1 if toward_zero else 1

    def rhs(angle, g: np.ndarray) -> np.ndarray:
        s = np.sin(angle)
        c = -sign * sab * np.cos(angle)
        qc = system.connection_at(a, b, c, ab * (s * s), (2,))[0]
        return np.einsum("nij,nj->ni", (sign * s) * sab[:, None, None] * qc, g)

    return rhs


def solve_by_pairs(
    system: PfaffianSystem, cov: Covariances, *, rtol: float, partial: bool = False
) -> HGMResult:
    """E at every (a, b, c) with det > 0, one dense angle trajectory per distinct (a, b).

    Targets sharing (a, b) differ only in the angle theta = arccos(rho): the diagonal path
    is solved once per distinct pair (all pairs in one batch), and from diag(a, b)
    (theta = pi/2) the ODE in the angle (theta below pi/2, psi = pi - theta above, so
    that det = ab sin^2 stays exact) is integrated once per side, down to the smallest
    target angle; every target is read off the dense output (order 7).  Both legs are
    solved at tolerance ``rtol / 100`` and again at ``rtol / 10`` from an initial vector
    perturbed by 1e-14 (relative); the error estimate is the difference of the two plus
    the accumulated local error of the tighter solves, so it also covers the amplification
    of rounding errors where the wanted value is small compared with the other solutions.

    Near rho = +-1 the float64 connection can become too noisy to integrate (the solver
    stalls); targets beyond that point are then solved by :func:`solve_generic` or, with
    ``partial=True``, returned as NaN with an infinite error estimate.
    """
    n = len(cov)
    out = np.empty(n)
    err = np.zeros(n)
    if n == 0:
        return HGMResult(out, err)
    a = np.asarray(cov.a, dtype=float)
    b = np.asarray(cov.b, dtype=float)
    pairs, inverse = np.unique(np.stack([a, b], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    pa, pb = pairs[:, 0].copy(), pairs[:, 1].copy()
    theta = np.asarray(cov.theta, dtype=float)
    psi = np.asarray(cov.psi, dtype=float)
    reached = np.ones(n, dtype=bool)
    results = []
    for tol in (rtol / 100, rtol / 10):
        probe = _PAIRS_PROBE if tol == rtol / 10 else 0.0
        g_half, e_half = diagonal_path(system, pa, pb, rtol=tol, probe=probe)
        alive = np.isfinite(g_half).all(axis=1)[inverse]  # too stiff a diagonal: NaN
        reached &= alive
        vals = np.full(n, np.nan)
        errs = e_half[inverse].copy()
        for lower in (True, False):
            mask = (theta < np.pi / 2 if lower else ~(theta < np.pi / 2)) & alive
            if not np.any(mask):
                continue
            target = (theta if lower else psi)[mask]
            idx = inverse[mask]
            used = np.unique(idx)
            end = float(target.min())
            rhs = _pair_angle_rhs(system, pa[used], pb[used], lower)
            sol = solve_batched(
                rhs, g_half[used], np.pi / 2, end, rtol=tol, dense=end < np.pi / 2,
                give_up=1e-5, max_steps=300 if partial else 1500,
            )
            ok = target >= sol.t_end
            sub = np.flatnonzero(mask)
            reached[sub[~ok]] = False
            pos = np.searchsorted(used, idx)
            if sol.segments:
                dense = sol.dense(target[ok])  # (m, len(used), r)
                vals[sub[ok]] = dense[np.arange(int(ok.sum())), pos[ok], 0]
            elif np.all(ok):
                vals[mask] = sol.y[pos, 0]
            errs[mask] += sol.error[pos]
        results.append((vals, errs))
    (fine, fine_err), (loose, _) = results
    out = fine
    err = np.abs(fine - loose) + fine_err
    err[~reached] = np.inf
    if not partial and not np.all(reached):
        rest = solve_generic(system, cov.take(~reached).astype(float), rtol=rtol)
        out[~reached] = rest.values
        err[~reached] = rest.error
    return HGMResult(out, err)
