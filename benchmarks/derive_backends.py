"""Time the restriction step per activation and per usable CAS backend, in one run.

    python benchmarks/derive_backends.py                   # all but GeLU
    python benchmarks/derive_backends.py --gelu --json out.json
    python benchmarks/derive_backends.py -a relu sin -b singular macaulay2

For each (activation, backend) it reports the wall time of ``restriction_ideal`` (a fresh
CAS process per call, start-up included), the number of generators returned and the
holonomic rank (standard monomials of the block-order Groebner basis, computed by the same
backend when it offers the "groebner" step, else by Singular if usable).  For the pure-Python
engine the time is that of the whole derivation (``derive_pfaffian``: ideal and Pfaffian)
and the rank is the engine's own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from hgmntk.cas_bridge.backend import block_standard_monomials
from hgmntk.cas_bridge.backends import BUILTIN_BACKENDS
from hgmntk.cas_bridge.testing import ACTIVATIONS
from hgmntk.cas_bridge.weyl import UD, parse_operator
from hgmntk.errors import HgmntkError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-a", "--activations", nargs="*", default=None)
    parser.add_argument("-b", "--backends", nargs="*", default=None)
    parser.add_argument("--gelu", action="store_true", help="include GeLU (about 1 min/CAS)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    names = args.activations or [a for a in ACTIVATIONS if a != "gelu" or args.gelu]
    backends = [b for b in BUILTIN_BACKENDS if args.backends is None or b.name in args.backends]
    usable = []
    for b in backends:
        status = b.probe()
        print(
            f"# {b.name}: {'usable' if status.usable else 'unusable'} ({status.reason})"
            f"{' version ' + status.version if status.version else ''}"
        )
        if status.usable:
            usable.append(b)
    ranker = {b.name: b for b in usable}.get("singular")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}"
    )
    print("| activation | backend | seconds | generators | rank |")
    print("|---|---|---|---|---|")
    rows = []
    for act in names:
        ann = [parse_operator(UD, ACTIVATIONS[act][0])]
        for b in usable:
            t0 = time.perf_counter()
            rank = None
            try:
                if hasattr(b, "derive"):  # the pure-Python engine: the whole derivation
                    system = b.derive(ann, ann, timeout=args.timeout)
                    ideal, rank = system.ideal, system.rank
                else:
                    ideal = b.restriction_ideal(ann, ann, timeout=args.timeout)
            except HgmntkError as exc:
                row = {"activation": act, "backend": b.name, "error": str(exc).splitlines()[0]}
                print(f"| {act} | {b.name} | failed: {row['error']} | | |")
                rows.append(row)
                continue
            seconds = time.perf_counter() - t0
            gb_backend = b if "groebner" in b.capabilities else ranker
            if rank is None and gb_backend is not None:
                gb = gb_backend.groebner_basis(ideal, order="block", timeout=args.timeout)
                rank = len(block_standard_monomials(gb))
            row = {
                "activation": act,
                "backend": b.name,
                "seconds": round(seconds, 3),
                "generators": len(ideal),
                "rank": rank,
            }
            rows.append(row)
            print(f"| {act} | {b.name} | {seconds:.2f} | {len(ideal)} | {rank} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
