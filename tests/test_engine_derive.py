"""The derive pipeline, its cache and the plugin template (hgmntk.cas_bridge.derive)."""

from __future__ import annotations

import importlib
import json
import math
import sys
import warnings
from pathlib import Path

import pytest
import sympy

from hgmntk.activation import Activation
from hgmntk.cas_bridge import derive as derive_mod
from hgmntk.cas_bridge.derive import (
    ENGINE_VERSION,
    cache_key,
    cache_path,
    derive_activation,
    derive_cached,
)
from hgmntk.cas_bridge.plugin_template import write_plugin_package
from hgmntk.errors import DerivationError, NotHolonomicError
from tests.conftest import reference_dir

DATA = Path(__file__).resolve().parent.parent / "plugins" / "data"


def _same_matrices(sys_a, sys_b) -> bool:
    mats_a, mats_b = sys_a.matrices_sympy(), sys_b.matrices_sympy()
    return all(
        sympy.simplify(a - b) == sympy.zeros(*a.shape) for a, b in zip(mats_a, mats_b, strict=True)
    )


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HGMNTK_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize("name, expression", [("relu", "Max(0, u)"), ("step", "Heaviside(u)")])
def test_derived_relu_step_equal_hand_written_files(name, expression):
    steps = []
    act = derive_activation(expression, name=name, progress=lambda s, t: steps.append((s, t)))
    ref = Activation.load(DATA / f"{name}.json")
    assert act.name == name and act.expression == expression
    assert act.annihilators["s"] == ref.annihilators["s"]
    assert act.annihilators["ds"] == ref.annihilators["ds"]
    assert dict(act.homogeneity) == dict(ref.homogeneity)
    for key in ("ss",) if name == "step" else ("ss", "dsds"):
        mine, theirs = act.duals[key], ref.duals[key]
        assert mine.standard_monomials == theirs.standard_monomials
        assert mine.metadata["initial_values_exact"] == theirs.metadata["initial_values_exact"]
        for a, b in zip(mine.initial_values_mp, theirs.initial_values_mp, strict=True):
            assert abs(a - b) < 1e-38
        assert _same_matrices(mine, theirs)
    assert act.collinear["ss"] == ref.collinear["ss"]
    assert act.provenance["engine_version"] == ENGINE_VERSION
    assert act.provenance["engine"] == "hgmntk.cas_bridge.derive"
    assert steps and steps[-1][0] == "done"
    assert all(t2 >= t1 for (_, t1), (_, t2) in zip(steps, steps[1:], strict=False))


def test_step_derivative_is_delta():
    act = derive_activation("Heaviside(u)", name="step")
    assert act.derivative == "DiracDelta(u)"
    assert act.annihilators["ds"] == ("u",)
    assert dict(act.homogeneity) == {"s": 0, "ds": -1}
    assert math.isinf(act.collinear["dsds"].same)
    # E[delta(u) delta(v)] at L = I/2 is 1/(2 pi sqrt(det L)) = 1/pi: F(x0) = Ehat = 1
    assert act.duals["dsds"].rank == 1
    assert act.duals["dsds"].initial_values_mp[0] == 1


def test_activation_file_round_trip(tmp_path):
    act = derive_activation("Abs(u)", name="abs")
    path = tmp_path / "abs.json"
    act.save(path)
    back = Activation.load(path)
    assert back.to_json() == act.to_json()
    assert back.collinear["ss"].kind == "homogeneous"
    assert back.collinear["ss"].same == pytest.approx(1.0)


def test_non_holonomic_expression():
    with pytest.raises(NotHolonomicError, match="gauss-hermite"):
        derive_activation("tanh(u)", name="tanh")


def test_given_annihilators_are_checked():
    act = derive_activation("Max(0, u)", name="r", annihilators={"s": ["u*d - 1"]})
    assert act.annihilators["s"] == ("u*d - 1",)
    with pytest.raises(DerivationError, match="does not annihilate"):
        derive_activation("Max(0, u)", name="r", annihilators={"s": ["u*d - 2"]})


def test_cas_backend_branch(monkeypatch):
    """A backend's restriction ideal goes through pfaffian_from_ideal."""
    from hgmntk.cas_bridge import backend as backend_mod
    from hgmntk.cas_bridge.weyl import XD, parse_operators

    relu = Activation.load(DATA / "relu.json")
    calls = []

    class FakeBackend:
        name = "fake"
        preference = 0
        capabilities = frozenset({"restriction"})

        def restriction_ideal(self, ann1, ann2, *, timeout=None):
            calls.append((ann1, ann2))
            k = 1 if str(ann1[0]) == "u*d - 1" else 0
            ideal = relu.duals["ss" if k else "dsds"].ideal
            return parse_operators(XD, ideal)

    monkeypatch.setattr(backend_mod, "get_backend", lambda name: FakeBackend())
    act = derive_activation("Max(0, u)", name="relu", backend="fake")
    assert len(calls) == 2
    assert act.provenance["backend"] == "fake"
    assert act.duals["ss"].rank == 2
    assert _same_matrices(act.duals["ss"], relu.duals["ss"])


class _EngineIdealBackend:
    """A fake CAS answering with the engine's ideal (``wrong``: another annihilator's)."""

    name = "fake"
    preference = 0
    capabilities = frozenset({"restriction"})

    def __init__(self, wrong: dict[str, str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.wrong = wrong or {}

    def restriction_ideal(self, ann1, ann2, *, timeout=None):
        from hgmntk.cas_bridge.pfaffian import derive_pfaffian
        from hgmntk.cas_bridge.weyl import UD, format_operator, parse_operator

        names = [format_operator(op) for op in ann1]
        self.calls.append(names)
        if len(names) == 1 and names[0] in self.wrong:
            ann1 = ann2 = [parse_operator(UD, self.wrong[names[0]])]
        return derive_pfaffian(ann1, ann2, timeout=timeout).ideal


def test_forced_cas_derives_only_the_chosen_ideals(monkeypatch):
    """With a CAS forced, the engine scouts every candidate ideal, the full one included,
    and the CAS restricts the winner alone: ReSin's s' has three candidates (the full
    ideal is rank 5 but not admissible), and the CAS sees one ideal per dual."""
    from hgmntk.cas_bridge import backend as backend_mod

    fake = _EngineIdealBackend()
    monkeypatch.setattr(backend_mod, "get_backend", lambda name: fake)
    act = derive_activation("Heaviside(u)*sin(u)", name="resin", backend="fake")
    assert fake.calls == [["u*d^2 + u"], ["u^2*d^2 + u^2"]]
    ref = Activation.load(DATA / "resin.json")
    for key in ("ss", "dsds"):
        assert act.duals[key].standard_monomials == ref.duals[key].standard_monomials
        assert act.duals[key].metadata["annihilators"] == ref.duals[key].metadata["annihilators"]
    assert "rejected" in act.duals["dsds"].metadata["notes"][0]
    assert act.provenance["backend"] == "fake"


def test_forced_cas_must_agree_with_the_engine_on_the_chosen_ideal(monkeypatch):
    """The engine chose the ideal for its system: a CAS that finds another one is an error."""
    from hgmntk.cas_bridge import backend as backend_mod

    fake = _EngineIdealBackend(wrong={"u^2*d^2 + u^2": "u*d^2 + u"})
    monkeypatch.setattr(backend_mod, "get_backend", lambda name: fake)
    with pytest.raises(DerivationError, match="fake .*the engine"):
        derive_activation("Heaviside(u)*sin(u)", name="resin", backend="fake")


def test_cache_round_trip(monkeypatch):
    first = derive_cached("Max(0, u)", name="relu_a")
    key = cache_key("Max(0, u)")
    assert cache_path(key).exists()
    assert first.provenance["cache_key"] == key

    def boom(*a, **k):
        raise AssertionError("derive_activation called on a cache hit")

    monkeypatch.setattr(derive_mod, "derive_activation", boom)
    seen = []
    second = derive_cached("Max(0, u)", name="relu_b", progress=lambda s, t: seen.append(s))
    assert seen == ["cache hit"]
    assert second.name == "relu_b"
    assert second.duals["ss"].to_json() == first.duals["ss"].to_json()
    # the key depends on the canonical expression: another spelling of the same SymPy tree
    assert cache_key("Max(u, 0)") == key
    assert cache_key("Heaviside(u)") != key
    assert cache_key("Max(0, u)", {"s": ["u*d - 1"]}) != key


@pytest.mark.parametrize("garbage", ["{not json", json.dumps({"format": "other"}), ""])
def test_corrupt_cache_entry_is_reported_and_rederived(garbage):
    path = cache_path(cache_key("Heaviside(u)"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(garbage)
    with pytest.warns(UserWarning, match="corrupt derivation cache"):
        act = derive_cached("Heaviside(u)", name="step")
    assert act.duals["ss"].rank == 2
    # rewritten: the next call is a silent hit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = derive_cached("Heaviside(u)", name="step")
    assert again.duals["ss"].initial_values == act.duals["ss"].initial_values


def test_unwritable_cache_is_not_fatal(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("HGMNTK_DATA_DIR", str(blocker))  # cache dir under a plain file
    with pytest.warns(UserWarning, match="could not write"):
        act = derive_cached("Heaviside(u)", name="step")
    assert act.duals["ss"].rank == 2


def test_plugin_package(tmp_path, monkeypatch):
    act = derive_activation("Abs(u)", name="my_abs", description="absolute value")
    out = write_plugin_package(act, tmp_path / "pkg")
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((out / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["hgmntk"] == {"my_abs": "hgmntk_my_abs"}
    assert meta["tool"]["setuptools"]["package-data"] == {"hgmntk_my_abs": ["*.json"]}
    assert (out / "hgmntk_my_abs" / "my_abs.json").exists()
    test_file = out / "tests" / "test_my_abs.py"
    compile(test_file.read_text(), str(test_file), "exec")
    monkeypatch.syspath_prepend(str(out))
    module = importlib.import_module("hgmntk_my_abs")
    try:
        registered = []
        module.hgmntk_register_activations(registered.append)
        assert [a.name for a in registered] == ["my_abs"]
        assert registered[0].to_json()["duals"] == act.to_json()["duals"]
        assert hasattr(module.hgmntk_register_activations, "hgmntk_impl")
    finally:
        sys.modules.pop("hgmntk_my_abs", None)


@pytest.mark.slow
def test_derived_gelu_against_reference_values():
    """GeLU end to end: derive, then integrate the ODE (independent solver) to reference."""
    from hgmntk.cas_bridge.builtin_data import check

    ref = reference_dir() / "duals.json"
    act = derive_activation("u*(1 + erf(u/sqrt(2)))/2", name="gelu")
    assert check(act, json.loads(ref.read_text()), verbose=False, max_points=3) < 1e-8


def test_inadmissible_ideal_is_replaced():
    """Y(u) cos(u) (the derivative of ReSin): the rank-5 system of the full ideal has a pole
    on x12 = 0 (the base point); the engine falls back to an admissible rank-8 system."""
    act = derive_activation("Heaviside(u)*sin(u)", name="resin")
    assert act.duals["ss"].rank == 5
    assert act.annihilators["s"] == ("u*d^2 + u",)
    dsds = act.duals["dsds"]
    assert dsds.rank == 8
    assert any("x12" in note for note in dsds.metadata["notes"])
    assert derive_mod.admissibility(dsds) is None


@pytest.mark.slow
def test_plugin_package_installs_and_its_tests_pass(tmp_path):
    """pip-install the generated package into a folder and run its own starter tests."""
    import os
    import subprocess

    act = derive_activation("Abs(u)", name="tmpl_abs", description="absolute value")
    pkg = write_plugin_package(act, tmp_path / "pkg")
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(pkg)], capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        pytest.skip(f"cannot build the package here: {pip.stderr.strip()[-300:]}")
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=pkg, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "3 passed" in run.stdout


def test_name_defaults_to_expression():
    act = derive_cached(sympy.sympify("u**2*Heaviside(u)"))
    assert act.name == "u**2*Heaviside(u)"
    assert derive_activation("Abs(u)").name == "Abs(u)"
    with pytest.raises(DerivationError):
        derive_activation(None)
    with pytest.raises(DerivationError, match="expression"):
        derive_activation(None, name="no_such_activation", annihilators={"s": ["u*d - 1"]})
