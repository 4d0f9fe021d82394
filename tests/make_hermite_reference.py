"""Write tests/reference/hermite.json: Hermite coefficients at large n by mpmath quadrature.

h_n = E[s(X) He_n(X)] / sqrt(n!) (variance 1) for resin and elu at n = 250, each
integrated twice (at 70 and 100 decimal digits, the z-axis cut at 0 and every unit out to
2 (sqrt(n) + 6)) and stored to the digits where the two agree (at least 30, at most 40).
Slow (about 7 minutes per value here); the records already in the file are kept, so an
interrupted run resumes.  The tests only read the file.  Run from the repository root:

    python tests/make_hermite_reference.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import mpmath

from hgmntk.collinear import _mp_function
from hgmntk.dual_activation import get_activation

CASES = [("resin", 250), ("elu", 250)]
OUT = Path(__file__).parent / "reference" / "hermite.json"


def coefficient(expression: str, n: int, digits: int) -> mpmath.mpf:
    f = _mp_function(expression)
    with mpmath.workdps(digits):
        edge = 2 * (int(math.sqrt(n + 2)) + 6)
        points = [-mpmath.inf, *range(-edge, edge + 1), mpmath.inf]
        value = mpmath.quad(lambda x: f(x) * mpmath.hermite(n, x / mpmath.sqrt(2))
                            * mpmath.exp(-x * x / 2), points)
        return value * 2 ** (-mpmath.mpf(n) / 2) / mpmath.sqrt(
            2 * mpmath.pi * mpmath.factorial(n))


def main() -> None:
    records = json.loads(OUT.read_text())["records"] if OUT.exists() else []
    for name, n in CASES:
        if any(r["activation"] == name and r["n"] == n for r in records):
            continue
        expression = get_activation(name).expression
        low, high = coefficient(expression, n, 70), coefficient(expression, n, 100)
        with mpmath.workdps(100):
            agree = int(-mpmath.log10(abs(low - high) / abs(high))) if low != high else 60
        if agree < 30:
            raise SystemExit(f"{name} n={n}: only {agree} digits agree")
        records.append({"activation": name, "variance": "1", "n": n,
                        "h": mpmath.nstr(high, min(agree, 40)), "digits": min(agree, 40)})
        print(records[-1], flush=True)
        OUT.write_text(json.dumps({"description": __doc__.splitlines()[0],
                                   "records": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
