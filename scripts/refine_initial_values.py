"""Recompute the initial values of the built-in plugins' Pfaffian systems to more digits.

The precise path (:mod:`hgmntk.continuation`) starts every continuation from a system's
stored initial values; targets that amplify their rounding beyond the stored digits make
it recompute them from one-dimensional moments at a higher precision, which costs seconds
to minutes per target for activations without closed-form moments (elu, gelu, resin).
Storing them to ``--digits`` significant digits once spares that.

Each value is recomputed by :func:`hgmntk.cas_bridge.moments.initial_values` (exact forms
where they exist, else quadrature at two precisions that must agree) and must agree with
the value stored before to that value's own digits; the file is rewritten only then.

    python scripts/refine_initial_values.py --digits 160 [names ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import mpmath
import sympy

from hgmntk.cas_bridge.moments import initial_values
from hgmntk.continuation import significant_digits
from hgmntk.system import parse_number

DATA = Path(__file__).resolve().parents[1] / "plugins" / "data"


def refine(path: Path, digits: int) -> list[str]:
    """Rewrite one plugin file with ``digits``-digit initial values; returns a report."""
    text = path.read_text()
    data = json.loads(text)
    u = sympy.Symbol("u", real=True)
    sides = {"s": data["expression"], "ds": data["derivative"]}
    report = []
    for key, system in data["duals"].items():
        start = time.perf_counter()
        s1, s2 = (sympy.sympify(sides[side], locals={"u": u}) for side in system["pair"])
        monomials = [tuple(int(e) for e in m) for m in system["standard_monomials"]]
        point = tuple(sympy.Rational(str(parse_number(v))) for v in system["base_point"])
        new, _ = initial_values(s1, s2, monomials, point, digits)
        for old, value in zip(system["initial_values"], new, strict=True):
            kept = significant_digits(old)
            with mpmath.workdps(digits + 10):
                a, b = mpmath.mpf(old), mpmath.mpf(value)
                if kept and abs(a - b) > abs(b) * mpmath.mpf(10) ** (2 - kept):
                    raise SystemExit(f"{path.name} {key}: {old} disagrees with {value}")
        system["initial_values"] = new
        report.append(f"{path.stem} {key}: {len(new)} values, {digits} digits, "
                      f"{time.perf_counter() - start:.1f} s")
    # keep the file's layout (indented or compact) so that the diff shows the values only
    if text.startswith("{\n"):
        path.write_text(json.dumps(data, indent=1) + "\n")
    else:
        path.write_text(json.dumps(data, separators=(",", ":")) + text[len(text.rstrip()):])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="plugin data names (default: all)")
    parser.add_argument("--digits", type=int, default=160)
    args = parser.parse_args(argv)
    paths = [DATA / f"{n}.json" for n in args.names] or sorted(DATA.glob("*.json"))
    for path in paths:
        for line in refine(path, args.digits):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
