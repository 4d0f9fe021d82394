"""The contract of computer-algebra backends, and choosing one.

A backend computes steps of the derivation pipeline (MATH.md section 3):

``"restriction"``
    :meth:`CASBackend.restriction_ideal`: from annihilators of s1 and s2 (operators of
    Q[u]<d>) to the restriction ideal I2 of Ehat in Q[x11, x12, x22]<d11, d12, d22>.
``"groebner"``
    :meth:`CASBackend.groebner_basis`: a Groebner basis (reduced on request) in D<x, dx>
    for the order :data:`BLOCK_ORDER_ROWS` (d-part first), also a Groebner basis of R I2 in the
    rational Weyl algebra R = Q(x)<d> (the Pfaffian then needs only normal forms), or
    for ``"dp"`` (degree reverse lexicographic, x11 > x12 > x22 > d11 > d12 > d22).
``"integrability"``
    the Pfaffian system and its integrability check done inside the CAS.

Backends are registered by plugins through the hook ``hgmntk_register_cas_backends``.
``hgmntk derive`` uses the backend it is told to (``--backend NAME``); its default "auto"
is the pure-Python engine, or the backend ``HGMNTK_CAS_BACKEND=name`` names (an error if
that one is unusable: no silent fallback).  ``preference`` orders the listing of
``hgmntk backends`` and :func:`pick_backend`, which returns a usable backend for a step
(for tools and tests that want "any CAS").  ``HGMNTK_HIDE_CAS=singular,asir`` makes
backends report themselves unusable.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from hgmntk.errors import CASError

from .weyl import Operator

#: The pipeline steps a backend may offer.
STEPS = ("restriction", "groebner", "integrability")

#: The block order of ``groebner_basis(order="block")``: first the total degree in d, then
#: lex on d (d11 > d12 > d22), then degree reverse lexicographic on x (x11 > x12 > x22).
#: As weight rows on (x11, x12, x22, d11, d12, d22):
BLOCK_ORDER_ROWS = (
    (0, 0, 0, 1, 1, 1),
    (0, 0, 0, 1, 0, 0),
    (0, 0, 0, 0, 1, 0),
    (1, 1, 1, 0, 0, 0),
    (0, 0, -1, 0, 0, 0),
    (0, -1, 0, 0, 0, 0),
)


@dataclass(frozen=True)
class BackendStatus:
    """Whether a backend can be used here, why (not), and the version found."""

    usable: bool
    reason: str
    version: str | None = None


@dataclass(frozen=True)
class BackendInfo:
    """One line of ``hgmntk backends``: what :func:`list_backends` returns."""

    name: str
    usable: bool
    reason: str
    version: str | None
    capabilities: tuple[str, ...]
    preference: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class BackendProtocol(Protocol):
    """What the registry needs from a backend object (duck typing is fine)."""

    name: str
    preference: int
    capabilities: frozenset[str]

    def probe(self) -> BackendStatus: ...

    def restriction_ideal(
        self, ann1: Sequence[Operator], ann2: Sequence[Operator], *, timeout: float | None = None
    ) -> list[Operator]: ...


def hidden_backends() -> set[str]:
    """Names listed in ``HGMNTK_HIDE_CAS`` (comma separated)."""
    return {s.strip() for s in os.environ.get("HGMNTK_HIDE_CAS", "").split(",") if s.strip()}


class CASBackend(ABC):
    """Base class of backends: cached probing plus the step methods.

    Subclasses set ``name``, ``preference``, ``capabilities`` and implement
    :meth:`_probe` and the steps they declare.
    """

    name: str = ""
    preference: int = 0
    capabilities: frozenset[str] = frozenset()
    #: One line for ``hgmntk backends``: what the backend needs.
    needs: str = ""

    def __init__(self) -> None:
        self._status: BackendStatus | None = None

    def probe(self, refresh: bool = False) -> BackendStatus:
        """Can this backend run here?  Cached; ``refresh=True`` probes again."""
        if self.name in hidden_backends():
            return BackendStatus(False, "hidden by HGMNTK_HIDE_CAS", None)
        if self._status is None or refresh:
            try:
                self._status = self._probe()
            except CASError as exc:
                self._status = BackendStatus(False, str(exc), None)
        return self._status

    @abstractmethod
    def _probe(self) -> BackendStatus:
        """Find the program and check it works (raise CASError or return a status)."""

    def require(self) -> BackendStatus:
        """The status, or CASError saying why the backend cannot be used."""
        status = self.probe()
        if not status.usable:
            raise CASError(f"backend {self.name!r} is not usable: {status.reason}")
        return status

    @abstractmethod
    def restriction_ideal(
        self, ann1: Sequence[Operator], ann2: Sequence[Operator], *, timeout: float | None = None
    ) -> list[Operator]:
        """Generators of the restriction ideal of Ehat (operators of algebra XD)."""

    def groebner_basis(
        self,
        gens: Sequence[Operator],
        *,
        order: str = "block",
        reduced: bool = False,
        timeout: float | None = None,
    ) -> list[Operator]:
        """Groebner basis (algebra XD) for ``order`` ``"block"`` or ``"dp"``.

        ``reduced=True`` asks for the reduced basis (unique up to scalars: comparable
        across CAS), which may cost much more than a basis.
        """
        raise CASError(f"backend {self.name!r} does not compute Groebner bases")

    def info(self) -> BackendInfo:
        return info_of(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} preference={self.preference}>"


def info_of(backend: Any) -> BackendInfo:
    """A :class:`BackendInfo` for any backend object (probing it; errors become reasons)."""
    try:
        status = backend.probe()
    except Exception as exc:  # a third-party backend whose probe raises
        status = BackendStatus(False, f"probe failed: {type(exc).__name__}: {exc}", None)
    return BackendInfo(
        name=backend.name,
        usable=bool(status.usable),
        reason=status.reason,
        version=status.version,
        capabilities=tuple(s for s in STEPS if s in backend.capabilities)
        + tuple(sorted(set(backend.capabilities) - set(STEPS))),
        preference=int(backend.preference),
    )


# --------------------------------------------------------------------------- registry access


def _registered() -> dict[str, Any]:
    """The backends registered by the loaded plugins, by name."""
    import importlib

    for modname in ("hgmntk.plugin_manager", "hgmntk.plugins", "hgmntk.registry"):
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        get_registry = getattr(module, "get_registry", None)
        if get_registry is not None:
            return dict(get_registry().backends)
    raise CASError("the hgmntk plugin registry is not available")


def _ordered(backends: dict[str, Any]) -> list[Any]:
    return sorted(backends.values(), key=lambda b: (-int(b.preference), b.name))


def get_backend(name: str, *, backends: Mapping[str, Any] | None = None) -> Any:
    """The registered backend called ``name`` (CASError listing the names otherwise).

    ``backends`` replaces the plugin registry (a name -> backend mapping), e.g. in tests.
    """
    backends = _registered() if backends is None else dict(backends)
    try:
        return backends[name]
    except KeyError:
        raise CASError(
            f"unknown CAS backend {name!r}; registered: {', '.join(sorted(backends)) or 'none'}"
        ) from None


def list_backends(*, backends: Mapping[str, Any] | None = None) -> list[BackendInfo]:
    """One :class:`BackendInfo` per registered backend, most preferred first (probes all)."""
    return [info_of(b) for b in _ordered(_registered() if backends is None else dict(backends))]


def pick_backend(
    step: str, preferred: str | None = None, *, backends: Mapping[str, Any] | None = None
) -> Any:
    """The backend that does ``step``: ``preferred`` if given, else the first usable one.

    ``preferred`` defaults to ``HGMNTK_CAS_BACKEND``.  A named backend that is unusable or
    lacks the step is an error (no silent fallback); otherwise backends are asked in order
    of preference and the first usable one offering ``step`` is returned.  CASError lists
    every backend and why it was passed over when none qualifies.
    """
    if step not in STEPS:
        raise ValueError(f"unknown pipeline step {step!r}; steps: {', '.join(STEPS)}")
    backends = _registered() if backends is None else dict(backends)
    preferred = preferred or os.environ.get("HGMNTK_CAS_BACKEND") or None
    if preferred:
        backend = get_backend(preferred, backends=backends)
        if step not in backend.capabilities:
            raise CASError(f"backend {preferred!r} cannot do the {step!r} step")
        status = backend.probe()
        if not status.usable:
            raise CASError(f"backend {preferred!r} is not usable: {status.reason}")
        return backend
    passed = []
    for backend in _ordered(backends):
        if step not in backend.capabilities:
            passed.append(f"{backend.name}: no {step!r} step")
            continue
        status = backend.probe()
        if status.usable:
            return backend
        passed.append(f"{backend.name}: {status.reason}")
    raise CASError(f"no usable backend for the {step!r} step ({'; '.join(passed) or 'none'})")


# --------------------------------------------------------------------------- ranks


def block_leading_d_exponent(op: Operator) -> tuple[int, ...]:
    """d-exponent of the leading term of ``op`` for :data:`BLOCK_ORDER_ROWS`.

    For a Groebner basis in this order these are the leading monomials of R op in the
    rational Weyl algebra R = Q(x)<d>.
    """
    if op.is_zero():
        raise ValueError("the zero operator has no leading term")

    def weight(key):
        e = key[0] + key[1]
        return tuple(sum(r * x for r, x in zip(row, e, strict=True)) for row in BLOCK_ORDER_ROWS)

    return max(op.terms, key=weight)[1]


def block_standard_monomials(gb: Sequence[Operator]) -> list[tuple[int, ...]]:
    """Standard d-monomials of R gb, for a Groebner basis ``gb`` in :data:`BLOCK_ORDER_ROWS`.

    Their number is the holonomic rank.  Raises CASError if the quotient is infinite
    (some d_i has no pure power among the leading monomials: not a holonomic system).
    """
    leads = [block_leading_d_exponent(g) for g in gb if not g.is_zero()]
    if not leads:
        raise CASError("empty Groebner basis: the quotient is infinite-dimensional")
    n = len(leads[0])
    bounds = []
    for i in range(n):
        pure = [e[i] for e in leads if all(e[j] == 0 for j in range(n) if j != i) and e[i] > 0]
        if not pure:
            raise CASError(f"no pure power of d_{i + 1} leads: the rank is not finite")
        bounds.append(min(pure))
    out: list[tuple[int, ...]] = []

    def walk(prefix: tuple[int, ...]) -> None:
        if len(prefix) == n:
            if not any(all(p >= e for p, e in zip(prefix, lead, strict=True)) for lead in leads):
                out.append(prefix)
            return
        for k in range(bounds[len(prefix)]):
            walk(prefix + (k,))

    walk(())
    return sorted(out, key=lambda m: (sum(m), m))
