"""The integrator contract and the method table.

An integrator evaluates a dual activation E[s1(u) s2(v)] at a batch of covariances.  It is
code written once; activations are data.  Contract (what the core guarantees and expects):

1. ``evaluate`` receives only covariances with a > 0, b > 0 and det = ab - c^2 > 0 (the core
   evaluates singular covariances, rho = +-1, from the activation's collinear data), as a
   :class:`~hgmntk.covariance.Covariances` whose ``det`` is accurate.
2. It returns an :class:`IntegratorResult` with one value per covariance, in the order given,
   and an error estimate per value (absolute; NaN where it has none).
3. It never returns NaN or garbage silently: failure raises :class:`IntegrationError` saying
   where, and an integrator that does not apply says why in ``unavailable_reason``.
4. ``exact`` integrators (closed forms, HGM) are accurate to ~1e-12 relative; the core then
   also uses them for the Price-theorem integrals that carry rho -> +-1 without cancellation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np

from .covariance import Covariances


@dataclass
class PairBlock:
    """A block of pairs for block evaluators: sa (n, 1) and sb (1, m) are the square roots
    of the variances, rho (n, m) the correlations, sab = sa sb (computed when not given);
    the angle is computed once per block and shared by the evaluators of both duals."""

    sa: np.ndarray
    sb: np.ndarray
    rho: np.ndarray
    cache: dict = field(default_factory=dict)  # evaluators' shared work (one per block)
    sab: np.ndarray | None = None

    def __post_init__(self):
        if self.sab is None:
            self.sab = self.sa * self.sb

    @cached_property
    def theta(self) -> np.ndarray:
        """arccos(rho) in [0, pi]."""
        return np.arccos(self.rho)

    @cached_property
    def sin(self) -> np.ndarray:
        """sin(theta) = sqrt((1 - rho)(1 + rho))."""
        return np.sqrt((1 - self.rho) * (1 + self.rho))


#: f(PairBlock) -> (values, trusted): see :meth:`Integrator.block_evaluator`.
BlockEvaluator = Callable[[PairBlock], tuple[np.ndarray, np.ndarray]]


@dataclass
class IntegratorResult:
    """Values of a dual at a batch of covariances and their estimated absolute errors."""

    values: np.ndarray
    error: np.ndarray


class Integrator:
    """Base class of integrators (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    exact: ClassVar[bool] = False
    #: Options accepted by :meth:`evaluate` with their defaults (shown by the CLI).
    options: ClassVar[dict[str, object]] = {}

    def unavailable_reason(self, activation, key: str) -> str | None:
        """None if this integrator can evaluate dual ``key`` of ``activation``, else why not."""
        raise NotImplementedError

    def evaluate(
        self, activation, key: str, cov: Covariances, *, rtol: float, **options
    ) -> IntegratorResult:
        """Evaluate dual ``key`` ("ss" or "dsds") of ``activation`` at every covariance."""
        raise NotImplementedError

    def block_evaluator(self, activation, key: str) -> BlockEvaluator | None:
        """A vectorised float64 evaluator of dual ``key`` for the fast path of the deep
        kernels, or None (the default) when this integrator offers none.

        The evaluator is called as ``f(block)`` on a :class:`PairBlock` (square roots of the
        variances sa (n, 1) and sb (1, m), correlations rho (n, m)) and returns
        ``(values, trusted)``: E at every entry and a boolean mask of the entries whose
        value it guarantees to ~1e-13 relative.  The other entries are recomputed on the
        careful path (:meth:`evaluate` with accurate determinants).
        """
        return None

    def check_options(self, options: dict) -> None:
        """Raise :class:`~hgmntk.errors.InvalidInputError` for an option this integrator
        does not take, naming the ones it does."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            from .errors import InvalidInputError

            accepted = ", ".join(f"{k} (default {v!r})" for k, v in self.options.items())
            raise InvalidInputError(
                f"method {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                + (f"its options: {accepted}" if accepted else "it takes no options")
            )

    def __repr__(self) -> str:
        return f"<integrator {self.name!r}>"
