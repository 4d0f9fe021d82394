"""Processes deriving the same activation into one data dir at the same moment.

The activation file and the derivation cache are written atomically (a temporary file in
the same folder, then a rename): whichever process renames last, every reader sees a whole
file, the installs agree, and no temporary file is left.  Two races, four processes each:
`hgmntk derive` of one expression under one name, and a family member's system derived on
first use into the derivation cache.  Later processes read what the race left, and their
duals match independent values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest

EXPR = "Heaviside(u)*cos(u)"  # not shipped: derived from scratch (about 1.5 s)
MEMBER = "leaky_relu(alpha=0.3)"  # derived on first use into the cache


def _start(env: dict, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hgmntk", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(procs) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert "Traceback" not in err and "warning" not in err, err
        outs.append(out)
    return outs


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _rcos_dual(a: float, b: float, c: float) -> float:
    """E[Y(u) cos(u) Y(v) cos(v)] by 2-D mpmath quadrature over the positive quadrant."""
    with mpmath.workdps(25):
        det = a * b - c * c
        k = 1 / (2 * mpmath.pi * mpmath.sqrt(det))

        def f(u, v):
            q = (b * u * u - 2 * c * u * v + a * v * v) / (2 * det)
            return mpmath.cos(u) * mpmath.cos(v) * mpmath.exp(-q)

        return float(k * mpmath.quad(f, [0, 3, mpmath.inf], [0, 3, mpmath.inf]))


def test_four_processes_derive_into_one_data_dir(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "HGMNTK_DATA_DIR": str(data)}
    env.pop("HGMNTK_CAS_BACKEND", None)
    _finish([_start(env, "derive", EXPR, "--name", "rcos", "--force", "--no-verify")
             for _ in range(4)])
    assert _files(data) == ["activations/rcos.json"]
    record = json.loads((data / "activations" / "rcos.json").read_text())
    assert record["name"] == "rcos" and set(record["duals"]) == {"ss", "dsds"}

    (out,) = _finish([_start(env, "dual", "rcos", "--a", "1", "--b", "0.7", "--c", "0.3")])
    assert float(out) == pytest.approx(_rcos_dual(1.0, 0.7, 0.3), rel=1e-10)


def test_four_processes_fill_the_derivation_cache_at_once(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "HGMNTK_DATA_DIR": str(data)}
    argv = ("dual", MEMBER, "--a", "1", "--b", "2", "--c", "-0.9", "--method", "hgm")
    outs = _finish([_start(env, *argv) for _ in range(4)])
    files = _files(data)
    assert len(files) == 1 and files[0].startswith("cache/derive-") and \
        files[0].endswith(".json"), files  # one entry, no temporary file
    closed = subprocess.run([sys.executable, "-m", "hgmntk", *argv[:-1], "closed"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert closed.returncode == 0, closed.stderr
    values = np.array([float(o) for o in [*outs, *_finish([_start(env, *argv)])]])
    assert values == pytest.approx(float(closed.stdout), rel=1e-12)
    assert _files(data) == files  # the later process read the cache
