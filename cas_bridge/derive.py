"""The derivation pipeline: from an activation expression to an :class:`~hgmntk.Activation`.

For s (and s' as a distribution) the pipeline

1. checks that s is holonomic and finds annihilating ideals of s and s' in Q[u]<d>
   (:mod:`~hgmntk.cas_bridge.annihilators`), or reads and verifies user-given ones;
2. derives the Pfaffian system of Ehat for the pairs (s, s) and (s', s')
   (:func:`hgmntk.cas_bridge.pfaffian.derive_pfaffian`, or a CAS backend's restriction
   ideal followed by :func:`hgmntk.cas_bridge.pfaffian.pfaffian_from_ideal`);
3. computes F at the base point x = (-1, 0, -1) from 1-D moments to 40 digits
   (:mod:`~hgmntk.cas_bridge.moments`);
4. records homogeneity, the collinear (rho = +-1) constants and provenance.

:func:`derive_cached` memoises whole activations in the user cache directory, keyed by a
hash of the canonical expression (SymPy ``srepr``), the annihilators and
:data:`ENGINE_VERSION`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import sympy

from ..activation import Activation, CollinearData
from ..errors import ActivationFileError, DerivationError, DivergentDualError
from ..expressions import check_variance, growth_exponent
from .annihilators import (
    _as_expr,
    annihilator,
    check_holonomic,
    derivative_expression,
    homogeneity_degree,
    parse_annihilators,
    verify_annihilator,
)
from .moments import collinear_constants, initial_values
from .weyl import Operator, format_operator

if TYPE_CHECKING:
    from .pfaffian import DerivedSystem

#: Bumped whenever the derivation output changes; part of the cache key.
ENGINE_VERSION = "1"
ENGINE_NAME = "hgmntk.cas_bridge.derive"
BASE_POINT = ("-1", "0", "-1")

Progress = Callable[[str, float], None]


class _Clock:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.t0 = time.perf_counter()

    def __call__(self, step: str) -> None:
        if self.progress is not None:
            self.progress(step, time.perf_counter() - self.t0)


def _expression_text(expr: sympy.Expr, given: str | None) -> str:
    """A string that parse_activation_expression reads back to ``expr``."""
    from ..expressions import parse_activation_expression
    from .annihilators import to_heaviside

    if given is not None:
        return given
    for candidate in (expr, to_heaviside(expr)):
        text = sympy.sstr(candidate)
        try:
            back = parse_activation_expression(text)
        except Exception:
            continue
        if sympy.simplify(to_heaviside(back) - to_heaviside(expr)) == 0:
            return text
    raise DerivationError(f"cannot write {expr} in the activation file syntax")


def _registered_expression(name: str) -> str:
    import importlib

    act = None
    for modname in ("hgmntk.plugin_manager", "hgmntk.registry", "hgmntk.plugins"):
        try:
            get_registry = importlib.import_module(modname).get_registry
        except (ImportError, AttributeError):
            continue
        act = get_registry().activations.get(name)
        break
    if act is None:
        raise DerivationError(
            f"no expression given and no registered activation {name!r} to take it from; "
            "annihilators alone do not fix the initial values: give the expression too"
        )
    return act.expression


def _annihilators_for(
    expr: sympy.Expr, given: Sequence[str] | None, what: str
) -> list[Operator]:
    if given:
        ops = parse_annihilators(given)
        for op in ops:
            if not verify_annihilator(op, expr):
                raise DerivationError(
                    f"the given annihilator {format_operator(op)!r} of {what} does not "
                    f"annihilate {sympy.sstr(expr)} (as a distribution)"
                )
        return ops
    return annihilator(expr)


#: The backend names that mean the pure-Python engine.
_ENGINE_NAMES = ("auto", "sympy", "python")


def resolve_backend_name(backend: str) -> str:
    """'auto' -> ``$HGMNTK_CAS_BACKEND`` if set, else 'python'; other names unchanged."""
    if backend == "auto":
        return os.environ.get("HGMNTK_CAS_BACKEND", "").strip() or "python"
    return backend


def derive_system(
    ann1: list[Operator],
    ann2: list[Operator],
    *,
    backend: str = "auto",
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
    cas_pfaffian: bool = True,
):
    """The 2-D Pfaffian system (a ``DerivedSystem``) of Ehat for the annihilators.

    ``backend`` "sympy"/"python": the pure-Python integration-by-parts engine; "auto": the
    backend named by ``HGMNTK_CAS_BACKEND`` if set, else the engine (the fastest here, see
    the README); any other name: that CAS backend's restriction ideal, then the engine's
    Pfaffian system of that ideal.  A backend with the "integrability" step (Risa/Asir: yang)
    computes the Pfaffian system itself too (unless ``cas_pfaffian`` is false; see
    :func:`cas_checked`).  Returns (system, name of the engine used).
    """
    from . import pfaffian

    backend = resolve_backend_name(backend)
    if backend in _ENGINE_NAMES:
        return pfaffian.derive_pfaffian(ann1, ann2, progress=progress, timeout=timeout), "python"
    from .backend import get_backend

    cas = get_backend(backend)
    if hasattr(cas, "require"):
        cas.require()
    gens = cas.restriction_ideal(ann1, ann2, timeout=timeout)
    system = pfaffian.pfaffian_from_ideal(gens, progress=progress, timeout=timeout)
    if cas_pfaffian:
        system = cas_checked(system, cas.name, progress=progress, timeout=timeout)
    return system, cas.name


def cas_checked(
    system: DerivedSystem,
    backend: str,
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> DerivedSystem:
    """``system`` after the backend's own Pfaffian system of ``system.ideal`` matched it.

    Only for a backend with the "integrability" step (Risa/Asir: Groebner basis in the
    rational Weyl algebra, ``yang.stdmon``, ``yang.pfaffian``); the two systems must have
    the same standard monomials and exactly the same matrices, else DerivationError.
    Other backends (and the engine itself) return ``system`` unchanged.
    """
    from . import pfaffian
    from .backend import get_backend

    if backend in _ENGINE_NAMES:
        return system
    cas = get_backend(backend)
    if "integrability" not in cas.capabilities or not hasattr(cas, "pfaffian_system"):
        return system
    if progress is not None:
        progress(f"Pfaffian system by {cas.name}, checked against the engine's")
    theirs = cas.pfaffian_system(system.ideal, timeout=timeout)
    return pfaffian.same_system(theirs, system, what=cas.name)


def admissibility(system, samples: int = 4000, seed: int = 12345) -> str | None:
    """None if no denominator factor of ``system`` vanishes on negative definite x, else why.

    Checked on random negative definite x = -1/2 L^-1 (L over many scales, plus points with
    x12 = 0 and the base point): a factor that is zero somewhere or takes both signs on the
    (connected) cone has a zero inside it, i.e. an apparent singularity that a straight
    integration path from the base point may hit.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.normal(size=(samples, 2, 2))
    cov = a @ a.transpose(0, 2, 1) + 1e-6 * np.eye(2)
    cov *= np.exp(rng.uniform(-6, 6, size=(samples, 1, 1)))
    x = -0.5 * np.linalg.inv(cov)
    x11 = np.concatenate([x[:, 0, 0], -np.exp(rng.uniform(-5, 5, 200)), [-1.0]])
    x22 = np.concatenate([x[:, 1, 1], -np.exp(rng.uniform(-5, 5, 200)), [-1.0]])
    x12 = np.concatenate([x[:, 0, 1], np.zeros(201)])
    from fractions import Fraction

    def exact(f, i: int) -> Fraction:
        pt = (Fraction(float(x11[i])), Fraction(float(x12[i])), Fraction(float(x22[i])))
        return sum((c * pt[0] ** m[0] * pt[1] ** m[1] * pt[2] ** m[2]
                    for m, c in f.terms.items()), Fraction(0))

    for f in system.factors:
        with np.errstate(all="ignore"):
            v = f.evaluate([x11, x12, x22])
        sympy_f = sympy.sstr(f.to_sympy(sympy.symbols("x11 x12 x22")))
        if len(sympy_f) > 80:
            sympy_f = sympy_f[:80] + "..."
        # floats can lose the sign of a large polynomial: confirm exceptions exactly
        major = 1 if (v > 0).sum() >= (v < 0).sum() else -1
        for i in np.flatnonzero(~(np.sign(v) == major))[:50]:
            e = exact(f, int(i))
            if e == 0:
                return f"denominator factor {sympy_f} vanishes at negative definite points"
            if (e > 0) != (major > 0):
                return f"denominator factor {sympy_f} changes sign on the negative definite cone"
    return None


def _derive_candidate(
    ops: list[Operator],
    scouts: Sequence[str],
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> tuple[DerivedSystem, str, str]:
    """(system, engine, scout): the system of ``ops`` by the first of ``scouts`` that derives it.

    A scout's DerivationError passes the candidate to the next one; the last one's is raised.
    """
    for scout in scouts[:-1]:
        try:
            return (*derive_system(ops, ops, backend=scout, progress=progress,
                                   timeout=timeout, cas_pfaffian=False), scout)
        except DerivationError:
            continue
    return (*derive_system(ops, ops, backend=scouts[-1], progress=progress, timeout=timeout,
                           cas_pfaffian=False), scouts[-1])


def _choose_system(
    candidates: Sequence[list[Operator]],
    backend: str,
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> tuple[DerivedSystem, str, list[Operator], list[str]]:
    """Derive the candidate ideals; keep the admissible system of least rank.

    The first candidate is the full ideal; if its system is admissible it is taken at once.
    Otherwise every other candidate is derived and the admissible system of least rank
    wins (the full one, with a note, when none is admissible).

    With a CAS forced and more than one candidate, every candidate, the full ideal
    included, is first derived by the pure-Python engine, whose systems equal every
    CAS's (tests/test_cas_backend_duals.py), and the CAS then derives the winner alone;
    its system must equal the engine's.  The choice is the engine's either way, and the
    ideals a CAS would derive only to reject them are the costly ones: GeLU's full
    ideals (rank 2, not admissible) took Asir's restriction 10 minutes for s and over 12
    for s', its winners under a minute each.  A candidate the engine cannot derive goes
    to the CAS; a single candidate goes to the CAS directly.  A CAS's own Pfaffian system
    (:func:`cas_checked`) is computed for the winner only: the rejected systems tend to
    have the largest denominators (GeLU: minutes in Asir's yang).
    """
    from .pfaffian import same_system

    scouting = backend not in _ENGINE_NAMES and len(candidates) > 1
    scouts = ["sympy", backend] if scouting else [backend]
    results = []
    notes = []
    for k, ops in enumerate(candidates):
        names = [format_operator(o) for o in ops]
        try:
            system, engine, scout = _derive_candidate(ops, scouts, progress, timeout)
        except DerivationError as exc:
            if len(candidates) == 1:
                raise
            notes.append(f"{names}: {exc}")
            continue
        why = admissibility(system)
        if why is not None:
            notes.append(f"rank {len(system.standard_monomials)} system of {names} "
                         f"rejected: {why}")
        results.append((why is not None, len(system.standard_monomials), k, system, engine,
                        ops, scout))
        if why is None and k == 0:
            break
    if not results:
        raise DerivationError("no annihilating ideal gave a Pfaffian system: " + "; ".join(notes))
    results.sort(key=lambda r: (r[0], r[1], r[2]))
    bad, _, _, system, engine, ops, scout = results[0]
    if scout != backend:  # chosen by the engine: now derived by the forced CAS itself
        if progress is not None:
            progress(f"restriction by {backend} of the chosen ideal")
        scouted = system
        system, engine = derive_system(ops, ops, backend=backend, progress=progress,
                                       timeout=timeout, cas_pfaffian=False)
        same_system(system, scouted, what=backend)  # the engine chose for this system
    system = cas_checked(system, backend, progress=progress, timeout=timeout)
    if bad:
        notes.append("no admissible system found; kept this one (integrate around the "
                     "apparent singularities)")
    return system, engine, ops, notes


def derive_activation(
    expression: str | sympy.Expr | None = None,
    *,
    name: str | None = None,
    annihilators: Mapping[str, Sequence[str]] | None = None,
    backend: str = "auto",
    progress: Progress | None = None,
    description: str = "",
    timeout: float | None = None,
    dps: int = 40,
) -> Activation:
    """Derive the activation file data of s = ``expression`` (SymPy syntax in ``u``).

    Produces the duals "ss" (E[s(u)s(v)]) and "dsds" (E[s'(u)s'(v)]) as Pfaffian systems with
    initial values at x = (-1, 0, -1) (L = I/2) to ``dps`` digits, the annihilators,
    homogeneity degrees {"s": k, "ds": k - 1} (or None), the collinear data and provenance.
    ``annihilators`` may give {"s": [...], "ds": [...]} (normally ordered text, verified
    against the expression); without ``expression`` the registered activation ``name`` is
    re-derived (an expression is always needed: it gives the initial values); ``name``
    defaults to the expression text.  ``progress(step, elapsed_seconds)`` is called at each
    step.  Raises
    :class:`~hgmntk.errors.NotHolonomicError` for non-holonomic activations and
    :class:`~hgmntk.errors.DerivationError` for failures.
    """
    clock = _Clock(progress)
    given_text = expression if isinstance(expression, str) else None
    if expression is None:
        if name is None:
            raise DerivationError("give an expression in u (or the name of a registered "
                                  "activation to re-derive)")
        given_text = _registered_expression(name)
        expression = given_text
    expr = _as_expr(expression)
    if name is None:
        name = given_text if given_text is not None else sympy.sstr(expr)
    check_holonomic(expr)
    dexpr = derivative_expression(expr)
    limit = _variance_limit(expr, dexpr)
    clock("annihilators")
    annihilators = dict(annihilators or {})
    ann = {
        "s": _annihilators_for(expr, annihilators.get("s"), "s"),
        "ds": _annihilators_for(dexpr, annihilators.get("ds"), "s'"),
    }
    funcs = {"s": expr, "ds": dexpr}
    duals = {}
    used = set()
    for key, side in (("ss", "s"), ("dsds", "ds")):
        clock(f"{key}: Pfaffian system")

        def note(msg: str, key: str = key) -> None:
            clock(f"{key}: {msg}")

        candidates = [ann[side]]
        if not annihilators.get(side) and len(ann[side]) > 1:
            candidates += [[g] for g in ann[side]]
        system, engine, chosen, notes = _choose_system(candidates, backend, note, timeout)
        ann[side] = chosen
        used.add(engine)
        clock(f"{key}: initial values (rank {len(system.standard_monomials)})")
        dec, exact = initial_values(funcs[side], funcs[side], system.standard_monomials,
                                    BASE_POINT, dps=dps)
        meta: dict[str, object] = {"source": f"derived by {ENGINE_NAME} {ENGINE_VERSION}",
                                   "annihilators": [format_operator(o) for o in chosen]}
        if notes:
            meta["notes"] = notes
        if exact is not None:
            meta["initial_values_exact"] = exact
        duals[key] = system.to_pfaffian_system(BASE_POINT, dec, pair=(side, side), metadata=meta)
    clock("homogeneity and collinear data")
    k = homogeneity_degree(expr)
    kd = homogeneity_degree(dexpr)
    homogeneity = {"s": k, "ds": kd if k is not None else None}
    collinear = {}
    for key, side, deg in (("ss", "s", k), ("dsds", "ds", homogeneity["ds"])):
        if deg is None:
            collinear[key] = CollinearData("quadrature")
        else:
            same, opposite = collinear_constants(funcs[side], funcs[side])
            collinear[key] = CollinearData.from_json(
                {"kind": "homogeneous", "same": same, "opposite": opposite})
    clock("done")
    return Activation(
        name=name,
        expression=_expression_text(expr, given_text),
        derivative=sympy.sstr(dexpr),
        description=description or f"derived from {sympy.sstr(expr)}",
        annihilators={s: tuple(format_operator(o) for o in ops) for s, ops in ann.items()},
        homogeneity=homogeneity,
        duals=duals,
        collinear=collinear,
        provenance={
            "engine": ENGINE_NAME,
            "engine_version": ENGINE_VERSION,
            "backend": backend if backend != "auto" else "auto (" + ",".join(sorted(used)) + ")",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(time.perf_counter() - clock.t0, 3),
            **({"variance_limit": limit} if limit < math.inf else {}),
        },
    )


def _variance_limit(expr: sympy.Expr, dexpr: sympy.Expr) -> float:
    """The variance below which both duals exist (inf: every variance); a clear error if
    they diverge at the base point L = I/2 (variance 1/2), where the initial values are
    computed, or everywhere."""
    limit = math.inf
    for f, what in ((expr, "s"), (dexpr, "s'")):
        try:
            check_variance(f, 0.5, what)
        except DivergentDualError as exc:
            if "every variance" in str(exc):
                raise
            raise DivergentDualError(
                f"{exc}; the exact methods need the duals at the base point of the "
                "derivation, variance 1/2 (L = I/2): use quadrature (method='gauss-hermite') "
                "at smaller variances, or scale the activation's argument"
            ) from None
        grow = growth_exponent(f)
        if grow > 0:
            limit = min(limit, 1 / (4 * grow))
    return limit


# ----------------------------------------------------------------------------- cache
def cache_key(
    expression: str | sympy.Expr | None,
    annihilators: Mapping[str, Sequence[str]] | None = None,
    dps: int = 40,
) -> str:
    """Hex digest identifying a derivation: srepr of the expression, annihilators, version."""
    material = {
        "engine_version": ENGINE_VERSION,
        "expression": None if expression is None else sympy.srepr(_as_expr(expression)),
        "annihilators": {k: list(v) for k, v in sorted((annihilators or {}).items())},
        "dps": dps,
        "base_point": list(BASE_POINT),
    }
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:40]


def cache_path(key: str) -> Path:
    """Where the cached derivation ``key`` lives."""
    from ..userdata import cache_dir

    return cache_dir() / f"derive-{key}.json"


def derive_cached(
    expression: str | sympy.Expr | None = None,
    *,
    name: str | None = None,
    annihilators: Mapping[str, Sequence[str]] | None = None,
    backend: str = "auto",
    progress: Progress | None = None,
    use_cache: bool = True,
    **kwargs,
) -> Activation:
    """:func:`derive_activation` with a disk cache in ``hgmntk.userdata.cache_dir()``.

    A hit returns the stored activation renamed to ``name``; a corrupt or mismatched entry
    is reported with a warning and re-derived; a cache that cannot be written is reported
    and skipped.  The backend is not part of the key (every backend yields the same dual).
    """
    if expression is None:
        if name is None:
            raise DerivationError("give an expression in u to derive")
        expression = _registered_expression(name)
    if name is None:
        name = expression if isinstance(expression, str) else sympy.sstr(_as_expr(expression))
    key = cache_key(expression, annihilators, kwargs.get("dps", 40))
    path = cache_path(key)
    if use_cache and path.exists():
        try:
            act = Activation.load(path)
            if act.provenance.get("cache_key") != key:
                raise ActivationFileError(f"{path}: cache key mismatch")
            if progress is not None:
                progress("cache hit", 0.0)
            return replace(act, name=name, source="",
                           description=kwargs.get("description") or act.description)
        except ActivationFileError as exc:
            warnings.warn(f"ignoring corrupt derivation cache entry ({exc}); re-deriving",
                          stacklevel=2)
    act = derive_activation(expression, name=name, annihilators=annihilators, backend=backend,
                            progress=progress, **kwargs)
    act = replace(act, provenance={**act.provenance, "cache_key": key})
    if use_cache:
        try:
            act.save(path)
        except OSError as exc:
            warnings.warn(f"could not write the derivation cache {path}: {exc}", stacklevel=2)
    return act
