"""The infinite-width NNGP and NTK as a scikit-learn kernel (needs ``hgmntk[sklearn]``).

:class:`InfiniteWidthKernel` is a ``sklearn.gaussian_process.kernels.Kernel``:

- ``GaussianProcessRegressor(kernel=InfiniteWidthKernel("relu", 3, kernel="nngp"))`` is
  the posterior of the infinitely wide Bayesian network (add ``WhiteKernel()`` or ``alpha``
  for noise);
- ``KernelRidge(kernel=InfiniteWidthKernel(...))`` and ``SVR(kernel=InfiniteWidthKernel(...))``
  call it on whole matrices, k(X, Y) of shape (n_X, n_Y);
- for ``kernel="precomputed"`` estimators, ``k(X_train)`` and ``k(X_test, X_train)`` are the
  matrices to pass.

The network parameters (depth, w_std, b_std) are not hyperparameters in the Gaussian
process sense (the kernel has no gradient in them): tune them with ``GridSearchCV``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from sklearn.gaussian_process.kernels import Kernel
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"hgmntk.sklearn_kernels needs scikit-learn ({exc}); install it with "
        "pip install 'hgmntk[sklearn]'"
    ) from exc

from .deep_kernels import kernels


class InfiniteWidthKernel(Kernel):
    """k(x, x') = NTK or NNGP of a depth-``depth`` fully connected network at infinite width.

    Sigma_0 = w_std^2 x.x'/d + b_std^2, Sigma_h = w_std^2 E[s(u)s(v)] + b_std^2 and
    NTK_h = Sigma_h + NTK_{h-1} w_std^2 E[s'(u)s'(v)] (see :func:`hgmntk.kernels`);
    ``kernel`` chooses NTK_depth ("ntk") or Sigma_depth ("nngp").  Parameters are those of
    :class:`hgmntk.KernelRegressor` and are stored as given.

    Examples
    --------
    >>> import numpy as np
    >>> from hgmntk.sklearn_kernels import InfiniteWidthKernel
    >>> k = InfiniteWidthKernel("relu", depth=2)
    >>> k(np.eye(3)).shape, k.diag(np.eye(3)).shape
    ((3, 3), (3,))
    """

    def __init__(
        self,
        activation: Any = "relu",
        depth: int = 1,
        w_std: float = 1.0,
        b_std: float = 0.0,
        kernel: str = "ntk",
        method: str = "auto",
    ) -> None:
        self.activation = activation
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.kernel = kernel
        self.method = method

    def _matrix(self, X, Y=None) -> np.ndarray:
        if self.kernel not in ("ntk", "nngp"):
            raise ValueError(f"kernel must be 'ntk' or 'nngp', got {self.kernel!r}")
        k = kernels(X, Y, activation=self.activation, depth=self.depth, w_std=self.w_std,
                    b_std=self.b_std, method=self.method)
        return k.ntk if self.kernel == "ntk" else k.nngp

    def __call__(self, X, Y=None, eval_gradient: bool = False):
        """k(X, Y) of shape (n_X, n_Y) (Y = X if None); with ``eval_gradient`` also the
        gradient with respect to the (empty) vector of hyperparameters, shape (n, n, 0)."""
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        K = self._matrix(X, Y)
        if eval_gradient:
            return K, np.empty((K.shape[0], K.shape[1], 0))
        return K

    def diag(self, X) -> np.ndarray:
        """k(x, x) for each row x of X (one point at a time: no pairs are computed)."""
        X = np.asarray(X, dtype=float)
        return np.array([self._matrix(X[i : i + 1])[0, 0] for i in range(X.shape[0])])

    def is_stationary(self) -> bool:
        """No: k(x, x') depends on |x|, |x'| and the angle, not only on x - x'."""
        return False

    @property
    def requires_vector_input(self) -> bool:
        return True

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
