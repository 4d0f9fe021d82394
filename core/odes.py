"""A batched explicit Runge-Kutta solver (Dormand-Prince 8(5,3)) for many ODEs at once.

``solve_batched(f, y0, t0, t1)`` integrates y' = f(t, y) for a batch y of shape (n, r): n
independent systems of size r sharing one time grid.  The step size is chosen from the
*largest* per-system error (a max norm over systems, not an RMS that would hide one bad
system among thousands).  The Butcher tableau is the one of Hairer's DOP853 as tabulated
in SciPy.  Returns y(t1) and, per system, the accumulated local error estimates (an
estimate of the global error, not a bound).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate._ivp import dop853_coefficients as _dop

from .errors import IntegrationError


def _extended_tableau() -> dict[str, np.ndarray]:
    """The DOP853 tableau in numpy longdouble, read from the 30-digit literals SciPy ships.

    Float64 coefficients would cap extended-precision integrations at ~1e-16 (the order
    conditions hold only to rounding); the published coefficients carry 30 digits.
    """
    import inspect
    import re
    import types

    text = inspect.getsource(_dop)
    text = re.sub(r"(?<![\w.])(\d+\.\d*(?:[eE][-+]?\d+)?)", r'_L("\1")', text)
    fake_np = types.SimpleNamespace(
        array=lambda v, **_: np.array(v, dtype=np.longdouble),
        zeros=lambda shape, **_: np.zeros(shape, dtype=np.longdouble),
    )
    namespace: dict = {"_L": np.longdouble}
    exec(
        compile(text.replace("import numpy as np", ""), "dop853", "exec"),
        {"np": fake_np, "_L": np.longdouble},
        namespace,
    )
    return namespace


try:
    _LD = _extended_tableau()
    if not np.allclose(_LD["A"].astype(float), _dop.A, rtol=1e-15, atol=0):
        raise ValueError("tableau mismatch")
except Exception:  # pragma: no cover - unexpected SciPy layout: fall back to float64
    _LD = {name: getattr(_dop, name) for name in ("A", "B", "C", "E3", "E5", "D")}

_NS = _dop.N_STAGES
_NX = _dop.N_STAGES_EXTENDED
_AX = _dop.A
_CX = _dop.C
_D = _dop.D
_A = _dop.A[:_NS, :_NS]
_B = _dop.B
_C = _dop.C[:_NS]
_E3 = _dop.E3
_E5 = _dop.E5


@dataclass
class BatchedSolution:
    """Result of :func:`solve_batched`."""

    y: np.ndarray  # (n, r) values at t1
    error: np.ndarray  # (n,) accumulated local error estimates (absolute, max over r)
    nsteps: int
    nfev: int
    segments: list | None = None  # dense output: (t_old, h, y_old, F) per accepted step
    t_end: float | None = None  # where the integration stopped (t1 unless it gave up)

    def dense(self, t: np.ndarray) -> np.ndarray:
        """Dense-output values at times t (shape (m,)) of every system: shape (m, n, r).

        On each step y(t_old + x h) = y_old + x(F0 + (1-x)(F1 + x(F2 + (1-x)(F3 + ...)))),
        the continuous extension of order 7 of Dormand and Prince.
        """
        if not self.segments:
            raise ValueError("solve_batched was not asked for dense output")
        t = np.asarray(t)
        starts = np.array([s[0] for s in self.segments], dtype=self.segments[0][2].dtype)
        hs = np.array([s[1] for s in self.segments], dtype=starts.dtype)
        forward = hs[0] > 0
        key = starts if forward else -starts
        idx = np.searchsorted(key, t if forward else -t, side="right") - 1
        idx = np.clip(idx, 0, len(self.segments) - 1)
        n, r = self.segments[0][2].shape
        out = np.empty((t.shape[0], n, r), dtype=starts.dtype)
        for k in np.unique(idx):
            sel = idx == k
            t_old, h, y_old, big_f = self.segments[k]
            x = ((t[sel] - t_old) / h)[:, None, None]
            acc = np.zeros((int(sel.sum()), n, r), dtype=starts.dtype)
            for i, f in enumerate(reversed(big_f)):
                acc = acc + f[None]
                acc = acc * (x if i % 2 == 0 else 1 - x)
            out[sel] = acc + y_old[None]
        return out


def _quiet_floating_point(fn):
    """Run ``fn`` with floating-point warnings off: a right-hand side that overflows near a
    singularity gives non-finite values, which the solver reports as an
    :class:`~hgmntk.errors.IntegrationError` (no RuntimeWarning reaches the caller)."""

    @functools.wraps(fn)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return fn(*args, **kwargs)

    return quiet


@_quiet_floating_point
def solve_batched(
    f: Callable[[float, np.ndarray], np.ndarray],
    y0: np.ndarray,
    t0: float,
    t1: float,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-300,
    max_steps: int = 100_000,
    first_step: float | None = None,
    dense: bool = False,
    give_up: float | None = None,
) -> BatchedSolution:
    """Integrate y' = f(t, y) from t0 to t1 for a batch y0 of shape (n, r).

    Error control per system i: ||err_i|| <= atol + rtol * max_k |y_ik| (the scale is the
    system's largest component, so a component passing through zero does not stall).
    With ``give_up`` = g, a step size below g |t| (the solver stalls, typically on
    rounding noise near a singular point) or more than ``max_steps`` steps end the
    integration early instead of failing:
    the result then holds y and the dense output up to ``t_end``.
    """
    y0 = np.asarray(y0)
    dtype = y0.dtype if y0.dtype == np.longdouble else np.dtype(float)
    y = np.array(y0, dtype=dtype, copy=True)
    n, r = y.shape
    err_acc = np.zeros(n)
    segments: list | None = [] if dense else None
    if n == 0 or t1 == t0:
        return BatchedSolution(y, err_acc, 0, 0, [] if dense else None, t1)
    direction = 1.0 if t1 > t0 else -1.0
    span = abs(t1 - t0)
    t = dtype.type(t0)
    t1 = dtype.type(t1)
    k = np.empty((_NX, n, r), dtype=dtype)
    if dtype == np.longdouble:
        a_x, b_, c_x, tab_e3, tab_e5, d_ = (_LD[name] for name in ("A", "B", "C", "E3", "E5", "D"))
    else:
        a_x, b_, c_x, tab_e3, tab_e5, d_ = _AX, _B, _CX, _E3, _E5, _D
    k[0] = f(t, y)
    nfev = 1
    h = first_step if first_step else span * min(0.05, max(rtol, 1e-14) ** (1 / 8))
    nsteps = 0
    while direction * (t1 - t) > 0:
        if nsteps >= max_steps:
            if give_up is not None:
                return BatchedSolution(y, err_acc, nsteps, nfev, segments, t)
            raise IntegrationError(
                f"Pfaffian ODE: more than {max_steps} steps at t={float(t):.6g} (of "
                f"[{float(t0):.6g}, {float(t1):.6g}]); "
                "the path is too close to a singularity; try a looser rtol"
            )
        h = min(h, abs(t1 - t))
        hs = direction * h
        for s in range(1, _NS):
            dy = np.tensordot(a_x[s, :s], k[:s], axes=(0, 0)) * hs
            k[s] = f(t + c_x[s] * hs, y + dy)
        y_new = y + hs * np.tensordot(b_, k[:_NS], axes=(0, 0))
        t_new = t + hs if h < abs(t1 - t) else t1
        k[_NS] = f(t_new, y_new)
        nfev += _NS
        scale = atol + rtol * np.maximum(np.abs(y).max(axis=1), np.abs(y_new).max(axis=1))
        err5 = np.tensordot(tab_e5, k[: _NS + 1], axes=(0, 0)) * hs
        err3 = np.tensordot(tab_e3, k[: _NS + 1], axes=(0, 0)) * hs
        e5 = np.sum((err5 / scale[:, None]) ** 2, axis=1)
        e3 = np.sum((err3 / scale[:, None]) ** 2, axis=1)
        denom = e5 + 0.01 * e3
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.where(denom > 0, e5 / np.sqrt(denom * r), 0.0)
        worst = float(np.max(norm)) if n else 0.0
        if not np.isfinite(worst) or not np.all(np.isfinite(y_new)):
            h *= 0.2
            if h < 1e-15 * span and h < 64 * np.finfo(dtype).eps * abs(t):
                raise IntegrationError(
                    f"Pfaffian ODE produced non-finite values near t={float(t):.6g}: the path "
                    "meets a singularity of the system, or the Pfaffian matrices overflow "
                    "float64 at this covariance (variances far from 1: rescale the inputs)"
                )
            continue
        if worst <= 1.0:
            if segments is not None:
                for s in range(_NS + 1, _NX):
                    dy = np.tensordot(a_x[s, :s], k[:s], axes=(0, 0)) * hs
                    k[s] = f(t + c_x[s] * hs, y + dy)
                nfev += _NX - _NS - 1
                delta = y_new - y
                big_f = [delta, hs * k[0] - delta, 2 * delta - hs * (k[_NS] + k[0])]
                big_f += list(hs * np.tensordot(d_, k, axes=(1, 0)))
                segments.append((t, hs, y.copy(), big_f))
            t = t_new
            y = y_new
            k[0] = k[_NS]
            err_acc += norm * scale
            nsteps += 1
            factor = 10.0 if worst == 0 else min(10.0, 0.9 * worst ** (-1 / 8))
            h *= factor
        else:
            h *= max(0.2, 0.9 * worst ** (-1 / 8))
            if give_up is not None and h < give_up * abs(t):
                return BatchedSolution(y, err_acc, nsteps, nfev, segments, t)
            if h < 1e-15 * span and h < 64 * np.finfo(dtype).eps * abs(t):
                raise IntegrationError(
                    f"Pfaffian ODE step size underflow at t={float(t):.6g}; the path is too close "
                    f"to a singular point for rtol={rtol:g}"
                )
    return BatchedSolution(y, err_acc, nsteps, nfev, segments, t1)

