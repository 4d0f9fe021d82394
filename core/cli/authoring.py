"""``hgmntk derive``, ``hgmntk backends`` and ``hgmntk new-plugin``: making activations.

Each command's parser (``add_*_parser``) sits next to its handler (``cmd_*``);
:func:`register` adds them all to the ``hgmntk`` parser.  The plugin package written by
``derive --out`` and ``new-plugin`` comes from :mod:`hgmntk.cli.plugin_template`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import HgmntkError
from .common import (
    EXIT_OK,
    FORMATTER,
    NAME_RE,
    CLIError,
    Progress,
    check_tree_target,
    format_float,
    print_json,
    print_table,
    registry,
    resolve_activation,
    write_tree,
)


def add_derive_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk derive``."""
    p = sub.add_parser(
        "derive",
        formatter_class=FORMATTER,
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
        help="activation s(u) in SymPy syntax, or a family member such as "
        "'leaky_relu(alpha=0.2)' (its expression), e.g. 'Heaviside(u)*sin(u)'",
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
        "registered one (see 'hgmntk backends'; default: auto = the pure-Python engine, "
        "or the backend HGMNTK_CAS_BACKEND names)",
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
    from ..dual_activation import dual
    from ..errors import DerivationError

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
                    f"{format_float(value)} by HGM but {format_float(expected)} by quadrature; "
                    "the activation was not installed (pass --no-verify to install it anyway)"
                )
        checked.append(key)
    return checked


def cmd_derive(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk derive``: derive, verify and install (or package) a user activation."""
    if not NAME_RE.match(args.name):
        raise CLIError(
            f"--name {args.name!r}: use a letter followed by letters, digits or '_' "
            "(it becomes a file and module name)"
        )
    if args.expression is None and not args.annihilator:
        raise CLIError("give an expression (e.g. 'Heaviside(u)*cos(u)') or --annihilator OPs")
    try:
        from ..cas_bridge.derive import derive_activation
    except ImportError as exc:
        raise CLIError(
            f"the derivation engine is not available in this build (hgmntk.cas_bridge.derive: "
            f"{exc})"
        ) from None
    reg = registry()
    out_dir = None if args.out is None else Path(args.out)
    if out_dir is None and args.name in reg.activations and not args.force:
        raise CLIError(
            f"an activation {args.name!r} is already registered (by plugin "
            f"{reg.origin.get(('activation', args.name))!r}); pass --force to replace it, or "
            "choose another --name"
        )
    if out_dir is not None:
        check_tree_target(out_dir, args.force)
    annihilators: dict[str, list[str]] = {}
    if args.annihilator:
        annihilators["s"] = list(args.annihilator)
    if args.ds_annihilator:
        annihilators["ds"] = list(args.ds_annihilator)
    expression, description = args.expression, args.description or ""
    if expression is not None:
        from ..dual_activation import family_member

        member = family_member(expression)  # "leaky_relu(alpha=0.2)": its expression
        if member is not None:
            expression = member.expression
            description = description or f"{member.name}: {member.description}"
    progress = Progress(sys.stderr)
    t0 = time.perf_counter()
    activation = derive_activation(
        expression,
        name=args.name,
        annihilators=annihilators or None,
        backend=args.backend,
        progress=progress,
        description=description,
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
        from ..userdata import install_activation

        path = install_activation(activation)
        print(
            f"derived {args.name!r} ({ranks}) in {seconds:.1f}s, {verified}; installed as "
            f"{path}\n"
            f"use it as hgmntk.dual({args.name!r}, a, b, c) or "
            f"'hgmntk dual {args.name} --a 1 --b 1 --c 0.5'",
            file=out,
        )
    else:
        from .plugin_template import write_plugin_package

        write_tree(out_dir, lambda tmp: write_plugin_package(activation, tmp), args.force)
        print(
            f"derived {args.name!r} ({ranks}) in {seconds:.1f}s, {verified}; wrote the plugin "
            f"package {out_dir}\ninstall it with 'pip install {out_dir}'",
            file=out,
        )
    return EXIT_OK



def add_backends_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk backends``."""
    p = sub.add_parser(
        "backends",
        formatter_class=FORMATTER,
        help="list CAS backends of the derivation engine",
        description="List the computer-algebra backends 'hgmntk derive --backend NAME' can "
        "use: whether each is usable here (and why not), its version, the pipeline steps it "
        "offers and its preference (the listing order).  'derive' uses the pure-Python "
        "engine unless told otherwise: --backend NAME, or HGMNTK_CAS_BACKEND=NAME for the "
        "default 'auto'.  HGMNTK_HIDE_CAS=name hides a backend.",
        epilog="examples:\n  hgmntk backends\n  HGMNTK_HIDE_CAS=singular hgmntk backends --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=cmd_backends)


def _backend_infos() -> list[dict[str, Any]] | None:
    """Records of ``hgmntk.cas_bridge.backend.list_backends()``, or None if unavailable."""
    try:
        from ..cas_bridge.backend import list_backends
    except ImportError:
        return None
    reg = registry()
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
    print_table(rows, header + ["reason"], out)



def cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk backends``: the CAS backends of the derivation engine."""
    records = _backend_infos()
    if records is None:
        raise CLIError(
            "the CAS backend layer (hgmntk.cas_bridge.backend) is not available in this build"
        )
    if args.json:
        print_json(records, out)
        return EXIT_OK
    if not records:
        print("no CAS backends are registered", file=out)
        return EXIT_OK
    _print_backends(records, out, full=True)
    print(
        "\n'hgmntk derive' uses the pure-Python engine (sympy) unless told otherwise: "
        "--backend NAME for one derivation, HGMNTK_CAS_BACKEND=NAME for every derivation "
        "with the default --backend auto.",
        file=out,
    )
    return EXIT_OK



def add_new_plugin_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk new-plugin``."""
    p = sub.add_parser(
        "new-plugin",
        formatter_class=FORMATTER,
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


def cmd_new_plugin(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk new-plugin``: scaffold a third-party activation plugin package."""
    from dataclasses import replace

    if not NAME_RE.match(args.name):
        raise CLIError(
            f"plugin name {args.name!r}: use a letter followed by letters, digits or '_' "
            "(it becomes the activation, entry-point and module name)"
        )
    try:
        from .plugin_template import write_plugin_package
    except ImportError as exc:
        raise CLIError(f"the plugin template is not available in this build: {exc}") from None
    template = resolve_activation(args.start_from)
    if not template.holonomic or not {"ss", "dsds"} <= set(template.duals):
        raise CLIError(
            f"--from {args.start_from!r}: the starting activation needs Pfaffian systems for "
            "both duals (pick a holonomic one, e.g. relu)"
        )
    dest = Path(args.out)
    check_tree_target(dest, args.force)
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
    write_tree(dest, lambda tmp: write_plugin_package(activation, tmp), args.force)
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



def register(sub: argparse._SubParsersAction) -> None:
    """Add ``backends``, ``derive`` and ``new-plugin`` to the subcommands."""
    add_backends_parser(sub)
    add_derive_parser(sub)
    add_new_plugin_parser(sub)
