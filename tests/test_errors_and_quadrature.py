"""Bad input gives clear errors; the quadrature integrators work for any activation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hgmntk
from hgmntk.errors import (
    CovarianceError,
    InvalidInputError,
    NotApplicableError,
    NotHolonomicError,
    UnknownActivationError,
    UnknownIntegratorError,
)


def test_unknown_activation_lists_known_ones():
    with pytest.raises(UnknownActivationError, match="relu"):
        hgmntk.dual("relux", 1.0, 1.0, 0.0)


def test_unknown_method():
    with pytest.raises(UnknownIntegratorError, match="hgm"):
        hgmntk.dual("relu", 1.0, 1.0, 0.0, method="simpson")


@pytest.mark.parametrize(
    "a,b,c,err",
    [
        (1.0, 1.0, 1.5, CovarianceError),
        (-1.0, 1.0, 0.0, CovarianceError),
        (np.nan, 1.0, 0.0, InvalidInputError),
        (1.0, np.inf, 0.0, InvalidInputError),
    ],
)
def test_bad_covariances(a, b, c, err):
    with pytest.raises(err):
        hgmntk.dual("relu", a, b, c)


def test_rounding_level_negative_determinant_is_accepted():
    a = b = 1.0 / 3.0
    c = math.nextafter(a, 2.0)  # c^2 > ab by one ulp
    assert np.isfinite(hgmntk.dual("relu", a, b, c))


def test_closed_without_closed_form():
    act = hgmntk.dual_activation.get_activation("relu")
    bare = act.with_closed_forms()  # same, still has them
    assert "ss" in bare.closed_forms
    from dataclasses import replace

    no_closed = replace(act, closed_forms={})
    with pytest.raises(NotApplicableError, match="closed form"):
        hgmntk.dual(no_closed, 1.0, 1.0, 0.3, method="closed")


def test_non_holonomic_needs_quadrature():
    with pytest.raises(NotHolonomicError, match="gauss-hermite"):
        hgmntk.dual("sigmoid", 1.0, 1.0, 0.3)
    with pytest.raises(NotHolonomicError):
        hgmntk.dual("tanh", 1.0, 1.0, 0.3, method="hgm")


def _quad_dual(f, a, b, c):
    """E[f(u) f(v)] by nested adaptive quadrature (scipy quad), independent of hgmntk."""
    from scipy import integrate

    sa = math.sqrt(a)
    k, s = c / sa, math.sqrt(a * b - c * c) / sa
    phi = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731

    def inner(z1):
        return integrate.quad(
            lambda z2: f(k * z1 + s * z2) * phi(z2), -40, 40, epsabs=1e-14, epsrel=1e-13, limit=200
        )[0]

    return integrate.quad(
        lambda z1: f(sa * z1) * phi(z1) * inner(z1), -40, 40, epsabs=1e-14, epsrel=1e-13, limit=200
    )[0]


def test_sigmoid_gauss_hermite_matches_quadrature():
    a, b, c = 1.0, 2.0, 0.7
    ref = _quad_dual(lambda t: 1 / (1 + math.exp(-t)), a, b, c)
    got = hgmntk.dual("sigmoid", a, b, c, method="gauss-hermite", degree=60)
    assert abs(got - ref) / ref < 1e-9


def test_monte_carlo_is_seeded_and_has_standard_error():
    v1, e1 = hgmntk.dual("relu", 1.0, 1.0, 0.5, method="monte-carlo", seed=3, return_error=True)
    v2 = hgmntk.dual("relu", 1.0, 1.0, 0.5, method="monte-carlo", seed=3)
    assert v1 == v2
    exact = hgmntk.dual("relu", 1.0, 1.0, 0.5, method="closed")
    assert abs(v1 - exact) < 5 * e1


def test_gauss_hermite_refuses_delta():
    with pytest.raises(NotApplicableError, match="Dirac"):
        hgmntk.dual("step", 1.0, 1.0, 0.2, derivative=True, method="gauss-hermite")


def test_broadcasting_and_shape():
    a = np.ones((2, 3))
    v = hgmntk.dual("relu", a, 2.0, np.linspace(-1, 1, 3))
    assert v.shape == (2, 3)
    with pytest.raises(InvalidInputError, match="broadcast"):
        hgmntk.dual("relu", np.ones(2), np.ones(3), 0.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 2.5}, "depth"),
        ({"depth": 1, "w_std": -1.0}, "w_std"),
        ({"depth": 1, "b_std": float("nan")}, "b_std"),
    ],
)
def test_kernel_parameter_errors(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        hgmntk.kernels(np.eye(3), activation="relu", **kwargs)


def test_kernel_data_errors():
    X = np.eye(3)
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        hgmntk.kernels(bad, activation="relu", depth=1)
    with pytest.raises(InvalidInputError, match="features"):
        hgmntk.kernels(X, np.ones((2, 4)), activation="relu", depth=1)
    with pytest.raises(InvalidInputError, match="2-D"):
        hgmntk.kernels(np.ones(3), activation="relu", depth=1)


def test_regression_interpolates_and_errors():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 3))
    y = X[:, 0] - X[:, 1] ** 2
    model = hgmntk.KernelRegressor("relu", depth=2, b_std=0.1, ridge=1e-12).fit(X, y)
    mean, spread = model.predict(X), model.ensemble_std(X)
    np.testing.assert_allclose(mean, y, atol=1e-6)
    assert np.all(spread < 1e-3)  # every trained network interpolates the training set
    Xt = rng.standard_normal((4, 3))
    mean_t, spread_t = model.predict(Xt), model.ensemble_std(Xt)
    assert np.all(spread_t > 1e-3)
    with pytest.raises(InvalidInputError, match="ensemble_std.*kernel='nngp'|kernel='nngp'"):
        model.predict(Xt, return_std=True)
    np.testing.assert_allclose(
        hgmntk.kernel_regression(X, y, Xt, activation="relu", depth=2, b_std=0.1, ridge=1e-12),
        mean_t,
        rtol=1e-10,
    )
    with pytest.raises(InvalidInputError, match="y"):
        hgmntk.KernelRegressor("relu", 1).fit(X, y[:-1])
    with pytest.raises(hgmntk.HgmntkError, match="fit"):
        hgmntk.KernelRegressor("relu", 1).predict(X)


def test_nngp_posterior_matches_gp_formula():
    rng = np.random.default_rng(2)
    X, Xt = rng.standard_normal((6, 2)), rng.standard_normal((3, 2))
    y = rng.standard_normal(6)
    model = hgmntk.KernelRegressor("relu", 2, kernel="nngp", ridge=1e-3).fit(X, y)
    mean, std = model.predict(Xt, return_std=True)
    K = hgmntk.kernels(X, activation="relu", depth=2).nngp + 1e-3 * np.eye(6)
    Ks = hgmntk.kernels(Xt, X, activation="relu", depth=2).nngp
    Kss = hgmntk.kernels(Xt, activation="relu", depth=2).nngp
    np.testing.assert_allclose(mean, Ks @ np.linalg.solve(K, y), rtol=1e-8)
    var = np.diag(Kss - Ks @ np.linalg.solve(K, Ks.T))
    np.testing.assert_allclose(model.ensemble_std(Xt), np.sqrt(var), rtol=1e-6)
    scale = y @ np.linalg.solve(K, y) / len(y)  # maximum-likelihood output scale
    np.testing.assert_allclose(std, np.sqrt(scale * (var + 1e-3)), rtol=1e-6)


def test_loo_ridge_equals_refitting_without_each_point():
    """The leave-one-out errors from one eigendecomposition equal n refits on n - 1 points
    (an independent computation), and the default ridge is the grid's best."""
    from hgmntk.regression import loo_ridge

    rng = np.random.default_rng(3)
    X = rng.standard_normal((15, 2))
    y = np.column_stack([np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(15), X[:, 1] ** 2])
    K = hgmntk.kernels(X, activation="relu", depth=2, b_std=0.1).ntk
    lam, grid, mse = loo_ridge(K, y)
    assert lam == grid[np.argmin(mse)] and len(grid) == len(mse) == 21
    for j in (0, 8, 14, 20):
        resid = []
        for i in range(len(X)):
            keep = np.arange(len(X)) != i
            sub = K[np.ix_(keep, keep)] + grid[j] * np.eye(len(X) - 1)
            resid.append(y[i] - K[i, keep] @ np.linalg.solve(sub, y[keep]))
        assert mse[j] == pytest.approx(np.mean(np.square(resid)), rel=1e-6)
    model = hgmntk.KernelRegressor("relu", 2, b_std=0.1).fit(X, y)  # ridge="loo" default
    assert model.ridge_ == lam
    np.testing.assert_allclose(model.loo_mse_, mse, rtol=1e-12)


def test_nngp_band_is_calibrated_on_data_from_the_model():
    """y = f + noise with f drawn from s^2 NNGP: about 95 % of new observations fall within
    2 predictive standard deviations (ridge by leave-one-out, scale by maximum likelihood);
    the ensemble spread, which ignores the noise, covers far fewer."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((400, 3))
    K = hgmntk.kernels(X, activation="relu", depth=2, b_std=0.3).nngp
    f = 3.0 * np.linalg.cholesky(K + 1e-9 * np.eye(400)) @ rng.standard_normal(400)
    y = f + 0.3 * rng.standard_normal(400)
    train, test = slice(0, 150), slice(150, 400)
    model = hgmntk.KernelRegressor("relu", 2, b_std=0.3, kernel="nngp").fit(X[train], y[train])
    mean, std = model.predict(X[test], return_std=True)
    z = np.abs(y[test] - mean) / std
    assert 0.90 <= np.mean(z < 2) <= 0.99
    assert np.mean(np.abs(y[test] - mean) < 2 * model.ensemble_std(X[test])) < 0.85


def test_misspelt_integrator_option_lists_the_options():
    with pytest.raises(InvalidInputError, match=r"no option 'degre'.*degree \(default 64\)"):
        hgmntk.dual("relu", 1.0, 1.0, 0.5, method="gauss-hermite", degre=10)
    with pytest.raises(InvalidInputError, match="'auto' chose 'closed'.*name the method"):
        hgmntk.dual("relu", 1.0, 1.0, 0.5, degree=10)
    with pytest.raises(InvalidInputError, match="no option 'seeds'.*samples.*seed"):
        hgmntk.kernels(np.eye(2), activation="relu", depth=1, method="monte-carlo", seeds=1)
    assert hgmntk.dual("relu", 1.0, 1.0, 0.5, method="gauss-hermite", degree=80) > 0


def test_error_estimate_is_at_least_the_rounding_of_the_value():
    values, errors = hgmntk.dual(
        "gelu", [1.0, 0.5], [2.0, 3.0], [0.5, -0.2], method="hgm", return_error=True
    )
    assert np.all(errors >= np.abs(values) * np.finfo(float).eps / 2)
    assert np.all(errors < 1e-12 * np.abs(values))


def test_growth_exponents_of_expressions():
    from hgmntk.expressions import growth_exponent, parse_activation_expression

    cases = {
        "exp(u**3)": math.inf,
        "exp(u**2)": 1.0,
        "u**5*exp(u**2/3) + cos(u)": 1 / 3,
        "Heaviside(u)*exp(u**2/8)": 1 / 8,
        "u*(1 + erf(u/sqrt(2)))/2": 0.0,
        "exp(u)": 0.0,
        "exp(-u**2)*sin(u)": 0.0,
        "Max(0, u)": 0.0,
    }
    for text, expected in cases.items():
        assert growth_exponent(parse_activation_expression(text)) == expected, text


def test_divergent_duals_are_named_not_computed():
    """exp(u^3): no variance has E[s^2] finite; exp(u^2): only variances below 1/4, so the
    derivation (base point variance 1/2) refuses, and quadrature works below 1/4, where
    E[exp(u^2) exp(v^2)] = det(I - 2 L)^(-1/2) is the closed form."""
    for method in ("auto", "gauss-hermite"):
        with pytest.raises(hgmntk.DivergentDualError, match="every variance"):
            hgmntk.dual("exp(u**3)", 1.0, 1.0, 0.5, method=method)
    with pytest.raises(hgmntk.DivergentDualError, match="below 1/\\(4 \\* 1\\) = 0.25.*base point"):
        hgmntk.dual("exp(u**2)", 0.1, 0.1, 0.05)
    with pytest.raises(hgmntk.DivergentDualError, match="below 1/\\(4c\\) = 0.25"):
        hgmntk.dual("exp(u**2)", 0.3, 0.1, 0.05, method="gauss-hermite")
    a, b, c = 0.2, 0.1, 0.05
    exact = 1 / math.sqrt((1 - 2 * a) * (1 - 2 * b) - 4 * c * c)
    got = hgmntk.dual("exp(u**2)", a, b, c, method="gauss-hermite", degree=120)
    assert got == pytest.approx(exact, rel=1e-10)
