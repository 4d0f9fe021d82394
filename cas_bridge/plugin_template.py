"""Moved to :mod:`hgmntk.cli.plugin_template` (the scaffolding belongs to the command line).

This module re-exports it so that ``from hgmntk.cas_bridge.plugin_template import
write_plugin_package`` keeps working.
"""

from __future__ import annotations

from ..cli.plugin_template import write_plugin_package

__all__ = ["write_plugin_package"]
