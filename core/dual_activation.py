"""Dual activations E[s(u)s(v)] and E[s'(u)s'(v)]: the orchestration shared by all methods.

For a batch of covariances the core

1. evaluates singular covariances (det = 0, rho = +-1, also a = 0 or b = 0) from the
   activation's collinear data (:mod:`hgmntk.collinear`);
2. near rho = +-1 (theta = arccos rho within ``PRICE_ANGLE`` of 0 or pi), with an exact
   integrator and a derivative dual available, uses Price's theorem
   dE/dc = E[s'(u) s'(v)]:  with c = sqrt(ab) cos(phi),

       E(theta) = E(rho=1)  - sqrt(ab) int_0^theta  sin(phi) E'(phi) dphi,
       E(theta) = E(rho=-1) + sqrt(ab) int_theta^pi sin(phi) E'(phi) dphi,

   by Gauss-Legendre quadrature; this keeps full relative accuracy where the value itself
   or its distance to the collinear value is tiny (the ODE cannot deliver that);
3. hands every other covariance to the chosen integrator.

It also returns the distances to the collinear values, ``to_same = E(rho=1) - E`` and
``to_opposite = E - E(rho=-1)``, accurate near the respective end: the deep-kernel recursion
needs them to form the next layer's determinant without cancellation.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .activation import DUAL_KEYS, Activation
from .covariance import VARIANCE_RANGE, Covariances, check_correlation
from .diagonal_memory import remembered_diagonals
from .errors import (
    DerivationError,
    DivergentDualError,
    IntegrationError,
    InvalidInputError,
    NotApplicableError,
    NotHolonomicError,
    UnknownActivationError,
    UnknownIntegratorError,
    ValueOverflowError,
)
from .integrator import Integrator

PRICE_ANGLE = 0.5
PRICE_NODES = 24
#: Relative accuracy assumed for collinear values (rho = +-1) in error estimates.
_COLLINEAR_RTOL = 1e-14
_GL_X, _GL_W = np.polynomial.legendre.leggauss(PRICE_NODES)

#: The order in which ``method="auto"`` tries integrators.
AUTO_ORDER = ("closed", "hgm")


class ApproximationWarning(UserWarning):
    """A value was computed by an approximate (quadrature) method."""


@dataclass
class DualResult:
    """Values of a dual, error estimates, and distances to the collinear values."""

    values: np.ndarray
    error: np.ndarray
    to_same: np.ndarray
    to_opposite: np.ndarray
    method: str


def get_activation(activation: str | Activation, method: str = "auto") -> Activation:
    """The registered activation of that name, or one made from an expression in u.

    An expression is parsed by the safe parser (:mod:`hgmntk.expressions`).  For a
    quadrature ``method`` (an integrator that is not exact: gauss-hermite, monte-carlo, ...)
    it is used as it is, holonomic or not; for the exact methods (closed, hgm, and "auto")
    its Pfaffian systems are derived and cached, and a non-holonomic expression is refused
    with the methods that do apply.
    """
    from .plugin_manager import get_registry

    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        raise InvalidInputError(
            f"activation must be a name or an expression string, not {type(activation).__name__}"
        )
    registry = get_registry()
    if activation in registry.activations:
        return registry.activations[activation]
    member = family_member(activation)
    if member is not None:
        return member
    from .expressions import parse_activation_expression, quadrature_activation

    known = ", ".join(sorted(registry.activations))
    try:
        expr = parse_activation_expression(activation)
    except InvalidInputError as exc:
        raise UnknownActivationError(
            f"unknown activation {activation!r}; registered activations: {known}. "
            f"It is not an expression in u either ({exc}). Give a SymPy expression in u "
            "(e.g. 'Heaviside(u)*cos(u)') or derive one with 'hgmntk derive EXPR --name NAME'"
        ) from None
    if method != "auto" and not get_integrator(method).exact:
        return quadrature_activation(activation)
    try:
        from .cas_bridge.derive import derive_cached
    except ImportError as exc:
        raise UnknownActivationError(
            f"unknown activation {activation!r} (registered: {known}); deriving expressions "
            f"needs the derivation engine, which failed to import: {exc}. "
            f"{applicable_methods_hint()}"
        ) from exc
    with no_system_hint():
        return derive_cached(expr)


def family_member(text: str) -> Activation | None:
    """The activation written as ``family(param=value, ...)`` or a bare family name
    (``"leaky_relu(alpha=0.2)"``, ``"Erf(a=2)"``), or None when ``text`` names no
    registered family."""
    from .plugin_manager import get_registry

    families = get_registry().families
    if not families:
        return None
    from .family import parse_family_call

    return parse_family_call(text, families)


def quadrature_methods() -> list[str]:
    """Names of the registered integrators that are not exact (they need no Pfaffian system)."""
    from .plugin_manager import get_registry

    return sorted(name for name, i in get_registry().integrators.items() if not i.exact)


def applicable_methods_hint() -> str:
    """A sentence naming the methods that apply to an expression without a Pfaffian system."""
    names = " or ".join(f"method={n!r}" for n in quadrature_methods()) or "a quadrature method"
    return (
        f"Methods that apply without a Pfaffian system: {names} (quadrature, approximate); "
        "the exact methods 'closed' and 'hgm' (and 'auto', which tries them) need one."
    )


@contextmanager
def no_system_hint():
    """Add :func:`applicable_methods_hint` to a derivation that finds no Pfaffian system.

    A :class:`NotHolonomicError`, or a :class:`DerivationError` of an expression the
    engine does not support, is re-raised (same type) with the hint appended.
    """
    try:
        yield
    except NotHolonomicError as exc:
        raise NotHolonomicError(f"{exc} {applicable_methods_hint()}", exc.expression) from None
    except DerivationError as exc:
        if type(exc) is not DerivationError:  # a CAS failure, not the expression's fault
            raise
        raise DerivationError(f"{exc}. {applicable_methods_hint()}") from None


def get_integrator(name: str) -> Integrator:
    """The registered integrator of that name."""
    from .plugin_manager import get_registry

    integrators = get_registry().integrators
    if name not in integrators:
        raise UnknownIntegratorError(
            f"unknown method {name!r}; available: auto, {', '.join(sorted(integrators))}"
        )
    return integrators[name]


def choose_integrator(activation: Activation, key: str, method: str) -> Integrator:
    """Resolve ``method`` (a name or "auto") for dual ``key`` of ``activation``."""
    if method != "auto":
        integrator = get_integrator(method)
        reason = integrator.unavailable_reason(activation, key)
        if reason:
            if not activation.holonomic and integrator.exact:
                raise NotHolonomicError(reason, activation.expression)
            raise NotApplicableError(f"method {method!r} does not apply: {reason}")
        return integrator
    for name in AUTO_ORDER:
        try:
            integrator = get_integrator(name)
        except UnknownIntegratorError:
            continue
        if integrator.unavailable_reason(activation, key) is None:
            return integrator
    if not activation.holonomic:
        raise NotHolonomicError(
            f"activation {activation.name!r} ({activation.expression}) is not holonomic, so no "
            f"exact method applies. {applicable_methods_hint()}",
            activation.expression,
        )
    integrator = get_integrator("gauss-hermite")
    reason = integrator.unavailable_reason(activation, key)
    if reason:
        raise NotApplicableError(
            f"no method can evaluate the {key} dual of {activation.name!r}: {reason}"
        )
    warnings.warn(
        f"activation {activation.name!r} has no closed form or Pfaffian system for its {key} "
        "dual; using Gauss-Hermite quadrature (approximate)",
        ApproximationWarning,
        stacklevel=3,
    )
    return integrator


def evaluate_dual(
    activation: Activation,
    key: str,
    cov: Covariances,
    *,
    method: str = "auto",
    rtol: float = 1e-12,
    options: dict | None = None,
    distances: bool = True,
) -> DualResult:
    """The dual ``key`` at every covariance of ``cov`` (see the module docstring).

    With ``distances=False`` only the values are wanted (``to_same``/``to_opposite`` are
    then the plain differences): near rho = +-1 a direct value that meets ``rtol`` is kept
    without computing Price's integral.
    """
    with remembered_diagonals():
        return _evaluate_dual(activation, key, cov, method, rtol, options or {}, distances)


def _check_scaled_range(activation, a: np.ndarray, b: np.ndarray) -> None:
    """A clear error for variances outside :data:`hgmntk.covariance.VARIANCE_RANGE` (zero
    variances are allowed: the dual is then a collinear value).  For an activation that
    is not positively homogeneous the covariance cannot be rescaled exactly, and an
    underflowing determinant would make a regular covariance look singular."""
    low, high = VARIANCE_RANGE
    both = np.concatenate([np.ravel(a), np.ravel(b)])
    nonzero = both[both != 0]
    if nonzero.size and (np.min(np.abs(nonzero)) < low or np.max(np.abs(nonzero)) > high):
        raise IntegrationError(
            f"the duals of {activation.name!r} are computed for variances within "
            f"{low:g}..{high:g} (or 0): got {float(np.min(np.abs(nonzero))):.3g}.."
            f"{float(np.max(np.abs(nonzero))):.3g}. {activation.name!r} is not positively "
            "homogeneous, so its covariance cannot be rescaled exactly; rescale the inputs"
        )


def _check_variance_limit(activation, cov: Covariances) -> None:
    """Refuse variances at which E[s(U)^2] is infinite (activations growing like exp(c u^2),
    whose provenance records the limit 1/(4c))."""
    if len(cov):
        check_variance_limit(activation, np.concatenate([cov.a, cov.b]))


def check_variance_limit(activation, variances: np.ndarray, where: str = "") -> None:
    """:class:`DivergentDualError` if a variance reaches the activation's
    ``variance_limit`` (its provenance; s growing like exp(c u^2) has 1/(4c))."""
    limit = activation.provenance.get("variance_limit")
    if limit is None or np.size(variances) == 0:
        return
    worst = float(np.max(variances))
    if worst >= float(limit):
        at = f" ({where})" if where else ""
        raise DivergentDualError(
            f"the duals of {activation.name!r} diverge at variance {worst:g}{at}: s = "
            f"{activation.expression} grows like exp(c u^2) with c = {1 / (4 * limit):g}, "
            f"so E[s(U)^2] is finite only for variances below 1/(4c) = {float(limit):g}"
        )


def _evaluate_dual(activation, key, cov, method, rtol, options, distances) -> DualResult:
    _check_variance_limit(activation, cov)
    integrator = choose_integrator(activation, key, method)
    try:
        integrator.check_options(options)
    except InvalidInputError as exc:
        if method != "auto":
            raise
        raise InvalidInputError(
            f"{exc} (method 'auto' chose {integrator.name!r} for the {key} dual: name the "
            "method your options are for)"
        ) from None
    if not integrator.exact:
        cov = cov.astype(float)
    n = len(cov)
    values = np.zeros(n, dtype=cov.a.dtype)
    error = np.zeros(n)
    singular = (cov.det <= 0) | (cov.a <= 0) | (cov.b <= 0)
    theta = cov.theta
    pi = np.arctan2(np.zeros((), dtype=theta.dtype), -np.ones((), dtype=theta.dtype))
    price_possible = (
        integrator.exact and key == "ss" and "dsds" in _available_keys(activation, integrator)
    )
    near_end = price_possible & ((theta < PRICE_ANGLE) | (theta > pi - PRICE_ANGLE))
    # collinear values (one 1-D integral per (a, b) for non-homogeneous activations) where
    # they are used: singular targets, Price's, and the distances the deep kernels need
    wanted = singular | near_end | (distances and key == "ss")
    same = np.full(n, np.nan, dtype=values.dtype)
    opposite = np.full(n, np.nan, dtype=values.dtype)
    if np.any(wanted):
        _collinear_into(activation, key, integrator, cov, wanted, same, opposite)
    at_same = singular & (cov.c >= 0)
    values[at_same] = same[at_same]
    values[singular & ~at_same] = opposite[singular & ~at_same]
    use_price = ~singular & near_end
    direct = ~singular & ~use_price
    if np.any(direct):
        res = integrator.evaluate(activation, key, cov.take(direct), rtol=rtol, **options)
        values[direct] = res.values
        error[direct] = res.error
    with np.errstate(invalid="ignore"):  # inf - inf on the step's diagonal stays NaN
        to_same = same - values
        to_opposite = values - opposite
    idx = np.flatnonzero(use_price)
    error[idx] = np.inf
    if not distances and idx.size:
        # only the values are wanted: a cheap float value first, where it is accurate
        idx = _compete(integrator, activation, key, cov, idx, values, error, rtol, options,
                       ("try_evaluate",))
    if idx.size:
        sub = cov.take(idx)
        near0 = theta[idx] < pi / 2
        node_eval = integrator.evaluate if distances else getattr(
            integrator, "try_evaluate", integrator.evaluate)
        integral, err = _price_integral(node_eval, activation, sub, near0, rtol, options)
        vals = np.where(near0, same[idx] - integral, opposite[idx] + integral)
        end = np.abs(np.where(near0, same[idx], opposite[idx]))
        err = err + end * _COLLINEAR_RTOL
        values[idx] = vals
        error[idx] = err
        # where Price's value cancels (E << E(rho = +-1)) the direct value competes: first
        # the cheap float one (where the integrator offers it), then the full evaluation
        _compete(integrator, activation, key, cov, idx, values, error, rtol, options,
                 ("try_evaluate", "evaluate") if distances else ("evaluate",),
                 float_tried=not distances and not options)
        if distances:
            # the Price integral is the accurate distance to the nearer collinear value: the
            # deep-kernel determinant needs it even where the direct value is the better one
            chosen = values[idx]
            to_same[idx] = np.where(near0, integral, same[idx] - chosen)
            to_opposite[idx] = np.where(near0, chosen - opposite[idx], integral)
    if not np.all(np.isfinite(values) | np.isinf(same) | np.isinf(opposite)):
        raise ArithmeticError("internal error: a dual value is NaN")
    _check_overflow(activation, key, cov, values, singular)
    return DualResult(values, error, to_same, to_opposite, integrator.name)


def _check_overflow(activation, key: str, cov, values: np.ndarray, singular: np.ndarray):
    """A ValueOverflowError for an infinite value that is not a genuine infinity (two
    Dirac terms meeting at rho = +-1, :func:`hgmntk.collinear.may_be_infinite`): the dual
    is finite but beyond float64 (exp's at large variances), or its samples overflowed."""
    wrong = np.isinf(values)
    if not np.any(wrong):
        return
    from .collinear import may_be_infinite  # (SciPy: only where a value is infinite)

    if may_be_infinite(activation, key):
        wrong &= ~singular
    if np.any(wrong):
        i = int(np.flatnonzero(wrong)[0])
        raise ValueOverflowError(
            f"the {key} dual of {activation.name!r} at (a, b, c) = ({float(cov.a[i]):.6g}, "
            f"{float(cov.b[i]):.6g}, {float(cov.c[i]):.6g}) exceeds float64 (1.8e308): use "
            "smaller variances"
        )


def _collinear_into(activation, key, integrator, cov, wanted, same, opposite) -> None:
    """The duals at rho = +1 and -1 on the variances of ``wanted``: from a closed form
    that holds there (its ``singular``) when the closed form is the method, else (and
    where that is not finite) from the collinear data (:mod:`hgmntk.collinear`)."""
    from .collinear import collinear_values

    a, b = cov.a[wanted], cov.b[wanted]
    form = activation.closed_forms.get(key) if integrator.name == "closed" else None
    singular = getattr(form, "singular", None)
    for out, sign in ((same, 1.0), (opposite, -1.0)):
        values = np.full(a.shape, np.nan, dtype=out.dtype)
        if singular is not None:
            values[:] = singular(a, b, sign)
        todo = np.isnan(values)  # an inf of a form is its overflow: kept (see the caller)
        if np.any(todo):
            values[todo] = collinear_values(activation, key, a[todo], b[todo], sign)
        out[wanted] = values


def _price_integral(node_eval, activation, sub: Covariances, near0, rtol, options):
    """sqrt(ab) int sin(phi) E'(phi) dphi over the angle to the nearer end (Gauss-Legendre),
    and its error estimate from the integrator's node errors."""
    width = np.where(near0, sub.theta, sub.psi)
    ang = 0.5 * width[:, None] * (_GL_X[None, :] + 1.0)
    sab = np.sqrt(sub.a * sub.b)
    a_n = np.repeat(sub.a, PRICE_NODES)
    b_n = np.repeat(sub.b, PRICE_NODES)
    s = np.sin(ang).ravel()
    sign = np.repeat(np.where(near0, 1.0, -1.0), PRICE_NODES)
    nodes = Covariances(
        a_n, b_n, sign * np.repeat(sab, PRICE_NODES) * np.cos(ang).ravel(), a_n * b_n * s * s
    )
    d = node_eval(activation, "dsds", nodes, rtol=rtol, **options)
    d_values = np.where(np.isfinite(d.error), d.values, 0.0)
    integrand = (s * d_values).reshape(-1, PRICE_NODES)
    integral = sab * 0.5 * width * (integrand @ _GL_W)
    err = sab * 0.5 * width * ((np.abs(s) * d.error).reshape(-1, PRICE_NODES) @ _GL_W)
    return integral, err


def _compete(integrator, activation, key, cov, idx, values, error, rtol, options, attempts,
             float_tried: bool = False):
    """Replace values[idx] by the integrator's direct values where their error estimate is
    smaller, trying ``attempts`` (method names) in turn on the targets still missing
    ``rtol``; returns the indices still missing it.  Once its cheap float values
    (``try_evaluate``) have been tried on these targets (here, or before: ``float_tried``),
    "evaluate" runs the integrator's ``evaluate_precise`` where it has one: the float path
    would only fail again."""
    weak = idx[~(error[idx] <= rtol * np.abs(values[idx]))]
    for attempt in attempts:
        run = getattr(integrator, attempt, None)
        if run is None or weak.size == 0 or (attempt == "try_evaluate" and options):
            continue
        if attempt == "evaluate" and float_tried:
            run = getattr(integrator, "evaluate_precise", run)
        res = run(activation, key, cov.take(weak), rtol=rtol, **options)
        float_tried |= attempt == "try_evaluate"
        ok = np.isfinite(res.error) & (res.error < error[weak])
        values[weak[ok]] = res.values[ok]
        error[weak[ok]] = res.error[ok]
        weak = weak[~(error[weak] <= rtol * np.abs(values[weak]))]
    return weak


def _available_keys(activation: Activation, integrator: Integrator) -> set[str]:
    return {k for k in ("ss", "dsds") if integrator.unavailable_reason(activation, k) is None}


def _power_of_two_scaling(a, b, c):
    """(a', b', c') = (a 4^-p, b 4^-q, c 2^-(p+q)) with a', b' in [1/2, 2], and (p, q).

    Scaling by powers of two is exact, so rho, the determinant's relative accuracy and
    every digit survive, while a b, c^2 and the HGM's x = -1/2 L^-1 stay far from overflow
    and underflow (variances from 1e-320 to 1e300).  Zero variances keep p = 0."""
    a, b, c = (np.asarray(v, dtype=float).ravel() for v in (a, b, c))
    with np.errstate(divide="ignore"):
        p = np.where(a > 0, np.round(np.log2(np.where(a > 0, a, 1.0)) / 2), 0).astype(int)
        q = np.where(b > 0, np.round(np.log2(np.where(b > 0, b, 1.0)) / 2), 0).astype(int)
    return (np.ldexp(a, -2 * p), np.ldexp(b, -2 * q), np.ldexp(c, -(p + q))), (p, q)


def _unscaled(values, error, exponent, degrees, name, key):
    """values * 2^(p k1 + q k2) (and the errors), or a clear error where a finite value
    overflows float64 (a genuinely infinite dual stays inf)."""
    p, q = exponent
    k1, k2 = degrees
    shift = p * k1 + q * k2
    with np.errstate(over="ignore", invalid="ignore"):
        if np.all(np.equal(np.mod(shift, 1), 0)):
            out = np.ldexp(values, shift.astype(int))
            err = np.ldexp(np.asarray(error, dtype=float), shift.astype(int))
        else:
            out, err = values * np.exp2(shift), np.asarray(error, dtype=float) * np.exp2(shift)
    overflow = np.isinf(out) & np.isfinite(values)
    if np.any(overflow):
        i = int(np.flatnonzero(overflow)[0])
        raise ValueOverflowError(
            f"the {key} dual of {name!r} is finite but exceeds float64 (about "
            f"{values[i]:.3g} * 2^{float(shift[i]):g}, entry {i}): rescale the inputs"
        )
    return out, err


def dual(
    activation: str | Activation,
    a,
    b,
    c,
    *,
    derivative: bool = False,
    method: str = "auto",
    rtol: float = 1e-12,
    return_error: bool = False,
    **options,
):
    """E[s(u) s(v)] (or E[s'(u) s'(v)] with ``derivative=True``) for (u, v) ~ N(0, L).

    Parameters
    ----------
    activation : str or Activation
        A registered name (``hgmntk activations`` lists them) or a SymPy expression in u:
        any expression with a quadrature method, a holonomic one (its Pfaffian system is
        derived and cached) with the exact methods.
    a, b, c : array_like
        Entries of L = [[a, c], [c, b]], broadcast together; L must be positive semidefinite.
    derivative : bool
        Evaluate the dual of the derivative s' (the NTK needs it).
    method : str
        "auto" (closed form, else HGM, else quadrature), "closed", "hgm", "gauss-hermite",
        "monte-carlo", or any name a plugin registers.
    rtol : float
        Relative tolerance of the ODE solver (HGM).
    return_error : bool
        Also return the estimated absolute error (same shape), never below half a unit in
        the last place of the float64 value (the rounding the returned value carries).
    **options
        Passed to the integrator (``degree`` for gauss-hermite, ``samples``/``seed`` for
        monte-carlo).

    Returns
    -------
    numpy.ndarray (or a tuple (values, errors))

    Examples
    --------
    >>> import hgmntk
    >>> float(hgmntk.dual("relu", 1.0, 1.0, 0.0))  # 1/(2 pi)
    0.15915494309189535
    """
    act = get_activation(activation, method)
    if not isinstance(rtol, (int, float)) or not (0 < rtol < 1):
        raise InvalidInputError(f"rtol must be a number in (0, 1), got {rtol!r}")
    key = DUAL_KEYS[bool(derivative)]
    try:
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, c)))
    except ValueError as exc:
        raise InvalidInputError(f"a, b and c do not broadcast together: {exc}") from exc
    except TypeError as exc:
        raise InvalidInputError(f"a, b and c must be numbers or arrays: {exc}") from exc
    shape = arrays[0].shape
    degrees = act.pair_homogeneity(key)
    finite = all(np.all(np.isfinite(v)) for v in arrays)  # else from_arrays says what is wrong
    if finite:
        check_correlation(*arrays)
    scaled, exponent = (
        _power_of_two_scaling(*arrays) if degrees and finite else (arrays, None)
    )
    if not degrees and finite:
        _check_scaled_range(act, arrays[0], arrays[1])
    cov = Covariances.from_arrays(*scaled)
    res = evaluate_dual(
        act, key, cov, method=method, rtol=rtol, options=options, distances=False
    )
    values = res.values.astype(float)
    if exponent is not None:  # E(a, b, c) = 2^(p k1 + q k2) E(a', b', c')
        values, res.error = _unscaled(values, res.error, exponent, degrees, act.name, key)
    values = values.reshape(shape)
    if return_error:
        error = res.error.reshape(shape)
        with np.errstate(invalid="ignore"):
            rounding = np.abs(values) * (np.finfo(float).eps / 2)
            error = np.where(np.isfinite(values), np.fmax(error, rounding), error)
        return values, error
    return values
