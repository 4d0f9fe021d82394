"""User-derived activations: where they are stored, and the plugin that registers them.

Activations made by ``hgmntk derive`` live as activation files in
``<data dir>/activations/NAME.json``; the data directory is ``$HGMNTK_DATA_DIR`` if set, else
``$XDG_DATA_HOME/hgmntk`` (default ``~/.local/share/hgmntk``).  The derivation cache lives in
``<data dir>/cache``.  A corrupt file is reported with its path and skipped, never fatal for
the other activations.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .errors import ActivationFileError
from .hookspecs import hookimpl


def data_dir() -> Path:
    """The hgmntk user data directory (not created here)."""
    env = os.environ.get("HGMNTK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hgmntk"


def activations_dir() -> Path:
    """Directory of user-installed activation files."""
    return data_dir() / "activations"


def cache_dir() -> Path:
    """Directory of the derivation cache."""
    return data_dir() / "cache"


def install_activation(activation, *, overwrite: bool = True) -> Path:
    """Store an activation file so that every later process registers it."""
    from .plugin_manager import reset_registry

    path = activations_dir() / f"{activation.name}.json"
    if path.exists() and not overwrite:
        raise FileExistsError(path)
    activation.save(path)
    reset_registry()
    return path


@hookimpl
def hgmntk_register_activations(register):
    """Register every activation file of the user data directory."""
    from .activation import Activation

    folder = activations_dir()
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        try:
            register(Activation.load(path), replace=True)
        except ActivationFileError as exc:
            warnings.warn(f"skipping user activation: {exc}", stacklevel=2)
