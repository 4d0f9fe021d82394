"""Time the derivation of each activation's Pfaffian system by every usable backend, in one run.

    python benchmarks/derive_backends.py                   # all but GeLU
    python benchmarks/derive_backends.py --gelu --json out.json
    python benchmarks/derive_backends.py -a relu sin -b singular asir

The derivation timed is the same for every backend: the Pfaffian system of
E[s(u) s(v)] from the annihilator of s (testing.ACTIVATIONS).  For the pure-Python engine
(``sympy``) that is ``derive_pfaffian`` (integration by parts).  For a CAS it is the
route of ``derive_system``: the CAS's restriction ideal (a fresh process per call,
start-up included), then the engine's Pfaffian system of that ideal, and for Risa/Asir
also yang's own Pfaffian system (checked to be equal).  Every system is compared with the
engine's: same standard monomials and exactly the same matrices ("= engine").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

from hgmntk.cas_bridge.backends import BUILTIN_BACKENDS
from hgmntk.cas_bridge.pfaffian import derive_pfaffian, pfaffian_from_ideal, same_system
from hgmntk.cas_bridge.testing import ACTIVATIONS
from hgmntk.cas_bridge.weyl import UD, parse_operator
from hgmntk.errors import HgmntkError


def derive_with(backend, ann, timeout: float) -> dict:
    """Derive the system with ``backend``; the seconds of each step and the system."""
    t0 = time.perf_counter()
    if backend.name == "sympy":
        system = derive_pfaffian(ann, ann, timeout=timeout)
        return {"system": system, "total": time.perf_counter() - t0}
    ideal = backend.restriction_ideal(ann, ann, timeout=timeout)
    t1 = time.perf_counter()
    system = pfaffian_from_ideal(ideal, timeout=timeout)
    t2 = time.perf_counter()
    out = {"restriction": t1 - t0, "pfaffian": t2 - t1, "generators": len(ideal)}
    if hasattr(backend, "pfaffian_system"):
        theirs = backend.pfaffian_system(ideal, timeout=timeout)
        out["cas_pfaffian"] = time.perf_counter() - t2
        system = same_system(theirs, system, what=backend.name)
    out["total"] = time.perf_counter() - t0
    out["system"] = system
    return out


def _fmt(x) -> str:
    return "" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-a", "--activations", nargs="*", default=None)
    parser.add_argument("-b", "--backends", nargs="*", default=None)
    parser.add_argument("--gelu", action="store_true", help="include GeLU (minutes per CAS)")
    parser.add_argument("--timeout", type=float, default=1200.0)
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
    usable.sort(key=lambda b: b.name != "sympy")  # the engine first: the others compare to it
    print(
        f"# {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}"
    )
    print("| activation | backend | restriction s | Pfaffian s | CAS Pfaffian s | total s "
          "| rank | = engine |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for act in names:
        ann = [parse_operator(UD, ACTIVATIONS[act][0])]
        engine = None
        for b in usable:
            try:
                got = derive_with(b, ann, args.timeout)
                system = got.pop("system")
                if engine is None and b.name == "sympy":
                    engine = system
                same = None
                if engine is not None and b.name != "sympy":
                    try:
                        same_system(system, engine, what=b.name)
                        same = True
                    except HgmntkError:
                        same = False
            except HgmntkError as exc:
                row = {"activation": act, "backend": b.name, "error": str(exc).splitlines()[0]}
                print(f"| {act} | {b.name} | failed: {row['error']} | | | | | |", flush=True)
                rows.append(row)
                continue
            row = {"activation": act, "backend": b.name, "rank": system.rank,
                   "same_as_engine": same, **{k: round(v, 3) for k, v in got.items()}}
            rows.append(row)
            print(
                f"| {act} | {b.name} | {_fmt(got.get('restriction'))} | "
                f"{_fmt(got.get('pfaffian'))} | {_fmt(got.get('cas_pfaffian'))} | "
                f"{got['total']:.2f} | {system.rank} | "
                f"{'' if same is None else ('yes' if same else 'NO')} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    ok = all("error" not in r and r.get("same_as_engine") is not False for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
