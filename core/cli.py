"""The ``hgmntk`` command line.

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
renamed into place, so an interrupted run never leaves a half-written file behind.

Input matrices (``--x1``, ``--train-y``, ...) are NumPy ``.npy`` files or comma-separated
text (one row per line; a first line that is not numeric is taken as a header and skipped).
``kernel`` writes one ``.npz`` archive with the arrays ``nngp`` and ``ntk``; ``regress``
writes ``.npy`` (or ``.csv`` text, chosen by the suffix).  Warnings are printed as
``hgmntk: warning: <message>``.
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
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from .errors import HgmntkError

PROG = "hgmntk"
EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERNAL = 1

#: Activation / plugin names accepted by ``derive`` and ``new-plugin`` (file and module names).
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


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
def _fmt(value: float) -> str:
    """A float with 17 significant digits (round-trips exactly)."""
    return f"{float(value):.17g}"


def _table(rows: Sequence[Sequence[object]], header: Sequence[str], out: TextIO) -> None:
    """Print a plain left-aligned text table."""
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(line, file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _print_json(data: Any, out: TextIO) -> None:
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: str | Path, write: Callable[[Any], None], *, binary: bool = True) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary sibling, then rename it."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CLIError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
        ) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_output(path: str, suffixes: Sequence[str], option: str) -> Path:
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


def _save_array(path: Path, arr: np.ndarray) -> None:
    """Save to .npy, or to comma-separated text for .csv/.txt (17 digits)."""
    arr = np.asarray(arr)
    if path.suffix.lower() == ".npy":
        _atomic_write(path, lambda fh: np.save(fh, arr, allow_pickle=False))
    else:
        data = arr.reshape(-1, 1) if arr.ndim <= 1 else arr
        _atomic_write(
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


def _read_inputs(path: str, option: str) -> np.ndarray:
    """Read network inputs: a 2-D (n_points, n_features) array."""
    arr = read_matrix(path, option)
    if arr.ndim != 2:
        raise CLIError(
            f"{option} {path}: expected a 2-D array (n_points, n_features), got shape "
            f"{arr.shape}; reshape it before saving (x.reshape(-1, 1) for scalar inputs)"
        )
    return arr


def _read_targets(path: str, option: str) -> np.ndarray:
    """Read regression targets: (n,) or (n, k); a single CSV column becomes (n,)."""
    arr = read_matrix(path, option)
    if arr.ndim == 2 and arr.shape[1] == 1 and not path.lower().endswith(".npy"):
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise CLIError(f"{option} {path}: expected a 1-D or 2-D array, got shape {arr.shape}")
    return arr


def _parse_options(items: Sequence[str] | None) -> dict[str, Any]:
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


def _registry():
    from .plugin_manager import get_registry

    return get_registry()


def resolve_activation(text: str, method: str = "auto"):
    """A registered activation, or one made from an expression in u.

    With a quadrature ``method`` the expression is used as it is (holonomic or not); for
    the exact methods it is derived (and cached) through
    ``hgmntk.cas_bridge.derive.derive_cached`` with the expression as name; steps go to
    stderr when the derivation takes over a second.
    """
    from .dual_activation import get_activation, get_integrator, no_system_hint
    from .errors import InvalidInputError
    from .expressions import parse_activation_expression

    reg = _registry()
    if text in reg.activations:
        return reg.activations[text]
    try:
        parse_activation_expression(text)
    except InvalidInputError:
        return get_activation(text)  # raises UnknownActivationError listing the names
    if method != "auto" and not get_integrator(method).exact:
        return get_activation(text, method)
    try:
        from .cas_bridge.derive import derive_cached
    except ImportError:
        return get_activation(text)  # says why expressions cannot be derived
    with no_system_hint():
        return derive_cached(text, name=text, progress=_Progress(sys.stderr))


def _monomial(exponents: Sequence[int], variables: Sequence[str]) -> str:
    """(i, j, k) -> 'd11^i d12^j d22^k' (zero exponents left out, '1' for the constant)."""
    names = [("d" + v[1:]) if v.startswith("x") else f"d{v}" for v in variables]
    parts = [n if e == 1 else f"{n}^{e}" for n, e in zip(names, exponents, strict=True) if e]
    return " ".join(parts) or "1"


# =============================================================================== commands
def cmd_activations(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk activations``: table (or JSON) of registered activations."""
    if getattr(args, "action", None) == "show":
        return cmd_activations_show(args, out)
    reg = _registry()
    records = []
    for name in sorted(reg.activations):
        act = reg.activations[name]
        records.append(
            {
                "name": name,
                "rank": {k: s.rank for k, s in act.duals.items()},
                "homogeneity": act.homogeneity.get("s"),
                "closed_form": sorted(act.closed_forms),
                "holonomic": act.holonomic,
                "description": act.description,
                "plugin": reg.origin.get(("activation", name)),
            }
        )
    if args.json:
        _print_json(records, out)
        return EXIT_OK
    rows = [
        (
            r["name"],
            r["rank"].get("ss", "-"),
            r["rank"].get("dsds", "-"),
            "-" if r["homogeneity"] is None else r["homogeneity"],
            "yes" if r["closed_form"] else "no",
            "yes" if r["holonomic"] else "no",
            r["description"],
        )
        for r in records
    ]
    _table(
        rows, ("name", "rank ss", "rank dsds", "homog.", "closed", "holonomic", "description"), out
    )
    return EXIT_OK


def _system_record(system) -> dict[str, Any]:
    import sympy

    matrices = system.matrices_sympy()
    return {
        "pair": list(system.pair),
        "variables": list(system.variables),
        "rank": system.rank,
        "standard_monomials": [_monomial(m, system.variables) for m in system.standard_monomials],
        "ideal": list(system.ideal),
        "base_point": dict(zip(system.variables, system.base_point, strict=True)),
        "initial_values": list(system.initial_values),
        "pfaffian": {
            v: [[sympy.sstr(e) for e in row] for row in m.tolist()]
            for v, m in zip(system.variables, matrices, strict=True)
        },
        "_sympy": matrices,
    }


def cmd_activations_show(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk activations show NAME``: everything hgmntk knows about one activation."""
    import sympy

    act = resolve_activation(args.name)
    reg = _registry()
    duals = {k: _system_record(s) for k, s in act.duals.items()}
    record = {
        "name": act.name,
        "description": act.description,
        "expression": act.expression,
        "derivative": act.derivative,
        "holonomic": act.holonomic,
        "homogeneity": dict(act.homogeneity),
        "annihilators": {k: list(v) for k, v in act.annihilators.items()},
        "closed_forms": sorted(act.closed_forms),
        "collinear": {k: v.to_json() for k, v in act.collinear.items()},
        "duals": {k: {kk: vv for kk, vv in d.items() if kk != "_sympy"} for k, d in duals.items()},
        "provenance": dict(act.provenance),
        "plugin": reg.origin.get(("activation", act.name)),
        "source": act.source,
    }
    if args.json:
        _print_json(record, out)
        return EXIT_OK
    w = out.write
    w(f"{act.name}: {act.description}\n")
    w(f"  expression   s(u)  = {act.expression}\n")
    w(f"  derivative   s'(u) = {act.derivative}\n")
    w(f"  holonomic    {'yes' if act.holonomic else 'no (quadrature methods only)'}\n")
    if act.homogeneity:
        hom = ", ".join(f"{k}: {'-' if v is None else v}" for k, v in act.homogeneity.items())
        w(f"  homogeneity  {hom}\n")
    w(f"  closed forms {', '.join(sorted(act.closed_forms)) or 'none'}\n")
    if record["plugin"]:
        w(f"  plugin       {record['plugin']}\n")
    for side, ops in act.annihilators.items():
        w(f"  annihilators of {side}: {'; '.join(ops)}\n")
    labels = {"ss": "E[s(u) s(v)]", "dsds": "E[s'(u) s'(v)]"}
    for key, d in duals.items():
        w(f"\ndual {key} = {labels.get(key, key)}: rank {d['rank']}\n")
        w(f"  standard monomials: {', '.join(d['standard_monomials'])}\n")
        if d["ideal"]:
            w("  ideal:\n")
            for g in d["ideal"]:
                w(f"    {g}\n")
        bp = ", ".join(f"{k} = {v}" for k, v in d["base_point"].items())
        w(f"  base point: {bp}\n")
        w("  initial values F(base point):\n")
        for m, v in zip(d["standard_monomials"], d["initial_values"], strict=True):
            w(f"    {m:<14} {v}\n")
        w("  Pfaffian matrices dF/dx = P(x) F:\n")
        for v, m in zip(d["variables"], d["_sympy"], strict=True):
            w(f"    P_{v} =\n")
            pretty = sympy.pretty(m, use_unicode=False, wrap_line=False)
            for line in pretty.splitlines():
                w(f"      {line}\n")
    if act.collinear:
        w("\ncollinear data (rho = +-1):\n")
        for k, v in act.collinear.items():
            w(f"  {k}: {json.dumps(v.to_json())}\n")
    w("\nprovenance:\n")
    for k, v in act.provenance.items():
        w(f"  {k}: {v}\n")
    if act.source:
        w(f"  file: {act.source}\n")
    return EXIT_OK


def _backend_infos() -> list[dict[str, Any]] | None:
    """Records of ``hgmntk.cas_bridge.backend.list_backends()``, or None if unavailable."""
    try:
        from .cas_bridge.backend import list_backends
    except ImportError:
        return None
    reg = _registry()
    try:
        infos = list_backends(backends=reg.backends)
    except TypeError:  # an older list_backends() without the backends argument
        infos = list_backends()
    out = []
    for info in infos:
        rec = info.as_dict() if hasattr(info, "as_dict") else dict(vars(info))
        rec["capabilities"] = list(rec.get("capabilities") or ())
        rec["plugin"] = reg.origin.get(("backend", rec.get("name")))
        out.append(rec)
    return out


def _print_backends(records: list[dict[str, Any]], out: TextIO, *, full: bool) -> None:
    rows = []
    for r in records:
        row = [r.get("name"), "yes" if r.get("usable") else "no", r.get("version") or "-"]
        if full:
            row += [",".join(r.get("capabilities") or ()) or "-", r.get("preference", "")]
        rows.append(row + [r.get("reason", "")])
    header = ["name", "usable", "version"]
    if full:
        header += ["capabilities", "preference"]
    _table(rows, header + ["reason"], out)


def cmd_plugins(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk plugins``: plugins with their hooks, then integrators and CAS backends."""
    from .plugin_manager import BUILTIN_PLUGINS, OPTIONAL_BUILTIN_PLUGINS

    reg = _registry()
    builtin = set(BUILTIN_PLUGINS) | set(OPTIONAL_BUILTIN_PLUGINS)
    plugins = []
    for p in reg.plugins():
        dist = p.get("distribution") or ("hgmntk (built-in)" if p["name"] in builtin else None)
        plugins.append({**p, "distribution": dist})
    integrators = [
        {
            "name": name,
            "description": integ.description,
            "exact": bool(integ.exact),
            "options": dict(integ.options),
            "plugin": reg.origin.get(("integrator", name)),
        }
        for name, integ in sorted(reg.integrators.items())
    ]
    backends = _backend_infos() if reg.backends else []
    if args.json:
        _print_json({"plugins": plugins, "integrators": integrators, "backends": backends}, out)
        return EXIT_OK
    print("plugins:", file=out)
    _table(
        [(p["name"], ", ".join(p["hooks"]) or "-", p["distribution"] or "-") for p in plugins],
        ("name", "hooks", "distribution"),
        out,
    )
    print("\nintegrators (--method):", file=out)
    _table(
        [
            (
                i["name"],
                "yes" if i["exact"] else "no",
                ", ".join(f"{k}={v}" for k, v in i["options"].items()) or "-",
                i["description"],
            )
            for i in integrators
        ],
        ("name", "exact", "options", "description"),
        out,
    )
    if backends:
        print("\nCAS backends (hgmntk derive --backend):", file=out)
        _print_backends(backends, out, full=False)
    return EXIT_OK


def cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk backends``: the CAS backends of the derivation engine."""
    records = _backend_infos()
    if records is None:
        raise CLIError(
            "the CAS backend layer (hgmntk.cas_bridge.backend) is not available in this build"
        )
    if args.json:
        _print_json(records, out)
        return EXIT_OK
    if not records:
        print("no CAS backends are registered", file=out)
        return EXIT_OK
    _print_backends(records, out, full=True)
    print(
        "\nBackends are tried in order of preference (highest first); set "
        "HGMNTK_CAS_BACKEND=name to prefer one.",
        file=out,
    )
    return EXIT_OK


def cmd_dual(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk dual``: one dual activation value."""
    from .dual_activation import dual

    options = _parse_options(args.option)
    value, error = dual(
        resolve_activation(args.activation, args.method),
        args.a,
        args.b,
        args.c,
        derivative=args.derivative,
        method=args.method,
        rtol=args.rtol,
        return_error=True,
        **options,
    )
    if args.error:
        print(f"{_fmt(value)} {float(error):.3g}", file=out)
    else:
        print(_fmt(value), file=out)
    return EXIT_OK


def cmd_kernel(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk kernel``: NNGP and NTK matrices into one .npz file."""
    from .deep_kernels import kernels

    target = _check_output(args.out, (".npz",), "--out")
    x1 = _read_inputs(args.x1, "--x1")
    x2 = None if args.x2 is None else _read_inputs(args.x2, "--x2")
    k = kernels(
        x1,
        x2,
        activation=resolve_activation(args.activation, args.method),
        depth=args.depth,
        w_std=args.w_std,
        b_std=args.b_std,
        method=args.method,
        rtol=args.rtol,
        **_parse_options(args.option),
    )
    _atomic_write(target, lambda fh: np.savez(fh, nngp=k.nngp, ntk=k.ntk))
    print(
        f"wrote {target}: nngp and ntk of shape {k.nngp.shape[0]}x{k.nngp.shape[1]} "
        f"({k.activation}, depth {k.depth}, method {k.method})",
        file=out,
    )
    return EXIT_OK


def cmd_regress(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk regress``: kernel (ridge) regression with the NTK or NNGP."""
    try:
        from .regression import KernelRegressor
    except ImportError as exc:
        raise CLIError(
            f"kernel regression (hgmntk.regression) is not available in this build: {exc}"
        ) from None
    pred_path = _check_output(args.out, (".npy", ".csv"), "--out")
    std_path = None
    if args.std_out is not None:
        std_path = _check_output(args.std_out, (".npy", ".csv"), "--std-out")
    x_train = _read_inputs(args.train_x, "--train-x")
    y_train = _read_targets(args.train_y, "--train-y")
    x_test = _read_inputs(args.test_x, "--test-x")
    if y_train.shape[0] != x_train.shape[0]:
        raise CLIError(
            f"--train-y has {y_train.shape[0]} rows but --train-x has {x_train.shape[0]}"
        )
    if args.ridge < 0 or not math.isfinite(args.ridge):
        raise CLIError(f"--ridge must be a finite number >= 0, got {args.ridge}")
    model = KernelRegressor(
        resolve_activation(args.activation, args.method),
        args.depth,
        w_std=args.w_std,
        b_std=args.b_std,
        kernel=args.kernel,
        ridge=args.ridge,
        method=args.method,
    ).fit(x_train, y_train)
    if std_path is not None:
        pred, std = model.predict(x_test, return_std=True)
    else:
        pred, std = model.predict(x_test), None
    _save_array(pred_path, np.asarray(pred))
    msg = f"wrote {pred_path}: predictions of shape {np.shape(pred)}"
    if std_path is not None:
        _save_array(std_path, np.asarray(std))
        msg += f"; {std_path}: standard deviations"
    print(msg, file=out)
    return EXIT_OK


class _Progress:
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


#: Covariances (a, b, c) at which ``hgmntk derive`` checks the derived systems.
VERIFY_POINTS = ((1.0, 1.5, 0.6), (0.7, 2.0, -0.9))


def quadrature_dual(fn: Callable[[np.ndarray], np.ndarray], a: float, b: float, c: float) -> float:
    """E[f(u) f(v)], (u, v) ~ N(0, [[a, c], [c, b]]), by adaptive quadrature in polar coordinates.

    With u = sqrt(a) r cos t, v = sqrt(b) r (rho cos t + sqrt(1 - rho^2) sin t) the kinks
    and jumps of rectified activations (at u = 0 or v = 0) lie on four rays; the angular
    integral is split there, so the integrand is smooth on each piece.
    """
    from scipy import integrate

    rho = c / math.sqrt(a * b)
    s = math.sqrt(max(0.0, 1.0 - rho * rho))
    sa, sb = math.sqrt(a), math.sqrt(b)
    t0 = math.atan2(-rho, s)
    rays = {-math.pi / 2, math.pi / 2, t0, t0 + math.pi if t0 < 0 else t0 - math.pi}
    edges = [-math.pi, *sorted(t for t in rays if -math.pi < t < math.pi), math.pi]

    def radial(t: float) -> float:
        ct, st = math.cos(t), math.sin(t)

        def g(r: float) -> float:
            u = np.array([sa * r * ct])
            v = np.array([sb * r * (rho * ct + s * st)])
            return float(fn(u)[0] * fn(v)[0]) * r * math.exp(-r * r / 2)

        return integrate.quad(g, 0, np.inf, epsabs=1e-13, epsrel=1e-10, limit=200)[0]

    total = sum(
        integrate.quad(radial, lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )
    return total / (2 * math.pi)


def verify_activation(activation, rtol: float = 1e-6) -> list[str]:
    """Compare the HGM values of a derived activation with quadrature; return what was checked.

    Raises :class:`~hgmntk.errors.DerivationError` on a mismatch.  Duals whose function holds
    a Dirac delta (no pointwise values) are not checked.
    """
    from .dual_activation import dual
    from .errors import DerivationError

    checked = []
    for key, side in (("ss", "s"), ("dsds", "ds")):
        fn = activation.numeric_functions.get(side)
        if fn is None or key not in activation.duals:
            continue
        for a, b, c in VERIFY_POINTS:
            expected = quadrature_dual(fn, a, b, c)
            value = float(dual(activation, a, b, c, derivative=key == "dsds", method="hgm"))
            if not math.isclose(value, expected, rel_tol=rtol, abs_tol=1e-9):
                raise DerivationError(
                    f"verification failed: the {key} dual at (a, b, c) = ({a}, {b}, {c}) is "
                    f"{_fmt(value)} by HGM but {_fmt(expected)} by quadrature; the activation "
                    "was not installed (pass --no-verify to install it anyway)"
                )
        checked.append(key)
    return checked


def cmd_derive(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk derive``: derive, verify and install (or package) a user activation."""
    if not _NAME_RE.match(args.name):
        raise CLIError(
            f"--name {args.name!r}: use a letter followed by letters, digits or '_' "
            "(it becomes a file and module name)"
        )
    if args.expression is None and not args.annihilator:
        raise CLIError("give an expression (e.g. 'Heaviside(u)*cos(u)') or --annihilator OPs")
    try:
        from .cas_bridge.derive import derive_activation
    except ImportError as exc:
        raise CLIError(
            f"the derivation engine is not available in this build (hgmntk.cas_bridge.derive: "
            f"{exc})"
        ) from None
    reg = _registry()
    out_dir = None if args.out is None else Path(args.out)
    if out_dir is None and args.name in reg.activations and not args.force:
        raise CLIError(
            f"an activation {args.name!r} is already registered (by plugin "
            f"{reg.origin.get(('activation', args.name))!r}); pass --force to replace it, or "
            "choose another --name"
        )
    if out_dir is not None:
        _check_tree_target(out_dir, args.force)
    annihilators: dict[str, list[str]] = {}
    if args.annihilator:
        annihilators["s"] = list(args.annihilator)
    if args.ds_annihilator:
        annihilators["ds"] = list(args.ds_annihilator)
    progress = _Progress(sys.stderr)
    t0 = time.perf_counter()
    activation = derive_activation(
        args.expression,
        name=args.name,
        annihilators=annihilators or None,
        backend=args.backend,
        progress=progress,
        description=args.description or "",
    )
    seconds = time.perf_counter() - t0
    verified = "not verified (--no-verify)"
    if not args.no_verify:
        try:
            checked = verify_activation(activation)
        except HgmntkError:
            raise
        except Exception as exc:  # a numerical failure outside the derived data
            verified = "not verified"
            warnings.warn(
                f"could not verify the derived systems ({type(exc).__name__}: {exc})",
                stacklevel=1,
            )
        else:
            verified = (
                f"{', '.join(checked)} verified against quadrature"
                if checked
                else "no pointwise values to verify against"
            )
    ranks = ", ".join(f"{k} rank {s.rank}" for k, s in activation.duals.items())
    if out_dir is None:
        from .userdata import install_activation

        path = install_activation(activation)
        print(
            f"derived {args.name!r} ({ranks}) in {seconds:.1f}s, {verified}; installed as "
            f"{path}\n"
            f"use it as hgmntk.dual({args.name!r}, a, b, c) or "
            f"'hgmntk dual {args.name} --a 1 --b 1 --c 0.5'",
            file=out,
        )
    else:
        from .cas_bridge.plugin_template import write_plugin_package

        _write_tree(out_dir, lambda tmp: write_plugin_package(activation, tmp), args.force)
        print(
            f"derived {args.name!r} ({ranks}) in {seconds:.1f}s, {verified}; wrote the plugin "
            f"package {out_dir}\ninstall it with 'pip install {out_dir}'",
            file=out,
        )
    return EXIT_OK


def _check_tree_target(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise CLIError(f"--out {dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise CLIError(f"--out {dest} exists and is not empty; pass --force to write into it")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"--out {dest}: folder {parent} does not exist")


def _write_tree(dest: Path, write: Callable[[Path], object], force: bool) -> None:
    """Let ``write`` fill a temporary sibling folder, then move it into ``dest``.

    A missing ``dest`` is renamed into place whole; into an existing one (``force``) each
    file is moved with an atomic rename, and files of other names are left alone.
    """
    _check_tree_target(dest, force)
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


def cmd_new_plugin(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk new-plugin``: scaffold a third-party activation plugin package."""
    from dataclasses import replace

    if not _NAME_RE.match(args.name):
        raise CLIError(
            f"plugin name {args.name!r}: use a letter followed by letters, digits or '_' "
            "(it becomes the activation, entry-point and module name)"
        )
    try:
        from .cas_bridge.plugin_template import write_plugin_package
    except ImportError as exc:
        raise CLIError(f"the plugin template is not available in this build: {exc}") from None
    template = resolve_activation(args.start_from)
    if not template.holonomic or not {"ss", "dsds"} <= set(template.duals):
        raise CLIError(
            f"--from {args.start_from!r}: the starting activation needs Pfaffian systems for "
            "both duals (pick a holonomic one, e.g. relu)"
        )
    dest = Path(args.out)
    _check_tree_target(dest, args.force)
    activation = replace(
        template,
        name=args.name,
        description=args.description or f"{args.name} (starter copy of {template.name})",
        closed_forms={},
        provenance={
            **template.provenance,
            "template": f"copied from {template.name!r} by "
            f"'hgmntk new-plugin'; replace with 'hgmntk derive EXPR --name {args.name} "
            "--out DIR --force'",
        },
        source="",
    )
    _write_tree(dest, lambda tmp: write_plugin_package(activation, tmp), args.force)
    print(
        f"wrote the plugin package {dest} (activation {args.name!r}, starting from the data of "
        f"{template.name!r})\n"
        "next steps:\n"
        f"  hgmntk derive 'YOUR EXPRESSION' --name {args.name} --out {dest} --force\n"
        f"  pip install -e {dest}\n"
        f"  pytest {dest / 'tests'}",
        file=out,
    )
    return EXIT_OK


# =============================================================================== parser
def _add_method(p: argparse.ArgumentParser) -> None:
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


def _add_network(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--activation",
        required=True,
        metavar="A",
        help="registered activation name or SymPy expression in u",
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hgmntk`` (all subcommands)."""
    from . import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        formatter_class=fmt,
        description="Exact NNGP/NTK kernels of infinitely wide networks for holonomic "
        "activations, by the holonomic gradient method.",
        epilog="examples:\n"
        "  hgmntk activations\n"
        "  hgmntk dual relu --a 1 --b 2 --c 0.5\n"
        "  hgmntk kernel --x1 x.csv --activation relu --depth 3 --out k.npz\n"
        "  hgmntk derive 'Heaviside(u)*cos(u)' --name rcos\n\n"
        "'hgmntk COMMAND --help' shows the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # activations [show NAME]
    p = sub.add_parser(
        "activations",
        formatter_class=fmt,
        help="list registered activations",
        description="List the registered activations: rank of the Pfaffian systems of the "
        "duals E[s(u)s(v)] (ss) and E[s'(u)s'(v)] (dsds), degree of positive homogeneity, "
        "whether a closed form is known and whether the activation is holonomic.",
        epilog="examples:\n"
        "  hgmntk activations\n"
        "  hgmntk activations --json\n"
        "  hgmntk activations show relu\n"
        "  hgmntk activations show step --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=cmd_activations)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ps = actions.add_parser(
        "show",
        formatter_class=fmt,
        help="details of one activation",
        description="Show an activation: expression, derivative, annihilators and, for each "
        "dual, the rank, standard monomials, ideal, base point, initial values and the "
        "Pfaffian matrices P_x with dF/dx = P_x F, and where the data come from.",
        epilog="examples:\n"
        "  hgmntk activations show relu\n"
        "  hgmntk activations show relu --json | python -m json.tool",
    )
    ps.add_argument("name", metavar="NAME", help="activation name (or expression in u)")
    ps.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable JSON output",
    )
    ps.set_defaults(func=cmd_activations)

    # plugins
    p = sub.add_parser(
        "plugins",
        formatter_class=fmt,
        help="list loaded plugins, integrators, CAS backends",
        description="List the loaded hgmntk plugins with the hooks each implements and the "
        "distribution it comes from, then the integrators (--method values) and the CAS "
        "backends.  Set HGMNTK_DISABLE_PLUGINS=name1,name2 to block plugins.",
        epilog="examples:\n  hgmntk plugins\n  hgmntk plugins --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=cmd_plugins)

    # backends
    p = sub.add_parser(
        "backends",
        formatter_class=fmt,
        help="list CAS backends of the derivation engine",
        description="List the computer-algebra backends 'hgmntk derive' can use: whether each "
        "is usable here (and why not), its version, the pipeline steps it offers and its "
        "preference.  HGMNTK_HIDE_CAS=name hides a backend, HGMNTK_CAS_BACKEND=name prefers one.",
        epilog="examples:\n  hgmntk backends\n  HGMNTK_HIDE_CAS=singular hgmntk backends --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=cmd_backends)

    # dual
    p = sub.add_parser(
        "dual",
        formatter_class=fmt,
        help="evaluate one dual activation value",
        description="Print E[s(u) s(v)] (or E[s'(u) s'(v)] with --derivative) for (u, v) ~ "
        "N(0, [[a, c], [c, b]]) with 17 significant digits; with --error also the estimated "
        "absolute error, on the same line after a space.",
        epilog="examples:\n"
        "  hgmntk dual relu --a 1 --b 2 --c 0.5\n"
        "  hgmntk dual relu --a 1 --b 1 --c 0.3 --derivative --method hgm --error\n"
        "  hgmntk dual 'Heaviside(u)*cos(u)' --a 1 --b 1 --c 0.5\n"
        "  hgmntk dual sigmoid --a 1 --b 1 --c 0.5 --method gauss-hermite -o degree=120\n"
        "  hgmntk dual 'u*tanh(log(1 + exp(u)))' --a 1 --b 1 --c 0.5 --method gauss-hermite",
    )
    p.add_argument(
        "activation",
        metavar="ACTIVATION",
        help="registered name (see 'hgmntk activations') or SymPy expression in u",
    )
    p.add_argument("--a", type=float, required=True, help="variance of u")
    p.add_argument("--b", type=float, required=True, help="variance of v")
    p.add_argument("--c", type=float, required=True, help="covariance of u and v")
    p.add_argument("--derivative", action="store_true", help="dual of the derivative s'")
    p.add_argument("--error", action="store_true", help="also print the error estimate")
    _add_method(p)
    p.set_defaults(func=cmd_dual)

    # kernel
    p = sub.add_parser(
        "kernel",
        formatter_class=fmt,
        help="NNGP and NTK matrices of a deep network",
        description="Compute the NNGP and NTK matrices of a fully connected network of depth L "
        "at infinite width (neural-tangents' NTK parameterization) between the rows of X1 "
        "and X2 (X1 itself if --x2 is not given), and write them to one .npz archive with the "
        "arrays 'nngp' and 'ntk'.\n\n"
        "Inputs are .npy arrays or comma-separated text (.csv) of shape (n_points, "
        "n_features); a non-numeric first line of a CSV is a header and skipped.",
        epilog="examples:\n"
        "  hgmntk kernel --x1 x.csv --activation relu --depth 3 --out k.npz\n"
        "  hgmntk kernel --x1 train.npy --x2 test.npy --activation step --depth 2 \\\n"
        "      --w-std 1.4 --b-std 0.1 --out k.npz\n"
        "  python -c \"import numpy as np; k = np.load('k.npz'); print(k['ntk'])\"",
    )
    p.add_argument("--x1", required=True, metavar="FILE", help="inputs (.npy or .csv)")
    p.add_argument("--x2", metavar="FILE", help="second inputs (default: X1)")
    _add_network(p)
    _add_method(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT.npz",
        help="output archive with arrays nngp and ntk, shape (n1, n2)",
    )
    p.set_defaults(func=cmd_kernel)

    # regress
    p = sub.add_parser(
        "regress",
        formatter_class=fmt,
        help="kernel regression with the NTK or NNGP",
        description="Fit kernel (ridge) regression with the infinite-width NTK or NNGP on "
        "(train-x, train-y) and write the predictions at test-x (.npy, or .csv text by "
        "suffix); --std-out also writes the predictive standard deviations.",
        epilog="examples:\n"
        "  hgmntk regress --train-x x.csv --train-y y.csv --test-x xt.csv \\\n"
        "      --activation relu --depth 2 --out pred.npy\n"
        "  hgmntk regress --train-x x.npy --train-y y.npy --test-x xt.npy --activation erf \\\n"
        "      --depth 3 --kernel nngp --ridge 1e-6 --out pred.csv --std-out std.csv",
    )
    p.add_argument("--train-x", required=True, metavar="FILE", help="training inputs")
    p.add_argument("--train-y", required=True, metavar="FILE", help="training targets")
    p.add_argument("--test-x", required=True, metavar="FILE", help="test inputs")
    _add_network(p)
    p.add_argument(
        "--kernel",
        choices=("ntk", "nngp"),
        default="ntk",
        help="kernel to regress with (default: ntk)",
    )
    p.add_argument(
        "--ridge",
        type=float,
        default=1e-10,
        metavar="R",
        help="ridge (diagonal regularisation, default: 1e-10)",
    )
    p.add_argument(
        "--method",
        default="auto",
        metavar="M",
        help="integrator (default: auto; see 'hgmntk plugins')",
    )
    p.add_argument("--out", required=True, metavar="PRED.npy", help="predictions (.npy/.csv)")
    p.add_argument("--std-out", metavar="STD.npy", help="predictive std (.npy/.csv)")
    p.set_defaults(func=cmd_regress)

    # derive
    p = sub.add_parser(
        "derive",
        formatter_class=fmt,
        help="derive and install a new activation",
        description="Derive the Pfaffian systems of the duals of a holonomic activation s(u) "
        "(a SymPy expression in u), verify them and install the activation for every later "
        "hgmntk process (in $HGMNTK_DATA_DIR, default ~/.local/share/hgmntk), or with --out "
        "write a plugin package to publish instead.  Instead of an expression, annihilators "
        "of s (operators in u and d = d/du, e.g. 'u*d - 1') may be given for a registered "
        "NAME.  Steps and timings go to stderr when the derivation takes over a second.",
        epilog="examples:\n"
        "  hgmntk derive 'Heaviside(u)*cos(u)' --name rcos\n"
        "  hgmntk derive 'Max(u, 0)**2' --name relu2 --backend singular\n"
        "  hgmntk derive 'Heaviside(u)*u' --name myrelu --annihilator 'u*d - 1'\n"
        "  hgmntk derive 'erf(u)' --name myerf --out hgmntk-myerf/",
    )
    p.add_argument(
        "expression",
        nargs="?",
        metavar="EXPR",
        help="activation s(u) in SymPy syntax, e.g. 'Heaviside(u)*sin(u)'",
    )
    p.add_argument("--name", required=True, help="name of the new activation")
    p.add_argument(
        "--annihilator",
        action="append",
        metavar="OP",
        help="annihilator of s, normally ordered in u and d (repeatable)",
    )
    p.add_argument(
        "--ds-annihilator",
        action="append",
        metavar="OP",
        help="annihilator of s' (repeatable; default: derived)",
    )
    p.add_argument("--description", help="one line describing the activation")
    p.add_argument(
        "--backend",
        default="auto",
        help="CAS backend: auto, sympy, singular, macaulay2, asir, or another "
        "registered one (see 'hgmntk backends'; default: auto)",
    )
    p.add_argument("--out", metavar="DIR", help="write a plugin package here instead of installing")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an activation of the same name / write into a non-empty DIR",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="skip comparing HGM values with quadrature at two covariances",
    )
    p.set_defaults(func=cmd_derive)

    # new-plugin
    p = sub.add_parser(
        "new-plugin",
        formatter_class=fmt,
        help="scaffold an activation plugin package",
        description="Write a third-party activation plugin package: pyproject.toml with "
        "[project.entry-points.hgmntk], a module whose @hookimpl "
        "hgmntk_register_activations(register) loads the activation file shipped as package "
        "data, a README and a starter test that checks the plugin is discovered.  The "
        "activation file starts as a copy of --from (default relu) under the new NAME; "
        "replace it with 'hgmntk derive EXPR --name NAME --out DIR --force'.",
        epilog="examples:\n"
        "  hgmntk new-plugin mish_like --out hgmntk-mish-like\n"
        "  cd hgmntk-mish-like && pip install -e . && pytest",
    )
    p.add_argument("name", metavar="NAME", help="activation (and entry point) name")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to create")
    p.add_argument(
        "--from",
        dest="start_from",
        default="relu",
        metavar="ACTIVATION",
        help="activation whose data the package starts from (default: relu)",
    )
    p.add_argument("--description", help="one line describing the activation")
    p.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    p.set_defaults(func=cmd_new_plugin)
    return parser


# =============================================================================== main
def _error(message: str, err: TextIO) -> int:
    print(f"{PROG}: error: {message}", file=err)
    return EXIT_ERROR


def _internal_error(exc: Exception, err: TextIO) -> int:
    """Report an unexpected exception in one line (where it was raised) and return 1."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    roots = {Path(__file__).resolve().parent}
    for modname in ("hgmntk.plugins", "hgmntk.cas_bridge"):
        module = sys.modules.get(modname)
        if module is not None and getattr(module, "__file__", None):
            roots.add(Path(module.__file__).resolve().parent)
    ours = [
        f
        for f in frames
        if any(r in Path(f.filename).resolve().parents for r in roots)
        and Path(f.filename).resolve() != Path(__file__).resolve()
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 on success, 2 for a user mistake (``hgmntk: error: ...`` on stderr), 1 for an
    internal error, 130 when interrupted.

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
        except Exception as exc:  # a bug in hgmntk or a plugin, not a user mistake
            if os.environ.get("HGMNTK_TRACEBACK"):
                raise
            return _internal_error(exc, err)


__all__ = ["CLIError", "build_parser", "main", "read_matrix"]


if __name__ == "__main__":  # python -m hgmntk.cli
    sys.exit(main())
