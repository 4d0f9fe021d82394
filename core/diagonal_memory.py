"""The memory of solved diagonal paths during one dual evaluation.

:func:`hgmntk.hgm.diagonal_path` solves the HGM from the base point to diag(a, b).  One
evaluation asks for the same diagonals several times (direct values, Price's nodes,
competing attempts); within :func:`remembered_diagonals` the solutions are kept.  Outside it
nothing is kept, so a value never depends on earlier calls.  (A module of its own so that
closed-form evaluations enter the context without importing the ODE solver.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Solved diagonal paths while :func:`remembered_diagonals` is active, by system:
#: {(rtol, probe, a, b): (G, error)}.
DIAGONALS: ContextVar[dict | None] = ContextVar("hgmntk_diagonals", default=None)
#: At most this many remembered diagonals per system.
DIAGONALS_MAX = 1 << 16


@contextmanager
def remembered_diagonals() -> Iterator[None]:
    """Keep the diagonal paths solved within this context (re-entrant)."""
    if DIAGONALS.get() is not None:
        yield
        return
    token = DIAGONALS.set({})
    try:
        yield
    finally:
        DIAGONALS.reset(token)
