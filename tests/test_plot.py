"""`hgmntk plot KIND --out FILE.png`: every kind writes a PNG of the documented size.

The activations are the quick ones (closed forms; the figures' defaults add resin, whose
kernels near rho = 1 are slow); each file is read back with matplotlib.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from hgmntk import plot
from hgmntk.cli import main

CASES = {
    "duals": ["relu", "erf"],
    "regression": ["relu", "gelu"],
    "hermite": ["relu", "erf", "Heaviside(u)*sin(u)"],
    "finite-width": ["relu"],
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_kind_writes_a_png(tmp_path, kind):
    from matplotlib.image import imread

    (tmp_path / "figures").mkdir()
    target = tmp_path / "figures" / f"{kind}.png"
    out, err = io.StringIO(), io.StringIO()
    argv = ["plot", kind, "--out", str(target), "--activations", *CASES[kind]]
    if kind == "hermite":
        argv += ["--n", "60"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, err.getvalue()
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(target)
    width, height = (int(v * plot.DPI) for v in plot.FIGSIZE)
    assert image.shape[:2] == (height, width)
    assert image[..., :3].std() > 0.05  # something is drawn
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file


def test_bad_output_name_is_a_clear_error(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["plot", "duals", "--out", str(tmp_path / "figure.txt")])
    assert code == 2 and "must end in .png" in err.getvalue()
