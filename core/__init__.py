"""hgmntk: exact NNGP and NTK kernels for holonomic activations by the holonomic gradient method.

Public API::

    hgmntk.dual(activation, a, b, c, derivative=False, method="auto")
    hgmntk.kernels(x1, x2=None, activation=..., depth=..., w_std=1.0, b_std=0.0)
    hgmntk.kernel_layers(...)  # the same, one Kernels per depth 1..depth
    hgmntk.KernelRegressor(...).fit(X, y).predict(X)

Plugin authors import :data:`hookimpl` and :class:`Activation` from here.
"""

from __future__ import annotations

from .activation import Activation, CollinearData
from .errors import (
    ActivationFileError,
    CASError,
    CovarianceError,
    DerivationError,
    HgmntkError,
    IntegrationError,
    InvalidInputError,
    NotApplicableError,
    NotHolonomicError,
    PluginError,
    UnknownActivationError,
    UnknownIntegratorError,
)
from .hookspecs import hookimpl
from .system import PfaffianSystem

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ActivationFileError",
    "CASError",
    "CollinearData",
    "CovarianceError",
    "DerivationError",
    "HgmntkError",
    "IntegrationError",
    "InvalidInputError",
    "NotApplicableError",
    "NotHolonomicError",
    "PfaffianSystem",
    "PluginError",
    "UnknownActivationError",
    "UnknownIntegratorError",
    "__version__",
    "hookimpl",
]

from .deep_kernels import Kernels, kernel_layers, kernels  # noqa: E402
from .dual_activation import dual  # noqa: E402
from .regression import KernelRegressor, kernel_regression  # noqa: E402

__all__ += ["KernelRegressor", "Kernels", "dual", "kernel_layers", "kernel_regression", "kernels"]
