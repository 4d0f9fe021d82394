"""The README's tour and the quickstart example run as printed, without warnings."""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Five-minute tour") :]
    return section.split("```python", 1)[1].split("```", 1)[0]


def test_readme_tour_runs_as_printed():
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(_tour(), "README tour", "exec"), namespace)  # noqa: S102
    mean, std = namespace["mean"], namespace["std"]
    assert mean.shape == std.shape == (10,) and np.all(std > 0)
    assert [k.depth for k in namespace["layers"]] == [1, 2, 3]


def test_quickstart_example_runs(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "ridge by leave-one-out" in out and "95% band" in out
