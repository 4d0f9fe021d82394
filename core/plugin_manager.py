"""The plugin manager: loading plugins and collecting what they register.

Plugins come from (1) the built-in modules, registered under the same names as their
entry points, (2) every entry point in the ``hgmntk`` group, and (3) user-derived
activations stored in the user data directory.  Set ``HGMNTK_DISABLE_PLUGINS=name1,name2``
to block plugins by name (e.g. to test a fallback), or ``all`` to load only built-ins.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

#: Built-in plugin modules, by their entry-point names.
BUILTIN_PLUGINS = {
    "builtin_activations": "hgmntk.plugins.builtin_activations",
    "builtin_integrators": "hgmntk.plugins.builtin_integrators",
    "builtin_families": "hgmntk.plugins.families",
    "user_activations": "hgmntk.userdata",
}
OPTIONAL_BUILTIN_PLUGINS = {
    "builtin_cas_backends": "hgmntk.cas_bridge.backends",
}


def _blocked() -> set[str]:
    return {s.strip() for s in os.environ.get("HGMNTK_DISABLE_PLUGINS", "").split(",") if s.strip()}


def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with built-ins and entry-point plugins loaded and checked.

    ``check_pending`` makes a misspelt hook (``hgmntk_register_activation``) fail loudly.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = _blocked()
    for name in blocked:
        if name != "all":
            pm.set_blocked(name)
    for name, modname in {**BUILTIN_PLUGINS, **OPTIONAL_BUILTIN_PLUGINS}.items():
        if name in blocked:
            continue
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if name in OPTIONAL_BUILTIN_PLUGINS and exc.name == modname:
                continue
            raise
        pm.register(module, name=name)
    if "all" not in blocked:
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        except Exception as exc:  # a third-party plugin that fails to import
            raise PluginError(
                f"an hgmntk plugin failed to load: {type(exc).__name__}: {exc}. "
                "Uninstall or fix it, or block it with HGMNTK_DISABLE_PLUGINS=<name>"
            ) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"invalid hgmntk plugin: {exc}") from exc
    return pm


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.activations: dict[str, Any] = {}
        self.integrators: dict[str, Any] = {}
        self.backends: dict[str, Any] = {}
        self.families: dict[str, Any] = {}
        self.origin: dict[tuple[str, str], str] = {}
        for kind, hook, store in (
            ("activation", pm.hook.hgmntk_register_activations, self.activations),
            ("integrator", pm.hook.hgmntk_register_integrators, self.integrators),
            ("backend", pm.hook.hgmntk_register_cas_backends, self.backends),
            ("family", pm.hook.hgmntk_register_families, self.families),
        ):
            for impl in reversed(hook.get_hookimpls()):  # registration order
                plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
                impl.function(register=self._registrar(kind, store, plugin_name))

    def _registrar(self, kind: str, store: dict, plugin_name: str) -> Callable[..., None]:
        def register(item: Any, replace: bool = False) -> None:
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin_name!r} registered a {kind} without a name")
            if name in store and not replace:
                raise PluginError(
                    f"{kind} {name!r} is registered twice (by {self.origin[(kind, name)]!r} and "
                    f"{plugin_name!r}); pass replace=True to override deliberately"
                )
            store[name] = item
            self.origin[(kind, name)] = plugin_name

        return register

    def plugins(self) -> list[dict[str, Any]]:
        """One record per plugin: its name and the hooks it implements."""
        out = []
        for plugin in self.pm.get_plugins():
            name = self.pm.get_name(plugin)
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            dist = None
            for d_plugin, d in self.pm.list_plugin_distinfo():
                if d_plugin is plugin:
                    dist = f"{d.project_name} {d.version}"
            out.append({"name": name, "hooks": hooks, "distribution": dist})
        return sorted(out, key=lambda r: r["name"] or "")


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry (built once; :func:`reset_registry` rebuilds it)."""
    return Registry(get_plugin_manager())


def reset_registry() -> None:
    """Forget the cached registry (after installing a plugin or deriving an activation)."""
    get_registry.cache_clear()
