"""Hook specifications of hgmntk (all of them, in one place).

A plugin is a module or object with functions marked ``@hgmntk.hookimpl`` whose names are
the hooks below.  Plugins are found through the ``hgmntk`` entry-point group; the built-in
activations and integrators are registered through the very same hooks.

Each hook hands the plugin a ``register`` callback, so one plugin can register many things::

    from hgmntk import hookimpl, Activation

    @hookimpl
    def hgmntk_register_activations(register):
        register(Activation.load(Path(__file__).with_name("mish_like.json")))
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "hgmntk"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hgmntk_register_activations(register):
    """Register activations: call ``register(activation)`` once per :class:`Activation`.

    Two plugins registering the same name is an error unless the later one passes
    ``register(activation, replace=True)``.
    """


@hookspec
def hgmntk_register_integrators(register):
    """Register integrators: call ``register(integrator)`` with an :class:`Integrator`.

    The integrator's ``name`` is what ``method=`` selects in :func:`hgmntk.dual`.
    """


@hookspec
def hgmntk_register_families(register):
    """Register activation families with parameters: call ``register(family)`` with an
    object like :class:`hgmntk.plugins.families.Family` (``name``, ``stax``,
    ``parameters``, ``activation(*args, **kwargs)`` returning an :class:`Activation`).

    Users then write ``"name(param=value, ...)"`` wherever an activation is expected, or
    ``hgmntk.act.Name(param=value)`` by the family's neural-tangents name.
    """


@hookspec
def hgmntk_register_cas_backends(register):
    """Register computer-algebra backends for the derivation pipeline.

    Call ``register(backend)`` with an object following
    :class:`hgmntk.cas_bridge.backend.CASBackend` (name, detection, the pipeline steps it
    can do).  The derivation asks backends in order of ``preference`` (higher first); the
    pure-Python engine registers itself with the lowest preference so it answers last.
    """
