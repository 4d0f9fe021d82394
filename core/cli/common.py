"""What every command of the ``hgmntk`` command line shares.

Errors (:class:`CLIError`, the parser that raises instead of exiting), printing (tables,
JSON), atomic output files, reading input matrices (:func:`read_matrix`), integrator
options, activation resolution (:func:`resolve_activation`), derivation progress, and the
option groups several commands take (``--method``/``--rtol``/``--option``, the network).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from ..files import atomic_write  # noqa: F401 - importable from here, as before
from ..files import umask as _umask

PROG = "hgmntk"
EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERNAL = 1
FORMATTER = argparse.RawDescriptionHelpFormatter

#: Activation / plugin names accepted by ``derive`` and ``new-plugin`` (file and module names).
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class CLIError(Exception):
    """A user mistake detected by the command line itself (printed, exit status 2)."""


class _UsageError(Exception):
    """Raised instead of argparse's exit on a usage error."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises on usage errors instead of exiting the process."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, self.prog)


# =============================================================================== helpers
def format_float(value: float) -> str:
    """A float with 17 significant digits (round-trips exactly)."""
    return f"{float(value):.17g}"


def print_table(rows: Sequence[Sequence[object]], header: Sequence[str], out: TextIO) -> None:
    """Print a plain left-aligned text table."""
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(line, file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)


def print_json(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, default=_json_default)
    out.write("\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def check_output_path(path: str, suffixes: Sequence[str], option: str) -> Path:
    """Validate an output path before any computation starts."""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise CLIError(f"{option} {path}: the file name must end in {' or '.join(suffixes)}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise CLIError(f"{option} {path}: folder {folder} does not exist")
    if p.is_dir():
        raise CLIError(f"{option} {path} is a folder, not a file name")
    return p


def save_array(path: Path, arr: np.ndarray) -> None:
    """Save to .npy, or to comma-separated text for .csv/.txt (17 digits)."""
    arr = np.asarray(arr)
    if path.suffix.lower() == ".npy":
        atomic_write(path, lambda fh: np.save(fh, arr, allow_pickle=False))
    else:
        data = arr.reshape(-1, 1) if arr.ndim <= 1 else arr
        atomic_write(
            path, lambda fh: np.savetxt(fh, data, delimiter=",", fmt="%.17g"), binary=True
        )


def read_matrix(path: str, option: str) -> np.ndarray:
    """Read a numeric array from a ``.npy`` file or comma-separated text.

    CSV: one row per line, fields separated by commas; blank lines are skipped; a first
    line with a non-numeric field is a header.  Every field must be a finite number; a
    missing or non-finite field is reported with its line and column.
    """
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{option} {path}: no such file")
    if p.is_dir():
        raise CLIError(f"{option} {path} is a folder, not a file")
    with open(p, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise CLIError(f"{option} {path}: not a readable .npy array ({exc})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise CLIError(f"{option} {path}: expected a numeric array, got dtype {arr.dtype}")
        arr = arr.astype(float)
        if arr.size and not np.all(np.isfinite(arr)):
            idx = tuple(int(v) for v in np.argwhere(~np.isfinite(arr))[0])
            raise CLIError(
                f"{option} {path}: NaN or infinite value at index {idx}; clean or impute the "
                "data first"
            )
        return arr
    if p.suffix.lower() == ".npz":
        raise CLIError(f"{option} {path}: .npz archives are not inputs; save one array as .npy")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CLIError(
            f"{option} {path}: neither a .npy file nor comma-separated text (not UTF-8)"
        ) from None
    rows: list[list[float]] = []
    width = None
    first = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        values = []
        bad = None
        for col, field in enumerate(fields, start=1):
            try:
                values.append(float(field))
            except ValueError:
                bad = (col, field)
                break
        if bad is not None and first and not rows:
            first = False  # header line
            continue
        first = False
        if bad is not None:
            col, field = bad
            what = "an empty field" if field == "" else f"{field!r}, not a number"
            if any(sep in field for sep in (";", "\t", " ")):
                what += " (fields must be separated by commas)"
            raise CLIError(f"{option} {path}: line {lineno}, column {col}: {what}")
        for col, v in enumerate(values, start=1):
            if not math.isfinite(v):
                raise CLIError(
                    f"{option} {path}: line {lineno}, column {col}: {fields[col - 1]!r} is not "
                    "a finite number (NaN or infinite); clean or impute the data first"
                )
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise CLIError(
                f"{option} {path}: line {lineno} has {len(values)} fields, earlier lines {width}"
            )
        rows.append(values)
    if not rows:
        raise CLIError(f"{option} {path}: no data rows")
    return np.array(rows, dtype=float)


def read_inputs(path: str, option: str) -> np.ndarray:
    """Read network inputs: a 2-D (n_points, n_features) array."""
    arr = read_matrix(path, option)
    if arr.ndim != 2:
        raise CLIError(
            f"{option} {path}: expected a 2-D array (n_points, n_features), got shape "
            f"{arr.shape}; reshape it before saving (x.reshape(-1, 1) for scalar inputs)"
        )
    return arr


def read_targets(path: str, option: str) -> np.ndarray:
    """Read regression targets: (n,) or (n, k); a single CSV column becomes (n,)."""
    arr = read_matrix(path, option)
    if arr.ndim == 2 and arr.shape[1] == 1 and not path.lower().endswith(".npy"):
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise CLIError(f"{option} {path}: expected a 1-D or 2-D array, got shape {arr.shape}")
    return arr


def parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` integrator options; values become int, float or stay strings."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--option {item!r}: write KEY=VALUE, e.g. --option degree=80")
        v: Any = value.strip()
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                continue
        out[key.strip()] = v
    return out


def registry():
    from ..plugin_manager import get_registry

    return get_registry()


def resolve_activation(text: str, method: str = "auto"):
    """A registered activation, a family member ("erf(a=0.5)"), or one made from an
    expression in u.

    With a quadrature ``method`` the expression is used as it is (holonomic or not); for
    the exact methods it is derived (and cached) through
    ``hgmntk.cas_bridge.derive.derive_cached`` with the expression as name; steps go to
    stderr when the derivation takes over a second.
    """
    from ..dual_activation import family_member, get_activation, get_integrator, no_system_hint
    from ..errors import InvalidInputError

    reg = registry()
    if text in reg.activations:
        return reg.activations[text]
    member = family_member(text)
    if member is not None:
        return member
    from ..expressions import parse_activation_expression  # SymPy: only for expressions

    try:
        parse_activation_expression(text)
    except InvalidInputError:
        return get_activation(text)  # raises UnknownActivationError listing the names
    if method != "auto" and not get_integrator(method).exact:
        return get_activation(text, method)
    try:
        from ..cas_bridge.derive import derive_cached
    except ImportError:
        return get_activation(text)  # says why expressions cannot be derived
    with no_system_hint():
        return derive_cached(text, name=text, progress=Progress(sys.stderr))



class Progress:
    """Derivation progress to stderr, once the derivation has taken more than a second."""

    def __init__(self, stream: TextIO, threshold: float = 1.0) -> None:
        self.stream = stream
        self.threshold = threshold
        self.pending: list[tuple[str, float]] = []
        self.live = False

    def __call__(self, step: str, elapsed: float) -> None:
        if not self.live:
            self.pending.append((step, elapsed))
            if elapsed <= self.threshold:
                return
            self.live = True
            items, self.pending = self.pending, []
        else:
            items = [(step, elapsed)]
        for s, t in items:
            print(f"{PROG}: [{t:7.1f}s] {s}", file=self.stream, flush=True)




def check_tree_target(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise CLIError(f"--out {dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise CLIError(f"--out {dest} exists and is not empty; pass --force to write into it")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"--out {dest}: folder {parent} does not exist")


def write_tree(dest: Path, write: Callable[[Path], object], force: bool) -> None:
    """Let ``write`` fill a temporary sibling folder, then move it into ``dest``.

    A missing ``dest`` is renamed into place whole; into an existing one (``force``) each
    file is moved with an atomic rename, and files of other names are left alone.
    """
    check_tree_target(dest, force)
    parent = dest.parent if str(dest.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual mode
        write(tmp)
        if not dest.exists():
            os.replace(tmp, dest)
            return
        for src in sorted(tmp.rglob("*")):
            rel = src.relative_to(tmp)
            target = dest / rel
            if src.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)



# ====================================================== option groups of several commands
def add_method_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--method",
        default="auto",
        metavar="M",
        help="integrator: auto (closed form, else hgm), closed, hgm, gauss-hermite, "
        "monte-carlo, or one a plugin registers (see 'hgmntk plugins'; default: auto)",
    )
    p.add_argument(
        "--rtol",
        type=float,
        default=1e-12,
        metavar="R",
        help="relative tolerance of the HGM ODE solver (default: 1e-12)",
    )
    p.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="integrator option, repeatable (e.g. degree=80 for gauss-hermite, "
        "samples=100000 for monte-carlo)",
    )


def add_network_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--activation",
        required=True,
        metavar="A",
        help="registered activation name, family member ('leaky_relu(alpha=0.2)', see "
        "'hgmntk activations families') or SymPy expression in u",
    )
    p.add_argument(
        "--depth", required=True, type=int, metavar="L", help="number of hidden layers (>= 1)"
    )
    p.add_argument(
        "--w-std",
        type=float,
        default=1.0,
        metavar="W",
        help="weight standard deviation (default: 1.0)",
    )
    p.add_argument(
        "--b-std",
        type=float,
        default=0.0,
        metavar="B",
        help="bias standard deviation (default: 0.0)",
    )

