"""Quadrature for any expression: no Pfaffian system is needed for gauss-hermite/monte-carlo.

Expressions SymPy can lambdify (holonomic or not) work with the quadrature integrators in
``dual``, ``kernels``, the regressor and the CLI; only the exact methods (closed, hgm, and
auto, which tries them) derive a system, and they name the methods that apply when none
exists.  s' is SymPy's derivative with the jumps of s written as Dirac terms, which
quadrature refuses with a clear message.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import hgmntk
from hgmntk.cli import main
from hgmntk.errors import (
    DerivationError,
    NotApplicableError,
    NotHolonomicError,
    UnknownActivationError,
)
from hgmntk.expressions import U, derivative_expression, parse_activation_expression


def _quad_dual(f, a, b, c):
    """E[f(u) f(v)] by nested adaptive quadrature (scipy quad), independent of hgmntk; the
    intervals are split where u = 0 or v = 0 (kinks and jumps of rectified functions)."""
    from scipy import integrate

    sa = math.sqrt(a)
    k, s = c / sa, math.sqrt(a * b - c * c) / sa

    def phi(z):
        return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    def inner(z1):
        return integrate.quad(lambda z2: f(k * z1 + s * z2) * phi(z2), -40, 40,
                              points=[-k * z1 / s], epsabs=1e-14, epsrel=1e-12, limit=200)[0]

    return integrate.quad(lambda z1: f(sa * z1) * phi(z1) * inner(z1), -40, 40, points=[0.0],
                          epsabs=1e-14, epsrel=1e-12, limit=200)[0]


def _sigmoid(t):
    return 1 / (1 + math.exp(-t))


@pytest.fixture
def no_derivation(monkeypatch):
    """Fail if anything asks the derivation engine for a system."""
    import hgmntk.cas_bridge.derive as derive

    def refuse(*args, **kwargs):
        raise AssertionError("quadrature must not derive a Pfaffian system")

    monkeypatch.setattr(derive, "derive_cached", refuse)
    monkeypatch.setattr(derive, "derive_activation", refuse)


def test_issue_example_sigmoid_expression_by_gauss_hermite(no_derivation):
    a, b, c = 1.0, 1.0, 0.3
    got = hgmntk.dual("1/(1+exp(-u))", a, b, c, method="gauss-hermite", degree=60)
    assert got == pytest.approx(_quad_dual(_sigmoid, a, b, c), rel=1e-9)
    assert got == hgmntk.dual("sigmoid", a, b, c, method="gauss-hermite", degree=60)


def test_derivative_dual_of_an_expression(no_derivation):
    a, b, c = 1.0, 2.0, -0.4
    got = hgmntk.dual("1/(1+exp(-u))", a, b, c, derivative=True, method="gauss-hermite")

    def dsig(t):
        return _sigmoid(t) * (1 - _sigmoid(t))

    assert got == pytest.approx(_quad_dual(dsig, a, b, c), rel=1e-9)


def test_monte_carlo_on_an_expression(no_derivation):
    v, err = hgmntk.dual("u*tanh(log(1 + exp(u)))", 1.0, 1.0, 0.5, method="monte-carlo",
                         samples=20000, seed=1, return_error=True)
    mish = lambda t: t * math.tanh(math.log1p(math.exp(t)))  # noqa: E731
    assert abs(v - _quad_dual(mish, 1.0, 1.0, 0.5)) < 5 * err


@pytest.mark.parametrize("method", ["auto", "hgm", "closed"])
def test_exact_methods_on_a_non_holonomic_expression_name_the_ones_that_apply(method):
    with pytest.raises(NotHolonomicError) as info:
        hgmntk.dual("1/(1+exp(-u))", 1.0, 1.0, 0.3, method=method)
    assert "method='gauss-hermite'" in str(info.value)
    assert "method='monte-carlo'" in str(info.value)


def test_unsupported_expression_by_quadrature_and_hint():
    with pytest.raises(DerivationError, match="method='gauss-hermite'"):
        hgmntk.dual("atan(u)", 1.0, 1.0, 0.3)
    got = hgmntk.dual("atan(u)", 1.0, 3.0, 0.3, method="gauss-hermite", degree=80)
    assert got == pytest.approx(_quad_dual(math.atan, 1.0, 3.0, 0.3), rel=1e-5)  # poles at +-i


def test_dirac_term_in_the_derivative_is_refused(no_derivation):
    text = "Heaviside(u)*cos(u)"
    value = hgmntk.dual(text, 1.0, 1.0, 0.3, method="gauss-hermite", degree=200)
    rcos = lambda t: math.cos(t) if t > 0 else 0.0  # noqa: E731
    # quadrature across a jump converges slowly: a few per cent at degree 200
    assert value == pytest.approx(_quad_dual(rcos, 1.0, 1.0, 0.3), rel=0.05)
    with pytest.raises(NotApplicableError, match="Dirac delta term"):
        hgmntk.dual(text, 1.0, 1.0, 0.3, derivative=True, method="gauss-hermite")


def test_unsafe_text_is_not_evaluated():
    with pytest.raises(UnknownActivationError):
        hgmntk.dual("__import__('os').getcwd()", 1.0, 1.0, 0.3, method="gauss-hermite")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("u*Heaviside(u)", sympy.Heaviside(U)),  # u delta(u) = 0
        ("Max(u, 0)", sympy.Heaviside(U)),
        ("sign(u)", 2 * sympy.DiracDelta(U)),
        ("Piecewise((0, u < 1), (1, True))", sympy.DiracDelta(U - 1)),  # SymPy drops it
        ("Piecewise((1, u > 0), (0, True)) + Heaviside(u)", 2 * sympy.DiracDelta(U)),
        ("Heaviside(u)*cos(u)", -sympy.sin(U) * sympy.Heaviside(U) + sympy.DiracDelta(U)),
        ("Heaviside(u)*sin(u)", sympy.cos(U) * sympy.Heaviside(U)),
    ],
)
def test_derivative_expression_writes_the_jumps(text, expected):
    got = derivative_expression(parse_activation_expression(text))
    assert sympy.simplify(got - expected) == 0


def test_piecewise_derivative_round_trips_through_the_safe_parser():
    from hgmntk.expressions import quadrature_activation

    act = quadrature_activation("Piecewise((u, u > 0), (exp(u) - 1, True))")
    assert act.derivative == "Piecewise((1, u > 0), (exp(u), True))"
    np.testing.assert_allclose(act.numeric_functions["ds"](np.array([-1.0, 2.0])),
                               [math.exp(-1.0), 1.0])


def test_kernels_and_regressor_with_an_expression(no_derivation):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    k = hgmntk.kernels(X, activation="u/(1+exp(-u))", depth=2, method="gauss-hermite")
    ref = hgmntk.kernels(X, activation="silu", depth=2, method="gauss-hermite")
    np.testing.assert_allclose(k.ntk, ref.ntk, rtol=1e-13)
    np.testing.assert_allclose(k.nngp, ref.nngp, rtol=1e-13)
    y = np.sin(X[:, 0])
    model = hgmntk.KernelRegressor("u/(1+exp(-u))", depth=1, method="gauss-hermite",
                                   ridge=1e-8).fit(X, y)
    np.testing.assert_allclose(model.predict(X), y, atol=1e-4)


def test_cli_dual_and_kernel_with_an_expression(capsys, tmp_path, no_derivation):
    code = main(["dual", "1/(1+exp(-u))", "--a", "1", "--b", "1", "--c", "0.3",
                 "--method", "gauss-hermite"])
    out = capsys.readouterr().out
    assert code == 0
    assert float(out) == pytest.approx(_quad_dual(_sigmoid, 1.0, 1.0, 0.3), rel=1e-9)
    x = tmp_path / "x.csv"
    x.write_text("1,0\n0,1\n1,1\n")
    code = main(["kernel", "--x1", str(x), "--activation", "tanh(u)", "--depth", "2",
                 "--method", "monte-carlo", "-o", "samples=2000", "--out",
                 str(tmp_path / "k.npz")])
    assert code == 0, capsys.readouterr().err
    assert np.load(tmp_path / "k.npz")["ntk"].shape == (3, 3)


def test_cli_auto_on_a_non_holonomic_expression_says_which_methods_apply(capsys):
    code = main(["dual", "1/(1+exp(-u))", "--a", "1", "--b", "1", "--c", "0.3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("hgmntk: error: ")
    assert "method='gauss-hermite'" in err and "method='monte-carlo'" in err
