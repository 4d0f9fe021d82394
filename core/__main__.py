"""``python -m hgmntk``: the same command line as ``hgmntk`` (see :mod:`hgmntk.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
