"""Activation files: systems parsed on first use, corrupt systems reported by file, start-up."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from importlib import resources

import pytest

from hgmntk import Activation
from hgmntk.activation import LazySystems
from hgmntk.errors import ActivationFileError


def _shipped(name: str) -> dict:
    folder = resources.files("hgmntk.plugins") / "data"
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


def test_systems_are_parsed_on_first_use():
    data = _shipped("gelu")
    act = Activation.from_json(data, source="gelu.json")
    assert isinstance(act.duals, LazySystems)
    assert sorted(act.duals) == ["dsds", "ss"] and len(act.duals) == 2
    assert act.dual_rank("ss") == 5 and act.dual_rank("dsds") == 5
    assert "parsed=[]" in repr(act.duals)  # ranks, keys and JSON need no parsing
    assert act.dual_json("ss") == data["duals"]["ss"]
    system = act.duals["ss"]
    assert act.duals["ss"] is system and system.rank == 5
    assert "parsed=['ss']" in repr(act.duals)
    assert act.to_json()["duals"] == data["duals"]  # a parsed system writes back the same
    clone = pickle.loads(pickle.dumps(act))
    assert clone.duals["dsds"].rank == 5


def test_corrupt_system_names_file_and_dual_and_spares_the_rest():
    data = _shipped("relu")
    data["duals"]["ss"]["pfaffian"][0]["numerators"][0][0] = [["1/0", [0, 0, 0]]]
    act = Activation.from_json(data, source="relu-broken.json")
    assert act.duals["dsds"].rank == 2  # the other dual still works
    with pytest.raises(ActivationFileError, match=r"relu-broken\.json.*dual 'ss'.*re-derive"):
        act.duals["ss"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["duals"]["ss"].pop("pfaffian"),
        lambda d: d["duals"]["ss"]["pfaffian"].pop(),
        lambda d: d["duals"]["ss"].update(rank=7),
        lambda d: d["duals"].update(ss=[1, 2]),
    ],
    ids=["no-matrices", "two-matrices", "wrong-rank", "not-an-object"],
)
def test_misshapen_system_is_refused_when_the_file_is_read(damage):
    data = _shipped("relu")
    damage(data)
    with pytest.raises(ActivationFileError, match="corrupt activation file"):
        Activation.from_json(data, source="relu.json")


def test_closed_form_call_starts_without_scipy_sympy_or_parsing():
    """`hgmntk dual relu` loads neither SciPy, SymPy nor numba (the kernels' compiled
    loops) and parses no system (start-up)."""
    code = (
        "import contextlib, io, sys\n"
        "from hgmntk.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert main(['dual', 'relu', '--a', '1', '--b', '1', '--c', '0.5']) == 0\n"
        "from hgmntk.plugin_manager import get_registry\n"
        "parsed = [n for n, a in get_registry().activations.items()\n"
        "          if 'parsed=[]' not in repr(a.duals) and a.duals]\n"
        "heavy = sorted(m for m in ('scipy', 'sympy', 'sklearn', 'numba') if m in sys.modules)\n"
        "print(out.getvalue().strip(), parsed, heavy)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    value, rest = run.stdout.split(" ", 1)
    assert abs(float(value) - 0.30449889052211476) < 1e-15
    assert rest.strip() == "[] []"
