"""hgmntk: exact NNGP and NTK kernels for holonomic activations by the holonomic gradient method.

Public API::

    hgmntk.dual(activation, a, b, c, derivative=False, method="auto")
    hgmntk.hermite(activation, n_max, variance=1.0)  # Hermite coefficients h_n
    hgmntk.kernels(x1, x2=None, activation=..., depth=..., w_std=1.0, b_std=0.0)
    hgmntk.kernel_layers(...)  # the same, one Kernels per depth 1..depth
    hgmntk.empirical_kernels(x1, activation=..., depth=..., width=..., seed=0)  # finite width
    hgmntk.KernelRegressor(...).fit(X, y).predict(X)  # solver="dense" | "cg" | "nystrom"
    hgmntk.kernels(..., chunks=2048)  # lazy dask arrays, tile by tile
    hgmntk.write_kernels(path, x1, x2, ...)  # out-of-core and resumable; load_kernels(path)

Plugin authors import :data:`hookimpl` and :class:`Activation` from here.
"""

from __future__ import annotations

from .activation import Activation, CollinearData
from .errors import (
    ActivationFileError,
    CASError,
    ConvergenceError,
    CovarianceError,
    DerivationError,
    DivergentDualError,
    HgmntkError,
    IntegrationError,
    InvalidInputError,
    NotApplicableError,
    NotHolonomicError,
    PluginError,
    UnknownActivationError,
    UnknownIntegratorError,
    ValueOverflowError,
)
from .hookspecs import hookimpl
from .system import PfaffianSystem

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ActivationFileError",
    "CASError",
    "CollinearData",
    "ConvergenceError",
    "CovarianceError",
    "DerivationError",
    "DivergentDualError",
    "HgmntkError",
    "IntegrationError",
    "InvalidInputError",
    "NotApplicableError",
    "NotHolonomicError",
    "PfaffianSystem",
    "PluginError",
    "UnknownActivationError",
    "UnknownIntegratorError",
    "ValueOverflowError",
    "__version__",
    "hookimpl",
]

#: Public names defined in modules that import SciPy and scikit-learn: loaded on first use
#: (PEP 562), so ``import hgmntk`` and the CLI start without them.
_LAZY = {
    "Kernels": "deep_kernels",
    "kernel_layers": "deep_kernels",
    "kernel_diagonal": "deep_kernels",
    "kernels": "deep_kernels",
    "dual": "dual_activation",
    "empirical_kernels": "empirical",
    "hermite": "hermite",
    "KernelRegressor": "regression",
    "write_kernels": "kernel_store",
    "load_kernels": "kernel_store",
    "kernel_regression": "regression",
}

__all__ += sorted(_LAZY)


def __getattr__(name: str):
    import importlib

    module = _LAZY.get(name)
    if module is None:  # a submodule (hgmntk.plugin_manager, ...), imported on first use
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'hgmntk' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
