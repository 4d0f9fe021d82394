"""Time the pure-Python derivation engine (integration by parts) per activation.

Usage: ``python benchmarks/derive_engine.py [--repeat N] [name ...]``.  Prints the rank,
the standard monomials, the best wall time of ``derive_pfaffian`` and the time of the exact
integrability check.
"""

from __future__ import annotations

import argparse
import time

from hgmntk.cas_bridge.pfaffian import check_integrability, derive_pfaffian
from hgmntk.cas_bridge.weyl import UD, parse_operator

ACTIVATIONS = {
    "relu": "u*d - 1",
    "step": "u*d",
    "sin": "d^2 + 1",
    "erf": "d^2 + 2*u*d",
    "resin": "u*d^2 + u",
    "resin_u2": "u^2*d^2 + u^2",
    "gelu": "d^3 + 2*u*d^2 + u^2*d - u",
    "gelu_order2": "u^2*d^2 + u^3*d - 2*u*d + 2 - u^2",
}
DEFAULT = ["relu", "step", "sin", "erf", "resin", "gelu"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(ACTIVATIONS)}")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'activation':<12} {'annihilator':<36} {'rank':>4} {'derive [s]':>10} "
          f"{'check [s]':>9}  standard monomials")
    unknown = [n for n in args.names if n not in ACTIVATIONS]
    if unknown:
        parser.error(f"unknown activation(s) {unknown}; choose from {list(ACTIVATIONS)}")
    for name in args.names or DEFAULT:
        ann = [parse_operator(UD, ACTIVATIONS[name])]
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            system = derive_pfaffian(ann, ann)
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        check_integrability(system)
        check = time.perf_counter() - t0
        print(f"{name:<12} {ACTIVATIONS[name]:<36} {system.rank:>4} {best:>10.3f} "
              f"{check:>9.3f}  {system.standard_monomials}")


if __name__ == "__main__":
    main()
