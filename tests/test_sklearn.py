"""KernelRegressor is a scikit-learn estimator; InfiniteWidthKernel is a scikit-learn kernel.

The protocol (get_params/set_params, score, NotFittedError) also works without scikit-learn:
``test_protocol_without_scikit_learn`` loads the module with scikit-learn hidden.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import hgmntk
from hgmntk.errors import InvalidInputError

sklearn = pytest.importorskip("sklearn", reason="scikit-learn not installed (hgmntk[sklearn])")

from sklearn.base import clone  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import WhiteKernel  # noqa: E402
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVR  # noqa: E402

from hgmntk.sklearn_kernels import InfiniteWidthKernel  # noqa: E402

#: check_estimator checks that may be skipped, and why; every other check must pass, and
#: these too wherever they run.
JUSTIFIED_SKIPS = {
    # skips itself unless SCIPY_ARRAY_API=1 and an array-API library are set up; the
    # kernels are NumPy code
    "check_array_api_input": "array API input is not supported (NumPy only)",
    # skips itself without pandas (not a dependency of hgmntk); it passes with pandas
    # installed, as inputs go through np.asarray
    "check_regressor_data_not_an_array": "pandas not installed",
}


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1]


def test_parameters_are_stored_as_given_and_checked_by_fit():
    ridge = np.float32(1e-3)
    model = hgmntk.KernelRegressor("relu", 2, ridge=ridge, kernel="nngp")
    assert model.get_params() == {
        "activation": "relu", "depth": 2, "w_std": 1.0, "b_std": 0.0, "kernel": "nngp",
        "ridge": ridge, "method": "auto", "progress": None, "solver": "auto",
        "centres": None, "tol": 1e-7, "max_iter": 500, "chunks": None, "client": None,
        "cache_gib": 4.0, "random_state": 0,
    }
    assert model.get_params()["ridge"] is ridge
    bad = hgmntk.KernelRegressor(kernel="ntkk", ridge=-1)  # no error before fit
    X, y = _data(8)
    with pytest.raises(InvalidInputError, match="kernel must be"):
        bad.fit(X, y)
    with pytest.raises(InvalidInputError, match="ridge"):
        bad.set_params(kernel="ntk").fit(X, y)
    assert bad.set_params(ridge=1e-8).fit(X, y).n_features_in_ == 3


def test_clone_set_params_pickle_and_fitted_attributes():
    X, y = _data(10)
    model = hgmntk.KernelRegressor("relu", depth=2, b_std=0.1, ridge=1e-8)
    assert not hasattr(model, "alpha_")
    twin = clone(model.set_params(depth=3))
    assert twin.get_params() == model.get_params() and twin is not model
    fitted = twin.fit(X, y)
    assert {"X_", "y_", "n_features_in_", "k_train_", "factor_", "alpha_"} <= set(vars(fitted))
    assert all(k.endswith("_") for k in vars(fitted) if k not in model.get_params())
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict(X), fitted.predict(X))
    assert fitted.score(X, y) > 0.999
    with pytest.raises(sklearn.exceptions.NotFittedError):
        clone(fitted).predict(X)
    with pytest.raises(ValueError, match="expecting 3 features"):
        fitted.predict(X[:, :2])


def test_grid_search_over_network_parameters():
    X, y = _data(36)
    grid = {"depth": [1, 3], "w_std": [1.0, 1.5], "b_std": [0.0, 0.1],
            "ridge": [1e-6, 1e-2], "kernel": ["ntk", "nngp"]}
    search = GridSearchCV(hgmntk.KernelRegressor("relu"), grid, cv=KFold(3),
                          scoring="neg_root_mean_squared_error").fit(X, y)
    assert len(search.cv_results_["params"]) == 32
    assert set(search.best_params_) == set(grid)
    assert search.best_estimator_.score(X, y) > 0.9


def test_cross_val_score_and_pipeline():
    X, y = _data(30)
    X = 10 * X + 3  # badly scaled: the scaler matters for a dot-product kernel
    pipe = Pipeline([("scale", StandardScaler()),
                     ("ntk", hgmntk.KernelRegressor("relu", 2, b_std=0.1, ridge=1e-4))])
    scores = cross_val_score(pipe, X, y, cv=KFold(3))
    assert scores.shape == (3,) and np.all(scores > 0.5)
    pipe.set_params(ntk__depth=3).fit(X, y)
    assert pipe.named_steps["ntk"].depth == 3


def test_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(hgmntk.KernelRegressor("relu", 1), on_fail=None)
    bad = {r["check_name"]: repr(r["exception"]) for r in results
           if r["status"] != "passed"
           and not (r["status"] == "skipped" and r["check_name"] in JUSTIFIED_SKIPS)}
    assert not bad
    assert sum(r["status"] == "passed" for r in results) >= 45


def test_gaussian_process_with_the_nngp_kernel_is_the_bayesian_posterior():
    X, y = _data(20)
    Xt = _data(5, seed=1)[0]
    kernel = InfiniteWidthKernel("relu", depth=2, b_std=0.1, kernel="nngp")
    assert clone(kernel) == kernel and kernel.n_dims == 0
    gp = GaussianProcessRegressor(kernel=kernel, alpha=1e-3).fit(X, y)
    mean, std = gp.predict(Xt, return_std=True)
    ref = hgmntk.KernelRegressor("relu", 2, b_std=0.1, kernel="nngp", ridge=1e-3).fit(X, y)
    # sklearn's std is the latent posterior (alpha not added, no output scale fitted): the
    # regressor's ensemble_std for the NNGP; its predictive band adds both
    ref_mean, ref_std = ref.predict(Xt), ref.ensemble_std(Xt)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(std, ref_std, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(kernel.diag(Xt), np.diag(kernel(Xt)), rtol=1e-14)
    noisy = GaussianProcessRegressor(kernel=kernel + WhiteKernel(0.1)).fit(X, y)
    assert noisy.kernel_.k2.noise_level != 0.1  # the noise level was optimised


def test_kernel_ridge_svr_and_precomputed_use_the_kernel_object():
    X, y = _data(20)
    Xt = _data(5, seed=1)[0]
    kernel = InfiniteWidthKernel("relu", depth=2)
    ref = hgmntk.KernelRegressor("relu", 2, ridge=1e-3).fit(X, y).predict(Xt)
    kr = KernelRidge(kernel=kernel, alpha=1e-3).fit(X, y)
    np.testing.assert_allclose(kr.predict(Xt), ref, rtol=1e-7, atol=1e-10)
    pre = KernelRidge(kernel="precomputed", alpha=1e-3).fit(kernel(X), y)
    np.testing.assert_allclose(pre.predict(kernel(Xt, X)), ref, rtol=1e-7, atol=1e-10)
    svr = SVR(kernel=kernel, C=10.0).fit(X, y)
    assert svr.score(X, y) > 0.9


def _regression_module_without_sklearn(monkeypatch):
    """A private copy of hgmntk.regression loaded while scikit-learn cannot be imported."""
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    path = Path(hgmntk.regression.__file__)
    spec = importlib.util.spec_from_file_location("hgmntk._regression_no_sklearn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _r2(y, pred):
    return 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)


def test_protocol_without_scikit_learn(monkeypatch):
    X, y = _data(12)
    Xt = _data(6, seed=2)[0]
    yt = np.cos(Xt[:, 0])
    reference = hgmntk.KernelRegressor("relu", 3, b_std=0.1, ridge=1e-8).fit(X, y)
    mod = _regression_module_without_sklearn(monkeypatch)
    assert mod.HAVE_SKLEARN is False
    model = mod.KernelRegressor("relu", depth=2, ridge=1e-8)
    assert model.get_params()["depth"] == 2
    assert model.set_params(depth=3, b_std=0.1) is model and model.b_std == 0.1
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(layers=2)
    with pytest.raises(mod.NotFittedError):
        model.predict(X)
    fitted = model.fit(X, y)
    assert fitted.score(X, y) == pytest.approx(_r2(y, reference.predict(X)), rel=1e-12)
    assert fitted.score(Xt, yt) == pytest.approx(_r2(yt, reference.predict(Xt)), rel=1e-10)
    assert repr(model).startswith("KernelRegressor(activation='relu', b_std=0.1, cache_gib=4.0")
    assert "depth=3" in repr(model)
