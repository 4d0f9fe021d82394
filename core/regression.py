"""Kernel regression with the infinite-width NNGP or NTK (train and predict).

With training inputs X, targets Y, test inputs x and a ridge term lam:

- ``kernel="nngp"``: the Gaussian-process posterior of the infinitely wide Bayesian network,
  mean K(x, X) (K(X, X) + lam I)^-1 Y and variance K(x, x) - K(x, X) (K + lam I)^-1 K(X, x);
- ``kernel="ntk"``: the network trained to convergence by gradient descent on the squared
  loss (Jacot et al. 2018; Lee et al. 2019): mean T(x, X) (T + lam I)^-1 Y, and the
  variance over random initialisations
  S(x,x) + T_x T^-1 S T^-1 T_x' - (T_x T^-1 S(X, x) + S(x, X) T^-1 T_x'),
  with T = NTK, S = NNGP and T^-1 meaning (T(X, X) + lam I)^-1.

Both solve with a Cholesky factorisation of the regularised training kernel.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .deep_kernels import check_inputs, kernels
from .errors import HgmntkError, InvalidInputError


class NotFittedError(HgmntkError, RuntimeError):
    """predict() called before fit()."""


def _check_targets(y, n: int) -> np.ndarray:
    try:
        arr = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"y must be numeric: {exc}") from exc
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise InvalidInputError(
            f"y must have shape ({n},) or ({n}, k) to match X with {n} rows, got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("y contains NaN or infinite values; clean the targets first")
    return arr


def _factor(matrix: np.ndarray, ridge: float):
    try:
        return linalg.cho_factor(matrix + ridge * np.eye(matrix.shape[0]), lower=True)
    except linalg.LinAlgError as exc:
        raise InvalidInputError(
            "the regularised training kernel is not positive definite (duplicate training "
            f"points with ridge={ridge:g}?); increase ridge"
        ) from exc


class KernelRegressor:
    """Scikit-learn style regressor with the infinite-width NNGP or NTK.

    Examples
    --------
    >>> import numpy as np, hgmntk
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]); y = np.array([0.0, 1.0, 1.0])
    >>> model = hgmntk.KernelRegressor("relu", depth=2, ridge=1e-8).fit(X, y)
    >>> np.allclose(model.predict(X), y, atol=1e-5)
    True
    """

    def __init__(
        self,
        activation: str = "relu",
        depth: int = 1,
        *,
        w_std: float = 1.0,
        b_std: float = 0.0,
        kernel: str = "ntk",
        ridge: float = 1e-10,
        method: str = "auto",
    ) -> None:
        if kernel not in ("ntk", "nngp"):
            raise InvalidInputError(f"kernel must be 'ntk' or 'nngp', got {kernel!r}")
        if not isinstance(ridge, (int, float)) or not np.isfinite(ridge) or ridge < 0:
            raise InvalidInputError(f"ridge must be a finite number >= 0, got {ridge!r}")
        self.activation = activation
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.kernel = kernel
        self.ridge = float(ridge)
        self.method = method

    def _kernels(self, x1, x2=None):
        return kernels(
            x1,
            x2,
            activation=self.activation,
            depth=self.depth,
            w_std=self.w_std,
            b_std=self.b_std,
            method=self.method,
        )

    def fit(self, X, y) -> KernelRegressor:
        """Compute the training kernels and factorise K(X, X) + ridge I."""
        X = check_inputs(X, "X")
        y = _check_targets(y, X.shape[0])
        k = self._kernels(X)
        train = k.ntk if self.kernel == "ntk" else k.nngp
        if not np.all(np.isfinite(train)):
            raise InvalidInputError(
                f"the {self.kernel} training kernel has infinite entries (the {self.activation!r}"
                " derivative dual diverges on the diagonal); use kernel='nngp'"
            )
        self.X_ = X
        self.y_ = y
        self.k_train_ = k
        self.factor_ = _factor(train, self.ridge)
        self.alpha_ = linalg.cho_solve(self.factor_, y)
        return self

    def predict(self, X, return_std: bool = False):
        """Predictive mean (and standard deviation) at test inputs X."""
        if not hasattr(self, "alpha_"):
            raise NotFittedError("call fit(X, y) before predict(X)")
        X = check_inputs(X, "X")
        if X.shape[1] != self.X_.shape[1]:
            raise InvalidInputError(
                f"X has {X.shape[1]} features but the model was fitted on {self.X_.shape[1]}"
            )
        cross = self._kernels(X, self.X_)
        kx = cross.ntk if self.kernel == "ntk" else cross.nngp
        mean = kx @ self.alpha_
        if not return_std:
            return mean
        var = self._variance(X, cross)
        return mean, np.sqrt(np.maximum(var, 0.0))

    def _variance(self, X, cross) -> np.ndarray:
        test = self._kernels(X)
        prior = np.diag(test.nngp)
        if self.kernel == "nngp":
            v = linalg.cho_solve(self.factor_, cross.nngp.T)
            return prior - np.einsum("ij,ji->i", cross.nngp, v)
        t_inv_tx = linalg.cho_solve(self.factor_, cross.ntk.T)  # T^-1 T_x'
        s = self.k_train_.nngp
        quad = np.einsum("ji,jk,ki->i", t_inv_tx, s, t_inv_tx)
        mixed = np.einsum("ij,ji->i", cross.nngp, t_inv_tx)
        return prior + quad - 2 * mixed


def kernel_regression(
    x_train, y_train, x_test, *, activation: str, depth: int, return_std: bool = False, **kwargs
):
    """Function form of :class:`KernelRegressor`: fit on the training set, predict x_test."""
    model = KernelRegressor(activation, depth, **kwargs).fit(x_train, y_train)
    return model.predict(x_test, return_std=return_std)
