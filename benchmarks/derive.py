"""Derivation time per built-in activation; the same restriction in each usable CAS.

For every built-in activation this prints, in one run, the wall time of the whole
pure-Python derivation (``derive_activation`` from the expression: annihilators, both
Pfaffian systems, integrability check, initial values), the ranks, and the time of the
restriction step of E[s s] in every usable CAS backend (Singular, Macaulay2, Risa/Asir)
with the ratio CAS / pure Python.  Targets (2-core machine): relu < 1 s, resin < 2 s,
gelu < 60 s.

    python benchmarks/derive.py [--no-cas] [--skip-gelu-cas] [names ...]
"""

from __future__ import annotations

import argparse
import time

from hgmntk.cas_bridge.builtin_data import BUILTINS
from hgmntk.cas_bridge.derive import derive_activation
from hgmntk.errors import HgmntkError

EXPRESSIONS = {"relu": "Max(0, u)", "step": "Heaviside(u)"}
EXPRESSIONS.update({name: expr for name, (expr, _) in BUILTINS.items()})


def _cas_backends():
    from hgmntk.cas_bridge.backend import list_backends
    from hgmntk.plugin_manager import get_registry

    registry = get_registry().backends
    return [registry[r.name] for r in list_backends(backends=registry)
            if r.usable and r.name != "sympy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(EXPRESSIONS))
    parser.add_argument("--no-cas", action="store_true", help="pure Python only")
    parser.add_argument("--skip-gelu-cas", action="store_true", help="GeLU takes ~100 s per CAS")
    args = parser.parse_args()
    backends = [] if args.no_cas else _cas_backends()
    header = f"{'activation':>11} {'python s':>9} {'rank ss/dsds':>13}"
    header += "".join(f" {b.name + ' s':>13} {'ratio':>7}" for b in backends)
    print(header)
    for name in args.names:
        t0 = time.perf_counter()
        act = derive_activation(EXPRESSIONS[name], name=name)
        py = time.perf_counter() - t0
        ranks = "/".join(str(act.duals[k].rank) for k in ("ss", "dsds") if k in act.duals)
        line = f"{name:>11} {py:>9.2f} {ranks:>13}"
        from hgmntk.cas_bridge.weyl import UD, parse_operator

        ann = [parse_operator(UD, t) for t in act.annihilators["s"]]
        for backend in backends:
            if name == "gelu" and args.skip_gelu_cas:
                line += f" {'skipped':>13} {'':>7}"
                continue
            t0 = time.perf_counter()
            try:
                backend.restriction_ideal(ann, ann, timeout=600)
                secs = time.perf_counter() - t0
                line += f" {secs:>13.2f} {secs / py:>7.1f}"
            except HgmntkError as exc:
                line += f" {'failed':>13} {'':>7}"
                print(f"  {backend.name} on {name}: {exc}".splitlines()[0])
        print(line, flush=True)


if __name__ == "__main__":
    main()
