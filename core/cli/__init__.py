"""The ``hgmntk`` command line (also ``python -m hgmntk``).

Subcommands (``hgmntk COMMAND --help`` shows examples for each)::

    hgmntk activations [--json]            table of registered activations
    hgmntk activations show NAME [--json]  one activation: annihilators, Pfaffian systems
    hgmntk plugins [--json]                loaded plugins, integrators, CAS backends
    hgmntk backends [--json]               CAS backends of the derivation engine
    hgmntk dual ACTIVATION --a A --b B --c C [--derivative] [--method M] [--error]
    hgmntk kernel --x1 X.csv [--x2 Y.csv] --activation A --depth L --out K.npz
    hgmntk regress --train-x X --train-y Y --test-x T --activation A --depth L --out P.npy
    hgmntk derive EXPR --name NAME [--out DIR] [--backend B] [--force] [--no-verify]
    hgmntk new-plugin NAME --out DIR [--from ACTIVATION]
    hgmntk --version

Every mistake a user can make (unknown names, bad numbers, missing or malformed files,
:class:`~hgmntk.errors.HgmntkError` in general) prints ``hgmntk: error: <message>`` to
stderr and makes :func:`main` return 2, without a traceback.  An unexpected exception (a
bug) is reported in one line with exit status 1; ``HGMNTK_TRACEBACK=1`` shows its
traceback.  Output files are written to a temporary file in the destination folder and
renamed into place, so an interrupted run never leaves a half-written file behind.  SIGTERM
unwinds like Ctrl-C (a CAS child is killed, temporary folders removed) and exits with 143.

Input matrices (``--x1``, ``--train-y``, ...) are NumPy ``.npy`` files or comma-separated
text (one row per line; a first line that is not numeric is taken as a header and skipped).
``kernel`` writes one ``.npz`` archive with the arrays ``nngp`` and ``ntk``; ``regress``
writes ``.npy`` (or ``.csv`` text, chosen by the suffix).  Warnings are printed as
``hgmntk: warning: <message>``.

Layout: one module per command group, each command's parser (``add_*_parser``) next to its
handler (``cmd_*``): :mod:`~hgmntk.cli.catalog` (activations, plugins),
:mod:`~hgmntk.cli.compute` (dual, kernel, regress), :mod:`~hgmntk.cli.authoring` (derive,
backends, new-plugin, with the package scaffolding of :mod:`~hgmntk.cli.plugin_template`);
:mod:`~hgmntk.cli.common` holds what they share.  This module builds the parser from the
groups and runs it (:func:`main`, the ``hgmntk`` console entry point).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..errors import HgmntkError
from . import authoring, catalog, compute, figures
from .authoring import VERIFY_POINTS, quadrature_dual, verify_activation
from .common import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_OK,
    FORMATTER,
    PROG,
    CLIError,
    Progress,
    _Parser,
    _UsageError,
    read_matrix,
    resolve_activation,
)

#: The command groups, in the order ``hgmntk --help`` lists their commands.
GROUPS = (catalog, compute, figures, authoring)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hgmntk`` (all subcommands)."""
    from .. import __version__

    parser = _Parser(
        prog=PROG,
        formatter_class=FORMATTER,
        description="Exact NNGP/NTK kernels of infinitely wide networks for holonomic "
        "activations, by the holonomic gradient method.",
        epilog="examples:\n"
        "  hgmntk activations\n"
        "  hgmntk dual relu --a 1 --b 2 --c 0.5\n"
        "  hgmntk dual 'leaky_relu(alpha=0.2)' --a 1 --b 2 --c 0.5\n"
        "  hgmntk kernel --x1 x.csv --activation relu --depth 3 --out k.npz\n"
        "  hgmntk derive 'Heaviside(u)*cos(u)' --name rcos\n\n"
        "'hgmntk COMMAND --help' shows the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


# =============================================================================== main
def _error(message: str, err: TextIO) -> int:
    print(f"{PROG}: error: {message}", file=err)
    return EXIT_ERROR


def _internal_error(exc: Exception, err: TextIO) -> int:
    """Report an unexpected exception in one line (where it was raised) and return 1."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    cli = Path(__file__).resolve().parent
    roots = {cli.parent}  # the hgmntk package
    for modname in ("hgmntk.plugins", "hgmntk.cas_bridge"):
        module = sys.modules.get(modname)
        if module is not None and getattr(module, "__file__", None):
            roots.add(Path(module.__file__).resolve().parent)
    ours = [
        f
        for f in frames
        if any(r in Path(f.filename).resolve().parents for r in roots)
        and cli not in Path(f.filename).resolve().parents
    ]
    frame = (ours or frames or [None])[-1]
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    print(
        f"{PROG}: internal error{where}: {type(exc).__name__}: {exc}\n"
        f"{PROG}: this is a bug in hgmntk or a plugin; please report it with the output of "
        "the same command run with HGMNTK_TRACEBACK=1",
        file=err,
    )
    return EXIT_INTERNAL


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (``finally``, ``except
    BaseException``: a CAS child killed, temporary folders removed) runs as for Ctrl-C."""


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 on success, 2 for a user mistake (``hgmntk: error: ...`` on stderr), 1 for an
    internal error, 130 when interrupted, 143 when terminated (SIGTERM).

    Examples
    --------
    >>> from hgmntk.cli import main
    >>> main(["dual", "relu", "--a", "1", "--b", "1", "--c", "0"])
    0.15915494309189535
    0
    """
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        print(f"(see '{exc.prog} --help')", file=err)
        return EXIT_ERROR
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if getattr(args, "func", None) is None:
        parser.print_usage(err)
        return _error("a command is required (see 'hgmntk --help')", err)

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        print(f"{PROG}: warning: {message}", file=err)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args, out, err, show)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, out, err, show) -> int:
    """Run the parsed command; exceptions become exit statuses (see :func:`main`)."""
    with warnings.catch_warnings():
        warnings.showwarning = show
        try:
            return int(args.func(args, out) or 0)
        except (HgmntkError, CLIError) as exc:
            return _error(str(exc), err)
        except BrokenPipeError:  # pragma: no cover - e.g. piped into head
            return EXIT_OK
        except FileNotFoundError as exc:
            return _error(f"no such file: {exc.filename or exc}", err)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            return _error(f"{exc.strerror or exc}{where}", err)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=err)
            return 130
        except _Terminated:
            print(f"{PROG}: terminated", file=err)
            return 143
        except Exception as exc:  # a bug in hgmntk or a plugin, not a user mistake
            if os.environ.get("HGMNTK_TRACEBACK"):
                raise
            return _internal_error(exc, err)


#: The name of Progress before the command line became a package.
_Progress = Progress

#: The public names; the command modules' helpers stay importable from here as before.
__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "PROG",
    "VERIFY_POINTS",
    "Progress",
    "CLIError",
    "build_parser",
    "main",
    "quadrature_dual",
    "read_matrix",
    "resolve_activation",
    "verify_activation",
]
