"""Progress of long kernel jobs: a one-line display on the terminal, or a user callback.

``hgmntk.kernels(..., progress=...)`` (and ``kernel_layers``, ``KernelRegressor``, the CLI's
``kernel`` and ``regress``) report ``(stage, done, total)``: the fast path's entries (after
each block), then the pairs of the careful path.  ``progress=None`` (the default) shows a
line on stderr only when stderr is a terminal and the job has run for more than
:data:`DELAY` seconds; ``False`` never shows anything; ``True`` always does; a callable
receives every report (from worker threads too) instead.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

#: A report: (stage, done, total).
ProgressCallback = Callable[[str, int, int], None]

#: Seconds a job runs before the terminal display appears (short jobs stay silent).
DELAY = 2.0


class TerminalProgress:
    """``label: stage done/total (p%) t s`` rewritten in place on ``stream``, once the job has
    run ``delay`` seconds, at most ten times a second; :meth:`close` ends the line."""

    def __init__(self, stream: TextIO, label: str, delay: float = DELAY) -> None:
        self.stream = stream
        self.label = label
        self.delay = delay
        self.start = time.monotonic()
        self.last = -1.0
        self.width = 0
        self.lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.start < self.delay or (now - self.last < 0.1 and done < total):
                return
            self.last = now
            share = f" ({100 * done // total}%)" if total else ""
            line = f"{self.label}: {stage} {done}/{total}{share} {now - self.start:.0f} s"
            self.stream.write("\r" + line.ljust(self.width))
            self.stream.flush()
            self.width = max(self.width, len(line))

    def close(self) -> None:
        """End the display's line (nothing if it never appeared)."""
        with self.lock:
            if self.width:
                self.stream.write("\n")
                self.stream.flush()
                self.width = 0


def _silent(stage: str, done: int, total: int) -> None:  # noqa: ARG001
    return None


def reporter(
    progress: bool | ProgressCallback | None, label: str
) -> tuple[ProgressCallback, Callable[[], None]]:
    """(report, close) for a ``progress`` argument (see the module docstring)."""
    if progress is None:
        stream = sys.stderr
        isatty = getattr(stream, "isatty", None)
        progress = bool(isatty and isatty())
    if progress is False:
        return _silent, lambda: None
    if progress is True:
        display = TerminalProgress(sys.stderr, label, delay=DELAY)
        return display, display.close
    if callable(progress):
        return progress, lambda: None
    from .errors import InvalidInputError

    raise InvalidInputError(
        f"progress must be None, True, False or a callable (stage, done, total), got "
        f"{progress!r}"
    )
