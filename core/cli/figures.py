"""``hgmntk plot``: the figures of :mod:`hgmntk.plot` (matplotlib, extra ``hgmntk[plot]``)."""

from __future__ import annotations

import argparse
from typing import TextIO

from .common import EXIT_OK, FORMATTER, atomic_write, check_output_path

#: KIND: (default activations, one line of help)
KINDS = {
    "duals": ("relu erf gelu resin", "E[s s] and E[s' s'] against rho, several variances"),
    "regression": ("relu gelu erf", "1-D regression: NNGP and NTK means, +-2 std bands"),
    "hermite": ("relu gelu resin elu erf", "Hermite coefficients |h_n| against n, log-log"),
    "finite-width": ("relu erf resin", "distance of finite-width kernels to the limit"),
}


def add_plot_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk plot``."""
    kinds = "\n".join(f"  {k:<13} {v[1]} (default: {v[0]})" for k, v in KINDS.items())
    p = sub.add_parser(
        "plot",
        formatter_class=FORMATTER,
        help="draw a figure into an image file",
        description="Draw one figure and write it to OUT (PNG, SVG or PDF by its suffix; "
        "1000 x 450 pixels for PNG). Needs matplotlib: pip install 'hgmntk[plot]'.\n\n"
        f"kinds:\n{kinds}",
        epilog="examples:\n"
        "  hgmntk plot duals --out duals.png\n"
        "  hgmntk plot regression --activations relu gelu --out regression.png\n"
        "  hgmntk plot hermite --n 500 --out hermite.png\n"
        "  hgmntk plot finite-width --activations relu erf --out width.png",
    )
    p.add_argument("kind", choices=sorted(KINDS), metavar="KIND",
                   help=f"one of: {', '.join(KINDS)}")
    p.add_argument("--out", required=True, metavar="OUT", help="image file (.png, .svg, .pdf)")
    p.add_argument("--activations", nargs="+", metavar="A",
                   help="activations to draw (names, family members or expressions)")
    p.add_argument("--n", type=int, default=200, metavar="N",
                   help="largest Hermite index (hermite; default 200)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk plot``: one figure into one file."""
    from .. import plot

    target = check_output_path(args.out, (".png", ".svg", ".pdf"), "--out")
    activations = args.activations or KINDS[args.kind][0].split()
    draw = plot.KINDS[args.kind]
    fig = draw(activations, n_max=args.n) if args.kind == "hermite" else draw(activations)
    atomic_write(target, lambda fh: fig.savefig(fh, format=target.suffix[1:].lower(),
                                                dpi=plot.DPI))
    print(f"wrote {target}: {args.kind} of {', '.join(activations)}", file=out)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``plot`` to the subcommands."""
    add_plot_parser(sub)
