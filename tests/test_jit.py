"""hgmntk's compiled loops (hgmntk.jit): numba's cache goes to the user's cache folder,
never into the installed package (pip does not know those files, so an uninstall would
leave a bare hgmntk folder that shadows a later editable install), and other packages'
numba settings are left as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba

import hgmntk
import hgmntk.plugins


def _beside_the_package() -> set[Path]:
    package = Path(hgmntk.__file__).resolve().parent
    plugins = Path(hgmntk.plugins.__file__).resolve().parent
    return {p for root in (package, plugins) for p in root.rglob("*.nb[ic]")}


def test_compiled_loops_are_cached_in_the_user_cache_folder(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    env.pop("NUMBA_CACHE_DIR", None)
    code = (
        "import numpy as np, hgmntk\n"
        "x = np.random.default_rng(0).standard_normal((40, 3))\n"
        "k = hgmntk.kernels(x, activation='gauss', depth=2)\n"
        "assert np.all(np.isfinite(k.ntk))\n"
    )
    before = _beside_the_package()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=600)
    assert _beside_the_package() <= before  # nothing new beside the modules
    cached = {p.name for p in (tmp_path / "hgmntk" / "numba").rglob("*.nbi")}
    assert any(name.startswith("fused.") for name in cached), cached
    assert any(name.startswith("compiled_forms.") for name in cached), cached


def test_numba_settings_of_other_code_are_kept():
    """Decorating hgmntk's loops sets numba's cache folder only while it decorates."""
    import hgmntk.fused  # noqa: F401  (decorates the loops)
    from hgmntk.jit import cache_dir, loop

    before = numba.config.CACHE_DIR

    @loop
    def twice(x):
        return 2 * x

    assert twice(2.0) == 4.0
    assert numba.config.CACHE_DIR == before
    assert cache_dir().parts[-2:] == ("hgmntk", "numba")
