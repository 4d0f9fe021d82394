"""The plugin system: hooks, registration, contract tests for every registered thing."""

from __future__ import annotations

import numpy as np
import pytest

import hgmntk
from hgmntk import Activation, hookimpl
from hgmntk.covariance import Covariances
from hgmntk.errors import PluginError
from hgmntk.hookspecs import hgmntk_register_activations  # noqa: F401  (spec exists)
from hgmntk.integrator import Integrator, IntegratorResult
from hgmntk.plugin_manager import Registry, get_plugin_manager, get_registry, reset_registry


def test_builtin_plugins_loaded_through_hooks():
    reg = get_registry()
    names = {p["name"] for p in reg.plugins()}
    assert {"builtin_activations", "builtin_integrators", "user_activations"} <= names
    assert {"relu", "step", "sigmoid"} <= set(reg.activations)
    assert {"closed", "hgm", "gauss-hermite", "monte-carlo"} <= set(reg.integrators)
    hooks = {p["name"]: p["hooks"] for p in reg.plugins()}
    assert "hgmntk_register_activations" in hooks["builtin_activations"]
    assert "hgmntk_register_integrators" in hooks["builtin_integrators"]


def test_every_hookspec_is_implemented_by_some_builtin():
    pm = get_plugin_manager()
    for name in ("hgmntk_register_activations", "hgmntk_register_integrators"):
        assert getattr(pm.hook, name).get_hookimpls(), name


def test_misspelt_hook_fails_loudly():
    pm = get_plugin_manager()

    class Bad:
        @hookimpl
        def hgmntk_register_activation(self, register):  # missing "s"
            pass

    pm.register(Bad())
    import pluggy

    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_third_party_activation_and_integrator_plugin():
    pm = get_plugin_manager()
    relu = get_registry().activations["relu"]

    class Shifted(Integrator):
        name = "scaled-closed"
        description = "closed form times two (test)"
        exact = False

        def unavailable_reason(self, activation, key):
            return None if key in activation.closed_forms else "no closed form"

        def evaluate(self, activation, key, cov, *, rtol):
            v = 2 * np.asarray(activation.closed_forms[key](cov), dtype=float)
            return IntegratorResult(v, np.zeros_like(v))

    class ThirdParty:
        @hookimpl
        def hgmntk_register_activations(self, register):
            register(
                Activation(
                    name="relu-copy",
                    expression="Max(0, u)",
                    derivative="Heaviside(u)",
                    duals=relu.duals,
                    collinear=relu.collinear,
                    homogeneity=relu.homogeneity,
                    closed_forms=relu.closed_forms,
                )
            )

        @hookimpl
        def hgmntk_register_integrators(self, register):
            register(Shifted())

    pm.register(ThirdParty(), name="third-party")
    reg = Registry(pm)
    assert "relu-copy" in reg.activations and "scaled-closed" in reg.integrators
    assert any(p["name"] == "third-party" for p in reg.plugins())


def test_duplicate_registration_is_an_error():
    pm = get_plugin_manager()
    relu = get_registry().activations["relu"]

    class Dup:
        @hookimpl
        def hgmntk_register_activations(self, register):
            register(relu)

    pm.register(Dup(), name="dup")
    with pytest.raises(PluginError, match="registered twice"):
        Registry(pm)


def test_blocking_plugins_by_environment(monkeypatch):
    monkeypatch.setenv("HGMNTK_DISABLE_PLUGINS", "builtin_integrators")
    reset_registry()
    try:
        assert "hgm" not in get_registry().integrators
    finally:
        monkeypatch.delenv("HGMNTK_DISABLE_PLUGINS")
        reset_registry()


# ---- contract tests: every registered integrator and activation ----------------------------


@pytest.mark.parametrize("name", sorted(get_registry().integrators))
def test_integrator_contract(name):
    integ = get_registry().integrators[name]
    assert integ.name == name and integ.description
    relu = get_registry().activations["relu"]
    cov = Covariances.from_arrays([1.0, 2.0, 0.5], [1.0, 0.5, 3.0], [0.3, -0.4, 1.0])
    assert integ.unavailable_reason(relu, "ss") is None
    opts = {"degree": 80} if name == "gauss-hermite" else {}
    res = integ.evaluate(relu, "ss", cov, rtol=1e-12, **opts)
    assert res.values.shape == (3,) and res.error.shape == (3,)
    exact = hgmntk.dual("relu", cov.a, cov.b, cov.c, method="closed")
    tol = 1e-10 if integ.exact else 0.05
    np.testing.assert_allclose(np.asarray(res.values, dtype=float), exact, rtol=tol)


@pytest.mark.parametrize("name", sorted(get_registry().activations))
def test_activation_contract(name):
    act = get_registry().activations[name]
    assert act.name == name and act.expression
    if not act.holonomic:
        with pytest.raises(hgmntk.NotHolonomicError):
            hgmntk.dual(name, 1.0, 1.0, 0.2, method="hgm")
        return
    for key, system in act.duals.items():
        assert system.rank == len(system.standard_monomials)
        assert system.standard_monomials[0] == (0, 0, 0)
        # integrability at a point inside the negative definite cone
        assert system.integrability_defect([-0.7, 0.2, -1.3]) < 1e-6, key
    v = hgmntk.dual(name, 1.0, 1.0, 0.2)
    assert np.isfinite(v)


def test_builtin_initial_values_carry_160_digits():
    """The shipped start vectors carry 160 digits (the precise path then rarely needs to
    recompute moments); where a system also records exact initial values, the decimals
    equal them to every digit."""
    import json
    from pathlib import Path

    import mpmath
    import sympy

    import hgmntk.plugins
    from hgmntk.continuation import stored_digits

    files = sorted((Path(hgmntk.plugins.__file__).parent / "data").glob("*.json"))
    assert len(files) >= 14
    for path in files:
        for key, system in json.loads(path.read_text())["duals"].items():
            assert stored_digits(system["initial_values"]) >= 150, (path.name, key)
            exact = system["metadata"].get("initial_values_exact") or []
            for text, form in zip(system["initial_values"], exact, strict=False):
                with mpmath.workdps(170):
                    want = mpmath.mpf(str(sympy.N(sympy.sympify(form), 170)))
                    assert abs(mpmath.mpf(text) - want) <= abs(want) * mpmath.mpf(10) ** -158
