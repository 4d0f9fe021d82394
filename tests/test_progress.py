"""Progress of long kernel jobs: reports to a callable, a terminal line, silence otherwise."""

from __future__ import annotations

import io

import numpy as np
import pytest

import hgmntk
from hgmntk.errors import InvalidInputError
from hgmntk.progress import TerminalProgress, reporter


def test_reports_reach_a_callable_and_end_at_the_total():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    log = []
    k = hgmntk.kernels(X, activation="relu", depth=2, progress=lambda *r: log.append(r))
    fast = [(done, total) for stage, done, total in log if stage == "fast path (entries)"]
    done = [d for d, _ in fast]
    assert fast and done == sorted(done) and fast[-1][0] == fast[-1][1]
    assert fast[-1][1] >= 300 * 301 // 2  # the upper triangle, diagonal blocks whole
    assert k.careful_pairs == 0
    # an activation without a block evaluator: every pair on the careful path, by layers
    log.clear()
    k = hgmntk.kernels(X[:12], activation="step", depth=2, b_std=0.1, method="hgm",
                       progress=lambda *r: log.append(r))
    assert log == [(f"careful path ({k.careful_pairs} pairs), layers", h, 2) for h in (1, 2)]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_line_is_rewritten_in_place_and_ended():
    stream = _Terminal()
    display = TerminalProgress(stream, "hgmntk kernels", delay=0.0)
    display("fast path (entries)", 5, 10)
    display("fast path (entries)", 10, 10)  # the last report always shows
    display.close()
    text = stream.getvalue()
    assert text.startswith("\rhgmntk kernels: fast path (entries) 5/10 (50%)")
    assert "10/10 (100%)" in text and text.endswith("\n")
    quiet = _Terminal()
    late = TerminalProgress(quiet, "x", delay=60.0)  # short jobs show nothing
    late("stage", 1, 2)
    late.close()
    assert quiet.getvalue() == ""


def test_default_is_silent_off_a_terminal_and_bad_values_are_refused(capsys):
    report, close = reporter(None, "x")  # stderr is captured: not a terminal
    report("stage", 1, 1)
    close()
    assert capsys.readouterr().err == ""
    with pytest.raises(InvalidInputError, match="progress must be"):
        reporter("yes", "x")


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_kernel_shows_progress_on_a_terminal_unless_quiet(monkeypatch, tmp_path, quiet):
    import sys

    import hgmntk.progress
    from hgmntk.cli import main

    np.savetxt(tmp_path / "x.csv", np.random.default_rng(1).standard_normal((50, 3)),
               delimiter=",")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(hgmntk.progress, "DELAY", 0.0)
    argv = ["kernel", "--x1", str(tmp_path / "x.csv"), "--activation", "relu", "--depth",
            "2", "--out", str(tmp_path / "k.npz")] + (["--quiet"] if quiet else [])
    assert main(argv) == 0
    shown = terminal.getvalue()
    if quiet:
        assert shown == ""
    else:
        assert "\rhgmntk kernels: fast path (entries) 2500/2500 (100%)" in shown
        assert shown.endswith("\n")
