"""Kernel regression with the infinite-width NNGP or NTK (train and predict).

With training inputs X, targets Y, test inputs x and a ridge term lam:

- ``kernel="nngp"``: the Gaussian-process posterior of the infinitely wide Bayesian network,
  mean K(x, X) (K(X, X) + lam I)^-1 Y and variance K(x, x) - K(x, X) (K + lam I)^-1 K(X, x);
- ``kernel="ntk"``: the network trained to convergence by gradient descent on the squared
  loss (Jacot et al. 2018; Lee et al. 2019): mean T(x, X) (T + lam I)^-1 Y, and the
  variance over random initialisations
  S(x,x) + T_x T^-1 S T^-1 T_x' - (T_x T^-1 S(X, x) + S(x, X) T^-1 T_x'),
  with T = NTK, S = NNGP and T^-1 meaning (T(X, X) + lam I)^-1.

Two different uncertainties, kept apart (as neural-tangents keeps its NNGP posterior and
its NTK ensemble covariance apart):

- :meth:`KernelRegressor.predict` with ``return_std=True`` (``kernel="nngp"`` only): the
  standard deviation of a new observation y under the Gaussian process y = f + noise,
  f ~ GP(0, s^2 K), noise ~ N(0, s^2 lam): sqrt(s^2 (K(x,x) - K(x,X)(K + lam I)^-1 K(X,x)
  + lam)), with the output scale s^2 = Y' (K + lam I)^-1 Y / n at its maximum likelihood.
  This is a predictive band: about 95 % of new observations fall within 2 of it when the
  model fits the data.
- :meth:`KernelRegressor.ensemble_std`: the spread of the outputs of infinitely many
  independently initialised networks, all trained to convergence (the NTK variance above,
  or for the NNGP the latent posterior of a network whose read-out layer alone is trained,
  unscaled).  It says how much the trained network depends on its initialisation, not
  how far the truth is: it shrinks to 0 at every training point whatever the noise.

Large training sets: ``solver="cg"`` (the same system by matrix-free conjugate gradients) or
``"nystrom"`` (Falkon's estimator on M centres) never form the n x n kernel; ``"auto"``
switches to ``"nystrom"`` above :data:`hgmntk.solvers.AUTO_DENSE_MAX` points; kernel tiles
can run on a Dask cluster (``client``).  See :mod:`hgmntk.solvers`.

The ridge lam is chosen by leave-one-out cross-validation by default (``ridge="loo"``):
from one eigendecomposition K = V diag(k) V', (K + lam I)^-1 = V diag(1 / (k + lam)) V' for
every lam of a grid, and the leave-one-out residuals are r_i = [(K + lam I)^-1 Y]_i /
[(K + lam I)^-1]_ii (exact for kernel ridge regression, no refitting).  The fitted model
solves with a Cholesky factorisation of the regularised training kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg

from .deep_kernels import check_inputs, kernel_diagonal, kernels
from .errors import HgmntkError, InvalidInputError
from .progress import reporter
from .solvers import (
    DEFAULT_CENTRES,
    KernelOperator,
    SolveReport,
    cholesky_lower,
    chosen_solver,
    falkon,
    nystrom_cg,
    pick_centres,
)
from .tiles import check_tile, connected, kernel_spec

try:  # scikit-learn is optional: pip install "hgmntk[sklearn]"
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.exceptions import NotFittedError as _NotFittedBase

    HAVE_SKLEARN = True
except ImportError:  # the same protocol, written out (get_params/set_params, score)
    HAVE_SKLEARN = False

    class _NotFittedBase(ValueError, AttributeError):  # type: ignore[no-redef]
        """Stands in for sklearn.exceptions.NotFittedError."""

    class BaseEstimator:  # type: ignore[no-redef]
        """scikit-learn's parameter protocol: the __init__ arguments are the parameters."""

        @classmethod
        def _get_param_names(cls) -> list[str]:
            import inspect

            sig = inspect.signature(cls.__init__)
            return sorted(p.name for p in sig.parameters.values()
                          if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep: bool = True) -> dict[str, Any]:
            """The parameters given to __init__ (``deep`` has nothing to recurse into)."""
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params: Any):
            """Set parameters by name; returns self."""
            valid = self._get_param_names()
            for name, value in params.items():
                if name not in valid:
                    raise ValueError(
                        f"Invalid parameter {name!r} for estimator {type(self).__name__}; "
                        f"valid parameters are: {valid}"
                    )
                setattr(self, name, value)
            return self

        def __repr__(self) -> str:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class RegressorMixin:  # type: ignore[no-redef]
        """``score`` = the coefficient of determination R^2, as in scikit-learn."""

        def score(self, X, y, sample_weight=None) -> float:
            """R^2 = 1 - sum w (y - yhat)^2 / sum w (y - mean_w y)^2 (averaged over outputs)."""
            y = np.asarray(y, dtype=float)
            pred = np.asarray(self.predict(X), dtype=float).reshape(y.shape)
            w = np.ones(y.shape[0]) if sample_weight is None else np.asarray(sample_weight)
            w = w.reshape(-1, *([1] * (y.ndim - 1)))
            resid = (w * (y - pred) ** 2).sum(axis=0)
            mean = (w * y).sum(axis=0) / w.sum()
            total = (w * (y - mean) ** 2).sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = np.where(total > 0, 1 - resid / total, np.where(resid > 0, 0.0, 1.0))
            return float(np.mean(r2))


class NotFittedError(HgmntkError, _NotFittedBase, RuntimeError):
    """predict() called before fit() (scikit-learn's NotFittedError when it is installed)."""


class InputTypeError(InvalidInputError, TypeError):
    """Input that is not numeric at all (a dict in an object array, a sparse matrix)."""


def _check_X(X, name: str = "X") -> np.ndarray:
    """Inputs as a finite 2-D float array, with scikit-learn's messages for its checks."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise InputTypeError(
            f"{name} is a sparse matrix; sparse input is not supported (the kernels need dense "
            "inputs): pass X.toarray()"
        )
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric array: {exc}") from exc
    if arr.dtype.kind == "c":
        raise InvalidInputError(f"Complex data not supported: {name} has complex entries")
    if arr.dtype == object:
        try:
            arr = arr.astype(float)
        except TypeError as exc:  # e.g. "float() argument must be a string or a real number"
            raise InputTypeError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim == 1:
        raise InvalidInputError(
            f"Expected a 2-D array for {name}, got a 1-D array of shape {arr.shape}. Reshape "
            "your data with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a "
            "single sample"
        )
    if arr.ndim == 2 and 0 in arr.shape:
        what = "sample(s)" if arr.shape[0] == 0 else "feature(s)"
        raise InvalidInputError(
            f"Found array with 0 {what} (shape={arr.shape}) while a minimum of 1 is required."
        )
    return check_inputs(arr, name)


def _check_targets(y, n: int) -> np.ndarray:
    if y is None:
        raise InvalidInputError(
            "KernelRegressor requires y to be passed, but the target y is None"
        )
    try:
        arr = np.asarray(y)
        if arr.dtype.kind == "c":
            raise InvalidInputError("Complex data not supported: y has complex entries")
        arr = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"y must be numeric: {exc}") from exc
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise InvalidInputError(
            f"y must have shape ({n},) or ({n}, k) to match X with {n} rows, got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("y contains NaN or infinite values; clean the targets first")
    return arr


#: ridge="loo" tries lam = mean(diag K) * 10^p for these p.
LOO_EXPONENTS = np.arange(-9.0, 1.01, 0.5)


def loo_ridge(matrix: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The ridge with the least leave-one-out mean squared error, over a relative grid.

    Returns (lam, grid, mse): lam = grid[argmin mse], grid = mean(diag K) 10^LOO_EXPONENTS,
    mse[j] = mean over samples (and outputs) of r_i^2 with r_i = alpha_i / G_ii, alpha = G y,
    G = (K + grid[j] I)^-1, all from one eigendecomposition of K (see the module docstring).
    """
    vals, vecs = linalg.eigh(matrix)
    vals = np.maximum(vals, 0.0)  # rounding-level negative eigenvalues of a PSD kernel
    scale = float(np.mean(np.diag(matrix)))
    if not scale > 0:
        scale = 1.0
    grid = scale * 10.0**LOO_EXPONENTS
    inv = 1.0 / (vals[:, None] + grid[None, :])  # (n, L)
    g_diag = (vecs**2) @ inv  # (n, L): diag of (K + lam I)^-1
    coef = vecs.T @ y.reshape(len(y), -1)  # (n, k)
    alpha = np.einsum("ik,kl,kj->ilj", vecs, inv, coef)  # (n, L, k)
    resid = alpha / g_diag[:, :, None]
    mse = np.mean(resid**2, axis=(0, 2))
    return float(grid[int(np.argmin(mse))]), grid, mse


def _factor(matrix: np.ndarray, ridge: float):
    """(L, True) with L L' = matrix + ridge I, for ``linalg.cho_solve``."""
    regularised = matrix + ridge * np.eye(matrix.shape[0])
    try:
        return cholesky_lower(regularised), True
    except linalg.LinAlgError as exc:
        raise InvalidInputError(
            "the regularised training kernel is not positive definite (duplicate training "
            f"points with ridge={ridge:g}?); increase ridge"
        ) from exc


class KernelRegressor(RegressorMixin, BaseEstimator):
    """Kernel regression with the infinite-width NNGP or NTK, a scikit-learn estimator.

    Parameters are stored as given and checked by :meth:`fit`, so ``clone``,
    ``GridSearchCV`` (over ``depth``, ``w_std``, ``b_std``, ``ridge``, ``kernel``, ...),
    ``cross_val_score`` and ``Pipeline`` work; scikit-learn is optional (without it the
    same ``get_params``/``set_params``/``score`` protocol is provided here).

    Parameters
    ----------
    activation : str or Activation
        Registered name or SymPy expression in u (see :func:`hgmntk.dual`).
    depth : int
        Number of hidden layers (>= 1).
    w_std, b_std : float
        Weight and bias standard deviations (NTK parameterization).
    kernel : {"ntk", "nngp"}
        Regress with the NTK (trained network) or the NNGP (Bayesian posterior).
    ridge : float or "loo"
        lam >= 0 added to the diagonal of the training kernel, or "loo" (default): the lam
        of least leave-one-out error over mean(diag K) * 10^(-9 ... 1) (costs one
        eigendecomposition of the training kernel, about 5 Cholesky factorisations).
    method : str
        Integrator of the duals ("auto", "closed", "hgm", "gauss-hermite", ...).
    progress : None, bool or callable
        Progress of the kernel computations (see :func:`hgmntk.kernels`): None shows a line
        on a terminal for jobs over 2 s, False nothing.
    solver : {"auto", "dense", "cg", "nystrom"}
        How (K + ridge I) alpha = y is solved (the table in :mod:`hgmntk.solvers`): a dense
        Cholesky; matrix-free conjugate gradients (exact, Nystrom-preconditioned); or
        Falkon's Nystrom estimator on ``centres`` points (memory n * centres, not n^2).
        "auto": dense up to 10 000 training points, nystrom above.  The iterative solvers
        need a numeric ridge.
    centres : int or None
        Nystrom centres M (a uniform sample of X drawn with ``random_state``); default
        min(n, 5000).
    tol, max_iter : float, int
        Relative residual at which the iterative solvers stop, and their iteration limit
        (beyond it they raise ConvergenceError: an unconverged answer is never returned).
    chunks : int or None
        Rows of a kernel tile, the unit of work and of memory of the iterative solvers
        (None: about 4 million entries a tile).
    client : dask.distributed.Client, scheduler address or None
        Compute the kernel tiles on this Dask cluster (None: in this process).
    cache_gib : float
        The iterative solvers keep the kernel tiles in memory (or in the cluster's) when
        they fit in this many GiB, and recompute them at every iteration otherwise.
    random_state : int or None
        Seed of the centres.

    Attributes
    ----------
    X_, y_ : training inputs and targets;  n_features_in_ : number of features;
    k_train_ : :class:`~hgmntk.Kernels` of the training set;  ridge_ : the lam used;
    loo_grid_, loo_mse_ : the ridges tried and their leave-one-out errors (ridge="loo");
    factor_ : Cholesky factor of K(X, X) + ridge_ I;  alpha_ : (K + ridge_ I)^-1 y;
    scale_ : the maximum-likelihood output scale s^2 = y' alpha_ / n (NNGP bands);
    (k_train_, factor_ and scale_ only with the dense solver);
    expansion_ : the points x_j of the prediction sum_j K(x, x_j) alpha_j (X, or the
    Nystrom centres, when alpha_ holds Falkon's beta);  solve_report_ :
    :class:`~hgmntk.solvers.SolveReport` (solver, iterations, residual);  n_iter_ : its
    iterations (1 for the dense solve).

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
        activation: Any = "relu",
        depth: int = 1,
        *,
        w_std: float = 1.0,
        b_std: float = 0.0,
        kernel: str = "ntk",
        ridge: float | str = "loo",
        method: str = "auto",
        progress: Any = None,
        solver: str = "auto",
        centres: int | None = None,
        tol: float = 1e-7,
        max_iter: int = 500,
        chunks: int | None = None,
        client: Any = None,
        cache_gib: float = 4.0,
        random_state: int | None = 0,
    ) -> None:
        self.activation = activation
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.kernel = kernel
        self.ridge = ridge
        self.method = method
        self.progress = progress
        self.solver = solver
        self.centres = centres
        self.tol = tol
        self.max_iter = max_iter
        self.chunks = chunks
        self.client = client
        self.cache_gib = cache_gib
        self.random_state = random_state

    def __sklearn_tags__(self):
        """scikit-learn tags: several target columns are supported (y of shape (n, k))."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_params(self) -> float | None:
        """The ridge as a float, or None for leave-one-out selection."""
        if self.kernel not in ("ntk", "nngp"):
            raise InvalidInputError(f"kernel must be 'ntk' or 'nngp', got {self.kernel!r}")
        ridge = self.ridge
        if isinstance(ridge, str) and ridge == "loo":
            return None
        if (
            isinstance(ridge, bool)
            or not isinstance(ridge, (int, float, np.integer, np.floating))
            or not np.isfinite(ridge)
            or ridge < 0
        ):
            raise InvalidInputError(
                f"ridge must be a finite number >= 0 or 'loo' (leave-one-out selection), "
                f"got {ridge!r}"
            )
        return float(ridge)

    def _kernels(self, x1, x2=None):
        return kernels(
            x1,
            x2,
            activation=self.activation,
            depth=self.depth,
            w_std=self.w_std,
            b_std=self.b_std,
            method=self.method,
            progress=self.progress,
        )

    def _solver(self, n: int, ridge: float | None) -> str:
        """The solver to use for n training points (checked)."""
        solver = chosen_solver(self.solver, n)
        if solver != "dense":
            if ridge is None:
                raise InvalidInputError(
                    f"ridge='loo' needs the dense solver (one eigendecomposition of the n x n "
                    f"kernel), but solver={solver!r} was chosen for {n} training points; give "
                    "a numeric ridge (e.g. chosen by ridge='loo' on a subsample)")
            for name in ("tol", "cache_gib"):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                    raise InvalidInputError(f"{name} must be a number > 0, got {v!r}")
            if (isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int)
                    or self.max_iter < 1):
                raise InvalidInputError(f"max_iter must be an integer >= 1, got "
                                        f"{self.max_iter!r}")
            if self.chunks is not None:
                check_tile(self.chunks)
        return solver

    def _centres(self, n: int) -> int:
        m = DEFAULT_CENTRES if self.centres is None else self.centres
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise InvalidInputError(f"centres must be an integer >= 1, got {m!r}")
        return min(int(m), n)

    def _operator(self, x, z, client, report, label):
        spec = kernel_spec(self.activation, self.depth, self.w_std, self.b_std, self.method)
        tile = None if self.chunks is None else check_tile(self.chunks)
        return KernelOperator(spec, self.kernel, x, z, tile=tile,
                              client=client, cache_gib=self.cache_gib, progress=report,
                              label=label)

    def fit(self, X, y) -> KernelRegressor:
        """Compute the training kernels, choose the ridge (if "loo") and solve
        (K(X, X) + ridge_ I) alpha_ = y with the chosen solver."""
        ridge = self._check_params()
        X = _check_X(X)
        y = _check_targets(y, X.shape[0])
        solver = self._solver(X.shape[0], ridge)
        for name in ("k_train_", "factor_", "scale_", "loo_grid_", "loo_mse_"):
            self.__dict__.pop(name, None)  # nothing left from an earlier fit
        if solver != "dense":
            return self._fit_iterative(X, y, solver, ridge)
        k = self._kernels(X)
        train = k.ntk if self.kernel == "ntk" else k.nngp
        if not np.all(np.isfinite(train)):
            raise InvalidInputError(
                f"the {self.kernel} training kernel has infinite entries (the {self.activation!r}"
                " derivative dual diverges on the diagonal); use kernel='nngp'"
            )
        self.X_ = X
        self.y_ = y
        self.n_features_in_ = X.shape[1]
        self.k_train_ = k
        if ridge is None:
            ridge, self.loo_grid_, self.loo_mse_ = loo_ridge(train, y)
        self.ridge_ = ridge
        self.factor_ = _factor(train, ridge)
        self.alpha_ = linalg.cho_solve(self.factor_, y)
        self.expansion_ = X
        self.solve_report_ = SolveReport("dense")
        self.n_iter_ = 1  # scikit-learn's convention: a direct solve is one iteration
        fit_y = y.reshape(len(y), -1)
        self.scale_ = np.einsum("ik,ik->k", fit_y, self.alpha_.reshape(fit_y.shape)) / len(y)
        if y.ndim == 1:
            self.scale_ = float(self.scale_[0])
        return self

    def _fit_iterative(self, X, y, solver: str, ridge: float) -> KernelRegressor:
        """fit() with the cg or nystrom solver (kernel tiles, never the n x n matrix)."""
        n = X.shape[0]
        m = self._centres(n)
        idx = pick_centres(n, m, self.random_state)
        report, close = reporter(self.progress, "hgmntk fit")
        try:
            with connected(self.client) as client:
                if solver == "nystrom":
                    op = self._operator(X, X[idx], client, report, "K(X, centres)")
                    k_mm = getattr(op.spec.kernels(X[idx]), self.kernel)
                    alpha, rep = falkon(op, k_mm, y, ridge, tol=self.tol,
                                        max_iter=self.max_iter)
                    self.expansion_ = X[idx]
                else:
                    op = self._operator(X, X, client, report, "K(X, X)")
                    alpha, rep = nystrom_cg(op, idx, y, ridge, tol=self.tol,
                                            max_iter=self.max_iter)
                    self.expansion_ = X
                op.release()
        finally:
            close()
        self.X_, self.y_, self.n_features_in_ = X, y, X.shape[1]
        self.ridge_, self.alpha_, self.solve_report_ = ridge, alpha, rep
        self.n_iter_ = rep.iterations
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "alpha_")

    def _checked_test_inputs(self, X) -> np.ndarray:
        if not hasattr(self, "alpha_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(X, y) "
                "before predict(X)"
            )
        X = _check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        return X

    def predict(self, X, return_std: bool = False):
        """Predictive mean K(x, X) alpha_ at test inputs X; with ``return_std`` (NNGP only)
        also the predictive standard deviation of a new observation y (see the module
        docstring: sqrt(scale_ (posterior variance + ridge_)), a calibrated band)."""
        X = self._checked_test_inputs(X)
        if return_std and self.kernel != "nngp":
            raise InvalidInputError(
                "return_std=True is the NNGP's predictive band; the NTK regressor is a "
                "network trained by gradient descent and has no posterior. Use "
                "kernel='nngp' for a calibrated band, or ensemble_std(X) for the spread of "
                "trained networks over random initialisations"
            )
        if self.solve_report_.solver != "dense":
            if return_std:
                raise InvalidInputError(self._dense_only("return_std=True"))
            report, close = reporter(self.progress, "hgmntk predict")
            try:
                with connected(self.client) as client:
                    op = self._operator(X, self.expansion_, client, report, "K(X, fit)")
                    op.cache = False
                    return op.matmat(self.alpha_)
            finally:
                close()
        cross = self._kernels(X, self.X_)
        kx = cross.ntk if self.kernel == "ntk" else cross.nngp
        mean = kx @ self.alpha_
        if not return_std:
            return mean
        var = self._variance(X, cross) + self.ridge_
        scale = np.asarray(self.scale_)
        std = np.sqrt(np.maximum(var, 0.0)[:, None] * scale[None, ...].reshape(1, -1))
        return mean, (std[:, 0] if np.ndim(self.scale_) == 0 else std)

    def ensemble_std(self, X) -> np.ndarray:
        """Standard deviation over random initialisations of the trained network's output.

        NTK: the infinitely wide network trained to convergence by gradient descent (the
        variance in the module docstring); NNGP: the network whose read-out layer alone is
        trained, i.e. the latent posterior sqrt(K(x,x) - K(x,X)(K + ridge_ I)^-1 K(X,x)),
        unscaled.  Not an error bar: it vanishes at the training inputs whatever the noise
        (use ``predict(X, return_std=True)`` with kernel="nngp" for a predictive band).
        """
        X = self._checked_test_inputs(X)
        if self.solve_report_.solver != "dense":
            raise InvalidInputError(self._dense_only("ensemble_std"))
        cross = self._kernels(X, self.X_)
        return np.sqrt(np.maximum(self._variance(X, cross), 0.0))

    def _dense_only(self, what: str) -> str:
        return (f"{what} needs the training kernel's factorisation (solver='dense'); this "
                f"model was fitted with solver={self.solve_report_.solver!r} on "
                f"{self.X_.shape[0]} points. Fit with solver='dense' (n <= about 20 000 in "
                "24 GiB) for the bands")

    def _variance(self, X, cross) -> np.ndarray:
        prior = kernel_diagonal(X, activation=self.activation, depth=self.depth,
                                w_std=self.w_std, b_std=self.b_std, method=self.method)[0]
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
    """Function form of :class:`KernelRegressor`: fit on the training set, predict x_test
    (``return_std``: the NNGP's predictive band, see :meth:`KernelRegressor.predict`)."""
    model = KernelRegressor(activation, depth, **kwargs).fit(x_train, y_train)
    return model.predict(x_test, return_std=return_std)
