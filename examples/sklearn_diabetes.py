"""NTK regression next to a tuned RBF kernel ridge on scikit-learn's diabetes data set.

    python examples/sklearn_diabetes.py

Inputs and targets are standardised inside the estimators (Pipeline with StandardScaler,
TransformedTargetRegressor), the ridge of every model is chosen by 5-fold GridSearchCV on
the training set (RBF: also gamma), and the test RMSE is reported on a fixed 25 % split.
Then hgmntk's own choice, without a grid search: the default ridge="loo" (leave-one-out
from one eigendecomposition) for the NTK and the NNGP, with the share of test targets
inside the NNGP's 2-standard-deviation predictive band, next to the near-interpolating
ridge 1e-10.  Needs scikit-learn (pip install "hgmntk[sklearn]").
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import hgmntk

RIDGES = np.logspace(-2, 2, 5)


def tuned(model, grid: dict) -> GridSearchCV:
    """model after a scaler, on standardised targets, tuned by 5-fold CV (RMSE)."""
    pipe = Pipeline([("scale", StandardScaler()), ("model", model)])
    wrapped = TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
    grid = {f"regressor__model__{k}": v for k, v in grid.items()}
    return GridSearchCV(wrapped, grid, cv=KFold(5, shuffle=True, random_state=0),
                        scoring="neg_root_mean_squared_error")


def main() -> None:
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    print(f"diabetes: {len(X_train)} training, {len(X_test)} test points, {X.shape[1]} features")
    print(f"{'model':<34} {'test RMSE':>9} {'seconds':>8}  chosen")
    baseline = root_mean_squared_error(y_test, np.full_like(y_test, y_train.mean()))
    print(f"{'mean of the training targets':<34} {baseline:9.2f}")
    models = [
        (f"NTK relu depth {d} (b_std 0.1)",
         hgmntk.KernelRegressor("relu", d, b_std=0.1), {"ridge": RIDGES})
        for d in (1, 2, 3, 5)
    ]
    models.append(("KernelRidge rbf", KernelRidge(kernel="rbf"),
                   {"alpha": RIDGES / 10, "gamma": np.logspace(-3, 0, 4)}))
    for name, model, grid in models:
        t0 = time.perf_counter()
        search = tuned(model, grid).fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        rmse = root_mean_squared_error(y_test, search.predict(X_test))
        chosen = ", ".join(f"{k.split('__')[-1]}={v:.3g}" for k, v in search.best_params_.items())
        print(f"{name:<34} {rmse:9.2f} {seconds:8.1f}  {chosen}")
    scaler = StandardScaler().fit(X_train)
    mu, sd = y_train.mean(), y_train.std()
    x_tr, x_te, t_tr = scaler.transform(X_train), scaler.transform(X_test), (y_train - mu) / sd
    for kernel in ("ntk", "nngp"):
        for ridge in ("loo", 1e-10):
            t0 = time.perf_counter()
            model = hgmntk.KernelRegressor("relu", 3, b_std=0.1, kernel=kernel, ridge=ridge)
            model.fit(x_tr, t_tr)
            pred = model.predict(x_te) * sd + mu
            seconds = time.perf_counter() - t0
            rmse = root_mean_squared_error(y_test, pred)
            note = f"ridge={model.ridge_:.3g}" + (" (leave-one-out)" if ridge == "loo" else "")
            if kernel == "nngp":
                band = model.predict(x_te, return_std=True)[1] * sd
                inside = np.mean(np.abs(y_test - pred) <= 2 * band)
                note += f", {inside:.0%} of test targets within 2 std"
            name = f"{kernel.upper()} relu depth 3 (b_std 0.1)"
            print(f"{name:<34} {rmse:9.2f} {seconds:8.1f}  {note}")


if __name__ == "__main__":
    main()
