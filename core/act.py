"""Activations by their neural-tangents names, with parameters: ``hgmntk.act.Erf(a=2)``.

Every registered family (see :mod:`hgmntk.family`) is an attribute under its stax name
(``LeakyRelu``, ``ABRelu``, ``Erf``, ``Gelu``, ``Sin``, ...) and under hgmntk's spelling
(``leaky_relu``); calling it with the family's parameters returns the
:class:`~hgmntk.Activation`, which every function taking ``activation=`` accepts::

    hgmntk.kernels(X, activation=hgmntk.act.LeakyRelu(alpha=0.2), depth=3)

:func:`families` lists them.
"""

from __future__ import annotations

from typing import Any


def _families() -> dict:
    from .plugin_manager import get_registry

    return get_registry().families


def families() -> list:
    """The registered families (objects with ``name``, ``stax``, ``parameters``,
    ``signature()`` and ``activation(...)``), sorted by name."""
    return sorted(_families().values(), key=lambda f: f.name)


def __getattr__(name: str) -> Any:
    from .family import find_family

    if name.startswith("__"):
        raise AttributeError(name)
    family = find_family(name, _families())
    if family is None:
        known = ", ".join(sorted(f.stax or f.name for f in _families().values()))
        raise AttributeError(f"hgmntk.act has no activation family {name!r}; known: {known}")

    def make(*args: Any, **kwargs: Any):
        return family.activation(*args, **kwargs)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"{family.signature()}: {family.description} (systems: {family.systems})"
    return make


def __dir__() -> list[str]:
    return sorted({f.stax or f.name for f in _families().values()} | {"families"})
