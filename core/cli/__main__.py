"""``python -m hgmntk.cli``: the same as ``hgmntk`` and ``python -m hgmntk``."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
