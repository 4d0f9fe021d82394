"""``hgmntk activations [show NAME]`` and ``hgmntk plugins``: what is registered.

Each command's parser (``add_*_parser``) sits next to its handler (``cmd_*``);
:func:`register` adds them all to the ``hgmntk`` parser.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from . import system_text
from .authoring import _backend_infos, _print_backends
from .common import (
    EXIT_OK,
    FORMATTER,
    print_json,
    print_table,
    registry,
    resolve_activation,
)


def add_activations_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk activations``."""
    p = sub.add_parser(
        "activations",
        formatter_class=FORMATTER,
        help="list registered activations",
        description="List the registered activations: rank of the Pfaffian systems of the "
        "duals E[s(u)s(v)] (ss) and E[s'(u)s'(v)] (dsds), degree of positive homogeneity, "
        "whether a closed form is known and whether the activation is holonomic.",
        epilog="examples:\n"
        "  hgmntk activations\n"
        "  hgmntk activations --json\n"
        "  hgmntk activations show relu\n"
        "  hgmntk activations show step --json\n"
        "  hgmntk activations families",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=cmd_activations)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ps = actions.add_parser(
        "show",
        formatter_class=FORMATTER,
        help="details of one activation",
        description="Show an activation: expression, derivative, annihilators and, for each "
        "dual, the rank, standard monomials, ideal, base point, initial values and the "
        "Pfaffian matrices P_x with dF/dx = P_x F (numerators over one factored "
        "denominator, as stored), and where the data come from.  Ideal generators and "
        "factors longer than 400 characters are cut, matrices longer than 2000 summarised "
        "by their sizes, unless --full is given (gelu's full text is about 3 MB: redirect "
        "it to a file).",
        epilog="examples:\n"
        "  hgmntk activations show relu\n"
        "  hgmntk activations show gelu --full > gelu.txt\n"
        "  hgmntk activations show relu --json --full | python -m json.tool",
    )
    ps.add_argument("name", metavar="NAME",
                    help="activation name, family member ('erf(a=0.5)') or expression in u")
    ps.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable JSON output (sizes only; with --full also the ideal, the "
        "denominator factors and every matrix entry)",
    )
    ps.add_argument(
        "--full",
        action="store_true",
        help="print every ideal generator and every matrix entry, however long",
    )
    ps.set_defaults(func=cmd_activations)
    pf = actions.add_parser(
        "families",
        formatter_class=FORMATTER,
        help="activation families with parameters (neural-tangents' stax names)",
        description="List the activation families: how to write a member (as text for "
        "--activation, or hgmntk.act.NAME(...) in Python), neural-tangents' name, and where "
        "the hgm method's Pfaffian systems come from.",
        epilog="examples:\n"
        "  hgmntk activations families\n"
        "  hgmntk dual 'leaky_relu(alpha=0.2)' --a 1 --b 2 --c 0.5\n"
        "  hgmntk activations show 'erf(a=0.5, b=2.0)'",
    )
    pf.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                    help="machine-readable JSON output")
    pf.set_defaults(func=cmd_activations)


def cmd_activations_families(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk activations families``: the registered families."""
    reg = registry()
    records = [
        {"text": f.signature(), "stax": f.stax, "description": f.description,
         "systems": f.systems, "plugin": reg.origin.get(("family", name))}
        for name, f in sorted(reg.families.items())
    ]
    if getattr(args, "json", False):
        print_json(records, out)
        return EXIT_OK
    rows = [(r["text"], r["stax"] or "-", r["description"], r["systems"]) for r in records]
    print_table(rows, ("family", "stax", "s(u)", "hgm systems"), out)
    return EXIT_OK


def cmd_activations(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk activations``: table (or JSON) of registered activations."""
    if getattr(args, "action", None) == "show":
        return cmd_activations_show(args, out)
    if getattr(args, "action", None) == "families":
        return cmd_activations_families(args, out)
    reg = registry()
    records = []
    for name in sorted(reg.activations):
        act = reg.activations[name]
        records.append(
            {
                "name": name,
                "rank": {k: act.dual_rank(k) for k in act.duals},
                "homogeneity": act.homogeneity.get("s"),
                "closed_form": sorted(act.closed_forms),
                "holonomic": act.holonomic,
                "description": act.description,
                "plugin": reg.origin.get(("activation", name)),
            }
        )
    if args.json:
        print_json(records, out)
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
    print_table(
        rows, ("name", "rank ss", "rank dsds", "homog.", "closed", "holonomic", "description"), out
    )
    return EXIT_OK


def _dual_record(system: dict, full: bool) -> dict[str, Any]:
    """The JSON record of one dual: its shape and sizes; the ideal and matrices if ``full``."""
    variables = system["variables"]
    record: dict[str, Any] = {
        "pair": list(system.get("pair", ("s", "s"))),
        "variables": list(variables),
        "rank": len(system["standard_monomials"]),
        "standard_monomials": [
            system_text.monomial(m, variables) for m in system["standard_monomials"]
        ],
        "ideal_generators": len(system.get("ideal", [])),
        "base_point": dict(zip(variables, system["base_point"], strict=True)),
        "initial_values": list(system["initial_values"]),
        "sizes": system_text.summary(system),
    }
    if full:
        names = system_text.factor_names(system)
        record["ideal"] = list(system.get("ideal", []))
        record["factors"] = {
            n: system_text.polynomial(f, variables)
            for n, f in zip(names, system.get("factors", []), strict=True)
        }
        record["pfaffian"] = {
            v: {
                "denominator": system_text.denominator(system["pfaffian"][i], names),
                "numerators": system_text.matrix_rows(system, i),
            }
            for i, v in enumerate(variables)
        }
    return record


def cmd_activations_show(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk activations show NAME``: what hgmntk knows about one activation.

    A summary by default (large ideals and matrices by their sizes); ``--full`` prints
    every generator and every matrix entry.  Reads the stored JSON: nothing is parsed into
    fractions or SymPy, so even gelu's 2.6 MB of systems show at once.
    """
    act = resolve_activation(args.name)
    reg = registry()
    full = bool(getattr(args, "full", False))
    systems = {k: act.dual_json(k) for k in act.duals}
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
        "duals": {},  # filled for --json only: the text below sizes each system itself
        "provenance": dict(act.provenance),
        "plugin": reg.origin.get(("activation", act.name)),
        "source": act.source,
    }
    if args.json:
        record["duals"] = {k: _dual_record(s, full) for k, s in systems.items()}
        print_json(record, out)
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
    for key, system in systems.items():
        rank = len(system["standard_monomials"])
        w(f"\ndual {key} = {labels.get(key, key)}: rank {rank}\n")
        system_text.write_system(system, w, full=full)
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



def add_plugins_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk plugins``."""
    p = sub.add_parser(
        "plugins",
        formatter_class=FORMATTER,
        help="list loaded plugins, integrators, CAS backends",
        description="List the loaded hgmntk plugins with the hooks each implements and the "
        "distribution it comes from, then the integrators (--method values) and the CAS "
        "backends.  Set HGMNTK_DISABLE_PLUGINS=name1,name2 to block plugins.",
        epilog="examples:\n  hgmntk plugins\n  hgmntk plugins --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=cmd_plugins)


def cmd_plugins(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk plugins``: plugins with their hooks, then integrators and CAS backends."""
    from ..plugin_manager import BUILTIN_PLUGINS, OPTIONAL_BUILTIN_PLUGINS

    reg = registry()
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
        print_json({"plugins": plugins, "integrators": integrators, "backends": backends}, out)
        return EXIT_OK
    print("plugins:", file=out)
    print_table(
        [(p["name"], ", ".join(p["hooks"]) or "-", p["distribution"] or "-") for p in plugins],
        ("name", "hooks", "distribution"),
        out,
    )
    print("\nintegrators (--method):", file=out)
    print_table(
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



def register(sub: argparse._SubParsersAction) -> None:
    """Add ``activations`` and ``plugins`` to the subcommands."""
    add_activations_parser(sub)
    add_plugins_parser(sub)
