"""How hgmntk compiles its float64 loops with numba: one decorator, one cache folder.

:func:`loop` is numba's ``njit`` with the options every compiled loop of hgmntk uses:
``nogil`` (the fast path runs blocks on threads), numpy's error model (x/0 is inf or NaN
as numpy gives it, not an exception), no fast-math (IEEE rounding operation by
operation, which the error bounds assume) and ``cache=True``.

The cache goes to ``$XDG_CACHE_HOME/hgmntk/numba`` (``~/.cache/hgmntk/numba``), not
beside the modules: numba's files in an installed package's ``__pycache__`` are unknown
to pip, so uninstalling would leave a bare ``hgmntk`` folder behind that shadows a later
editable install.  A cache folder chosen by the user (``NUMBA_CACHE_DIR``) is kept, and
other packages' numba functions are not affected (the folder is set only while hgmntk's
loops are decorated).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numba


def cache_dir() -> Path:
    """The folder of hgmntk's compiled loops: $XDG_CACHE_HOME/hgmntk/numba."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "hgmntk" / "numba"


def loop(function: Callable | None = None, *, inline: bool = False):
    """``numba.njit`` with hgmntk's options (module docstring); ``inline`` for small
    helpers inlined into their callers."""

    def decorate(f: Callable):
        previous = numba.config.CACHE_DIR
        if not previous:
            numba.config.CACHE_DIR = str(cache_dir())
        try:
            return numba.njit(f, nogil=True, cache=True, error_model="numpy",
                              inline="always" if inline else "never")
        finally:
            numba.config.CACHE_DIR = previous

    return decorate if function is None else decorate(function)
