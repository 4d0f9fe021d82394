"""Built-in integrators: ``closed``, ``hgm``, ``gauss-hermite`` and ``monte-carlo``.

They follow the contract of :mod:`hgmntk.integrator` and are registered through the same
hook a third-party integrator uses.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING

import numpy as np

from hgmntk.activation import SIDE_OF
from hgmntk.covariance import Covariances, half_power
from hgmntk.errors import IntegrationError, InvalidInputError, ValueOverflowError
from hgmntk.hookspecs import hookimpl
from hgmntk.integrator import Integrator, IntegratorResult

if TYPE_CHECKING:  # the numerical modules load when an integrator first runs (start-up)
    from hgmntk.angle_table import HomogeneousBlock
    from hgmntk.kink_mehler import KinkedMehlerDual
    from hgmntk.mehler import MehlerDual

#: Evaluators per activation object: keyed by id, with a weak reference to the object
#: checked on lookup (an id can be reused once its object is gone).
_MEHLER: dict[int, tuple[weakref.ref, MehlerDual | KinkedMehlerDual | None]] = {}


_ANGLE: dict[tuple[int, str], tuple[weakref.ref, HomogeneousBlock | None]] = {}


def _remembered(store: dict, key, activation, make):
    """``store[key]``'s evaluator if it was made for this very activation object, else
    ``make()`` (remembered with a weak reference to the object)."""
    entry = store.get(key)
    if entry is not None and entry[0]() is activation:
        return entry[1]
    value = make()
    store[key] = (weakref.ref(activation), value)
    return value


def angle_evaluator(activation, key: str) -> HomogeneousBlock | None:
    """One angle-table evaluator per activation object and dual (None if the table misses
    its accuracy)."""
    from hgmntk.angle_table import AngleTable, HomogeneousBlock

    def make():
        table = AngleTable(activation.duals[key])
        degree = activation.pair_homogeneity(key)[0]
        return HomogeneousBlock(table, degree, key == "dsds") if table.usable else None

    return _remembered(_ANGLE, (id(activation), key), activation, make)


def mehler_evaluator(activation) -> MehlerDual | KinkedMehlerDual | None:
    """One Mehler evaluator per activation object: :class:`MehlerDual` when s is entire,
    :class:`KinkedMehlerDual` when s is continuous with a kink at 0 between two entire
    sides (resin, elu); None otherwise (or for a positively homogeneous dual)."""
    from hgmntk.kink_mehler import KinkedMehlerDual, kink_split
    from hgmntk.longdouble import lambdify_longdouble
    from hgmntk.mehler import MehlerDual, is_entire_expression

    def make():
        s = activation.numeric_functions.get("s")
        if activation.holonomic and s is not None and activation.pair_homogeneity("ss") is None:
            if is_entire_expression(activation.expression):
                return MehlerDual(s, lambdify_longdouble(activation.expression))
            split = kink_split(activation.expression)
            return KinkedMehlerDual(split) if split is not None else None
        return None

    return _remembered(_MEHLER, id(activation), activation, make)


class ClosedForm(Integrator):
    """The activation's closed-form expression (exact to rounding)."""

    name = "closed"
    description = "closed-form dual (when the activation plugin provides one)"
    exact = True

    def unavailable_reason(self, activation, key):
        if key not in activation.closed_forms:
            return f"activation {activation.name!r} has no closed form for its {key} dual"
        return None

    def block_evaluator(self, activation, key):
        """The closed form's float64 block evaluation, when it has one (``.block``)."""
        return getattr(activation.closed_forms.get(key), "block", None)

    def evaluate(self, activation, key, cov, *, rtol):
        """The closed form at the covariances: within its ``variance_range`` where it has
        one; an infinite value (the dual beyond float64) is a ValueOverflowError."""
        form = activation.closed_forms[key]
        low, high = getattr(form, "variance_range", (0.0, np.inf))
        if len(cov):
            small, big = min(np.min(cov.a), np.min(cov.b)), max(np.max(cov.a), np.max(cov.b))
            if small < low or big > high:
                raise IntegrationError(
                    f"the closed form of {activation.name!r} ({key}) is evaluated for "
                    f"variances within {low:g}..{high:g}, got {float(small):.3g}.."
                    f"{float(big):.3g}; rescale the inputs (or w_std, b_std)"
                )
        with np.errstate(all="ignore"):
            values = np.asarray(form(cov))
        if np.any(np.isinf(values)):
            at = int(np.flatnonzero(np.isinf(values))[0])
            raise ValueOverflowError(
                f"the {key} dual of {activation.name!r} at (a, b, c) = ({float(cov.a[at]):.3g}, "
                f"{float(cov.b[at]):.3g}, {float(cov.c[at]):.3g}) exceeds float64 (1.8e308)"
            )
        if np.any(np.isnan(values)):
            raise IntegrationError(
                f"internal error: the closed form of {activation.name!r} ({key}) gave NaN; "
                "please report it with the inputs"
            )
        return IntegratorResult(values, np.abs(values) * 4 * np.finfo(values.dtype).eps)


class HolonomicGradient(Integrator):
    """The holonomic gradient method: the Pfaffian ODE from the base point to each target.

    For activations with Mehler's expansion (entire, or kinked at 0 between two entire
    sides) the targets whose expansion bound meets the tolerance are answered by it first
    (option ``mehler``; the ODE and the expansion are two independent evaluations of the
    same holonomic function).

    Positively homogeneous pairs are solved on one trajectory in the angle theta
    (:func:`hgmntk.hgm.angle_sweep`); others on one angle trajectory per distinct (a, b)
    (:func:`hgmntk.hgm.solve_by_pairs`), vectorised over targets, in floating point.  Every
    target whose error estimate misses the tolerance is redone on the precise path
    (:mod:`hgmntk.continuation`: exact connection, Taylor series in arbitrary precision).
    """

    name = "hgm"
    description = "holonomic gradient method (Pfaffian ODE, DOP853, error estimate)"
    exact = True
    options = {"chunk": 4096, "mehler": True}

    def unavailable_reason(self, activation, key):
        if not activation.holonomic:
            return (
                f"activation {activation.name!r} ({activation.expression}) is not holonomic "
                "(it is no solution of a linear ODE with polynomial coefficients), so it has "
                "no Pfaffian system; use method='gauss-hermite' or 'monte-carlo'"
            )
        if key not in activation.duals:
            return f"activation {activation.name!r} ships no Pfaffian system for its {key} dual"
        return None

    def block_evaluator(self, activation, key):
        """For a homogeneous dual a table of its angle function (:mod:`hgmntk.angle_table`);
        Mehler's expansion (:mod:`hgmntk.mehler`) for activations built from entire
        functions, with the kink's part in closed form (:mod:`hgmntk.kink_mehler`) for
        continuous ones kinked at 0; None otherwise."""
        if key not in ("ss", "dsds") or key not in activation.duals:
            return None
        if activation.pair_homogeneity(key) is not None:
            return angle_evaluator(activation, key)
        return mehler_evaluator(activation)

    def evaluate(self, activation, key, cov, *, rtol, chunk=4096, mehler=True):
        """The targets Mehler's expansion vouches for at ``rtol`` (``mehler=True``, where it
        applies: see :func:`_mehler_values`), the others by the ODE: its float paths, then
        the precise path for what they miss."""
        def ode(sub):
            result = self._float_values(activation, key, sub, rtol, chunk)
            return self._make_precise(activation, key, sub, result, rtol)

        return _mehler_first(activation, key, cov, rtol, mehler, ode)

    @staticmethod
    def _make_precise(activation, key, cov, result, rtol):
        """Redo, on the precise path (:mod:`hgmntk.continuation`), every target whose
        float estimate misses the tolerance (or that the float path could not reach)."""
        values, error = result.values, result.error
        bad = ~(error <= rtol * np.abs(values)) & ~(error == 0)
        if np.any(bad):
            from hgmntk.continuation import precise_values

            idx = np.flatnonzero(bad)
            sub = cov.take(idx)
            vals, errs = precise_values(activation, key, sub, rtol=rtol, dtype=values.dtype)
            values = values.copy()
            error = error.copy()
            values[idx] = vals
            error[idx] = errs
        return IntegratorResult(values, error)

    def evaluate_precise(self, activation, key, cov, *, rtol, chunk=4096):
        """The precise path alone (for targets the float paths have already failed)."""
        values = np.full(len(cov), np.nan, dtype=cov.a.dtype)
        result = IntegratorResult(values, np.full(len(cov), np.inf))
        return self._make_precise(activation, key, cov, result, rtol)

    def try_evaluate(self, activation, key, cov, *, rtol, chunk=4096, mehler=True):
        """Like :meth:`evaluate`, but NaN with an infinite error estimate where Mehler's
        expansion and the float paths cannot reach a target or miss the tolerance (near
        rho = +-1); never slow."""
        return _mehler_first(activation, key, cov, rtol, mehler,
                             lambda sub: self._float_values(activation, key, sub, rtol, chunk))

    @staticmethod
    def _float_values(activation, key, cov, rtol, chunk):
        """The float paths: the angle sweep for homogeneous pairs, else one angle
        trajectory per (a, b) in chunks; unreached targets get NaN and an infinite error."""
        from hgmntk.hgm import angle_sweep, solve_by_pairs

        system = activation.duals[key]
        degrees = activation.pair_homogeneity(key)
        if degrees is not None:
            res = angle_sweep(system, cov.theta, cov.psi, rtol=rtol)
            k1, k2 = degrees
            scale = half_power(cov.a, k1) * half_power(cov.b, k2)
            return IntegratorResult(res.values * scale, res.error * scale)
        cov = cov.astype(float)
        values = np.empty(len(cov))
        error = np.empty(len(cov))
        for start in range(0, len(cov), int(chunk)):
            sl = slice(start, start + int(chunk))
            res = solve_by_pairs(system, cov.take(sl), rtol=rtol, partial=True)
            values[sl] = res.values
            error[sl] = res.error
        return IntegratorResult(values, error)


#: Mehler's expansion answers a batch first where its largest variance is at most this
#: (beyond, its coefficients need rules of thousands of nodes; the ODE is cheaper).
MEHLER_MAX_VARIANCE = 400.0


#: Targets per call of the expansion (its coefficients: terms x distinct variances).
MEHLER_CHUNK = 4096


def _mehler_first(activation, key, cov: Covariances, rtol: float, mehler: bool,
                  rest) -> IntegratorResult:
    """The targets Mehler's expansion vouches for (with ``mehler``: :func:`_mehler_values`),
    ``rest(sub_batch)`` (an IntegratorResult) for the others, or for all of them."""
    taken = _mehler_values(activation, key, cov, rtol) if mehler else None
    if taken is None:
        return rest(cov)
    values, error, done = taken
    left = np.flatnonzero(~done)
    if left.size:
        result = rest(cov.take(left))
        values[left] = result.values
        error[left] = result.error
    return IntegratorResult(values, error)


def _mehler_values(activation, key, cov: Covariances, rtol: float):
    """Mehler's expansion (:mod:`hgmntk.mehler`, :mod:`hgmntk.kink_mehler`) on a batch of
    covariances, in its longdouble twin for longdouble batches, ``MEHLER_CHUNK`` targets
    at a time: (values, absolute errors, mask of the targets whose bound meets ``rtol``),
    or None where it does not apply (no expansion, a homogeneous dual, huge variances).
    The bound adds to the expansion's own the rounding of rho = c / sqrt(ab) (3 eps |c|)
    times |dE/dc| (Price: E[s's'] for E[ss], the slope for E[s's'])."""
    if key not in ("ss", "dsds") or activation.pair_homogeneity(key) is not None:
        return None
    if len(cov) == 0 or not float(max(np.max(cov.a), np.max(cov.b))) <= MEHLER_MAX_VARIANCE:
        return None
    evaluator = mehler_evaluator(activation)
    if evaluator is None:
        return None
    if cov.a.dtype == np.longdouble:
        evaluator = evaluator.extended()
        if evaluator is None:
            return None
    parts = [_mehler_chunk(evaluator, key, cov.take(np.arange(i, min(i + MEHLER_CHUNK,
                                                                     len(cov)))), rtol)
             for i in range(0, len(cov), MEHLER_CHUNK)]
    return tuple(np.concatenate(column) for column in zip(*parts))


def _mehler_chunk(evaluator, key, cov: Covariances, rtol: float):
    """:func:`_mehler_values` on one chunk, with the evaluator chosen."""
    from hgmntk.integrator import PairBlock

    dtype = cov.a.dtype
    sa, sb = np.sqrt(cov.a), np.sqrt(cov.b)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.clip(cov.c / (sa * sb), -1, 1)
    if dtype != np.longdouble:
        sa, sb, rho = (np.asarray(v, dtype=float) for v in (sa, sb, rho))
    where = np.arange(len(cov))
    block = PairBlock(sa, sb, rho)
    f = evaluator.prepare(sa, sb)
    e, err_e, _ = f(block, where, where, "ss")
    de, err_d, slope = f(block, where, where, "dsds")
    eps = float(np.finfo(dtype).eps)
    dc = 3 * eps * np.abs(np.asarray(cov.c, dtype=float))
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0: NaN, not vouched for
        if key == "ss":
            values, error = e, err_e + np.abs(np.asarray(de, dtype=float)) * dc
        else:
            values, error = de, err_d + np.asarray(slope, dtype=float) * dc
        values = np.array(values, dtype=dtype)
        error = np.asarray(error, dtype=float).copy()
        done = (error <= rtol * np.abs(values)) & np.isfinite(values)
    done &= (cov.det > 0) & (cov.a > 0) & (cov.b > 0)
    return values, error, done


def _numeric_pair(activation, key):
    return activation.numeric_functions.get(SIDE_OF[key])


def _transform(cov: Covariances, z1: np.ndarray, z2: np.ndarray):
    """(u, v) = (sqrt(a) z1, c/sqrt(a) z1 + sqrt(det/a) z2) for standard normal z1, z2."""
    sa = np.sqrt(cov.a)[:, None]
    u = sa * z1[None, :]
    v = (cov.c / np.sqrt(cov.a))[:, None] * z1[None, :] + np.sqrt(cov.det / cov.a)[:, None] * z2[
        None, :
    ]
    return u, v


class _Quadrature(Integrator):
    exact = False

    def _finite(self, activation, key, cov, values: np.ndarray) -> None:
        """Raise a clear IntegrationError where a quadrature sum is not finite: the
        integrand's samples overflowed float64 (s(u) s(v) = inf, or inf * 0 = NaN), or
        s is NaN somewhere on the real line (sqrt(u) at u < 0)."""
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise IntegrationError(
                f"{self.name}: the samples of s(u) s(v) for the {key} dual of "
                f"{activation.name!r} are not all finite at (a, b, c) = ({float(cov.a[i]):.6g}, "
                f"{float(cov.b[i]):.6g}, {float(cov.c[i]):.6g}) ({bad.size} target(s)): they "
                "overflow float64 (use an exact method, method='auto', or smaller variances), "
                "or the activation is not real or not defined at some real u"
            )

    def unavailable_reason(self, activation, key):
        if _numeric_pair(activation, key) is not None:
            return None
        text = activation.function_expression(key)
        if text and "DiracDelta" in text:
            return (
                f"the {key} dual of {activation.name!r} needs s'(u) = {text}, which has a Dirac "
                "delta term (s jumps) that quadrature cannot sample; a holonomic activation's "
                "derivative dual is available by method='hgm'"
            )
        return (
            f"the {key} dual of {activation.name!r} has no numeric expression (Dirac delta or "
            "none given) that quadrature could sample"
        )


class GaussHermite(_Quadrature):
    """Tensor Gauss-Hermite quadrature of degree n (n^2 nodes) for any callable activation.

    Exact for polynomials of degree < 2n in each variable; converges slowly for kinks.
    """

    name = "gauss-hermite"
    description = "tensor Gauss-Hermite quadrature (option degree, default 64), any activation"
    options = {"degree": 64}

    def evaluate(self, activation, key, cov, *, rtol, degree=64):
        if not isinstance(degree, (int, np.integer)) or not 1 <= degree <= 2000:
            raise InvalidInputError(
                f"gauss-hermite degree must be an integer in [1, 2000], got {degree!r}"
            )
        f = _numeric_pair(activation, key)
        z, w = np.polynomial.hermite_e.hermegauss(int(degree))
        w = w / math.sqrt(2 * math.pi)
        z1, z2 = np.repeat(z, degree), np.tile(z, degree)
        ww = np.repeat(w, degree) * np.tile(w, degree)
        values = np.empty(len(cov))
        chunk = max(1, 4_000_000 // (degree * degree))
        with np.errstate(all="ignore"):
            for start in range(0, len(cov), chunk):
                sub = cov.take(slice(start, start + chunk))
                u, v = _transform(sub, z1, z2)
                values[start : start + chunk] = (f(u) * f(v)) @ ww
        self._finite(activation, key, cov, values)
        return IntegratorResult(values, np.full(len(cov), np.nan))


class MonteCarlo(_Quadrature):
    """Seeded Monte Carlo with ``samples`` draws; the error estimate is the standard error."""

    name = "monte-carlo"
    description = "seeded Monte Carlo (options samples=100000, seed=0), for checks"
    options = {"samples": 100_000, "seed": 0}

    def evaluate(self, activation, key, cov, *, rtol, samples=100_000, seed=0):
        if not isinstance(samples, (int, np.integer)) or samples < 2:
            raise InvalidInputError(f"monte-carlo samples must be an integer >= 2, got {samples!r}")
        f = _numeric_pair(activation, key)
        rng = np.random.default_rng(seed)
        z1, z2 = rng.standard_normal(int(samples)), rng.standard_normal(int(samples))
        values = np.empty(len(cov))
        error = np.empty(len(cov))
        chunk = max(1, 4_000_000 // int(samples))
        with np.errstate(all="ignore"):
            for start in range(0, len(cov), chunk):
                sub = cov.take(slice(start, start + chunk))
                u, v = _transform(sub, z1, z2)
                prod = f(u) * f(v)
                values[start : start + chunk] = prod.mean(axis=1)
                error[start : start + chunk] = prod.std(axis=1, ddof=1) / math.sqrt(samples)
        self._finite(activation, key, cov, values)
        return IntegratorResult(values, error)


BUILTIN_INTEGRATORS = (ClosedForm(), HolonomicGradient(), GaussHermite(), MonteCarlo())


@hookimpl
def hgmntk_register_integrators(register):
    """Register the built-in integrators."""
    for integrator in BUILTIN_INTEGRATORS:
        register(integrator)
