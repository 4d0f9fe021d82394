"""Exceptions raised by hgmntk.

Every error a user can cause derives from :class:`HgmntkError`; the CLI prints its message
(no traceback) and exits with status 2.  Messages say what is wrong and what to do.
"""

from __future__ import annotations


class HgmntkError(Exception):
    """Base class of all user-facing hgmntk errors."""


class UnknownActivationError(HgmntkError, KeyError):
    """An activation name that no loaded plugin registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownIntegratorError(HgmntkError, KeyError):
    """An integrator (method) name that no loaded plugin registers."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInputError(HgmntkError, ValueError):
    """Bad numerical input: NaN/inf, wrong shape, negative std, depth < 1, ..."""


class CovarianceError(InvalidInputError):
    """A covariance [[a, c], [c, b]] that is not positive semidefinite."""


class DivergentDualError(InvalidInputError):
    """The dual does not exist: E[s(U)^2] is infinite at the variances asked for (s grows
    like exp(c u^2) or faster)."""


class ValueOverflowError(HgmntkError, OverflowError):
    """A finite result too large for float64 (a genuinely infinite dual is returned as inf)."""


class NotApplicableError(HgmntkError):
    """The chosen integrator cannot evaluate this activation (e.g. "closed" without one)."""


class NotHolonomicError(HgmntkError, ValueError):
    """The activation is not a holonomic function; only quadrature integrators apply."""

    def __init__(self, message: str, expression: object = None) -> None:
        super().__init__(message)
        self.expression = expression


class IntegrationError(HgmntkError, ArithmeticError):
    """The Pfaffian ODE solve failed (step size underflow, non-finite values, ...)."""


class ActivationFileError(HgmntkError):
    """An activation data file that is missing, corrupt or of an unsupported version."""


class PluginError(HgmntkError):
    """A plugin that does not follow the hook contract (misspelt hook, bad registration)."""


class DerivationError(HgmntkError):
    """The derivation of a holonomic system failed (unsupported input, CAS failure, ...)."""


class CASError(DerivationError):
    """A computer algebra system is missing, hung, crashed or reported an error."""


class ConvergenceError(HgmntkError, ArithmeticError):
    """An iterative solver that did not reach its tolerance (never returned silently)."""
