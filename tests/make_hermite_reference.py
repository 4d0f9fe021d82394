"""Write tests/reference/hermite.json: Hermite coefficients to n = 500 by mpmath quadrature.

h_n = E[s(sqrt(a) X) He_n(X)] / sqrt(n!), n = 0..500, for resin and elu at variances 1 and 4,
all n at once: a composite Gauss-Legendre rule on unit intervals of the z-axis (cut at 0,
where the activations have their kink, and out to +-2 (sqrt(n_max + 2) + 6), beyond which
every integrand is below 1e-250), the orthonormal Hermite polynomials psi_n = He_n / sqrt(n!)
from their three-term recurrence psi_(n+1) = (x psi_n - sqrt(n) psi_(n-1)) / sqrt(n + 1) at
each node.  Each side of the kink is entire, so the rule converges geometrically: two rules
(48 nodes per interval at 60 digits, 96 at 80) are compared and each coefficient is kept to
the digits where they agree (at least 30 for every stored value; at most 32 are written).

The records of the first version of this file (adaptive tanh-sinh quadrature of each
coefficient on its own, 70 and 100 digits, n = 250 at variance 1: about 7 minutes per
value) are kept as ``spot_checks``, and the new tables must agree with them to 30 digits: two
quadrature methods checking each other.  The tests only read the file.  About 6 minutes on
two cores here.  Run from the repository root:

    python tests/make_hermite_reference.py
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import mpmath
from mpmath.calculus.quadrature import GaussLegendre

from hgmntk.collinear import _mp_function
from hgmntk.dual_activation import get_activation

N_MAX = 500
CASES = [("resin", "1"), ("resin", "4"), ("elu", "1"), ("elu", "4")]
#: (Gauss-Legendre degree: 3 * 2^(degree - 1) nodes per interval, decimal digits)
RULES = ((5, 60), (6, 80))
MIN_DIGITS, MAX_DIGITS = 30, 32
OUT = Path(__file__).parent / "reference" / "hermite.json"


def coefficients(expression: str, variance: str, degree: int, digits: int) -> list:
    """h_0..h_N_MAX by the composite rule (module docstring) at ``digits`` digits."""
    f = _mp_function(expression)
    with mpmath.workdps(digits):
        sigma = mpmath.sqrt(mpmath.mpf(variance))
        rule = GaussLegendre(mpmath.mp).calc_nodes(degree, mpmath.mp.prec)
        edge = 2 * (int(math.sqrt(N_MAX + 2)) + 6)
        down = [1 / mpmath.sqrt(n + 1) for n in range(N_MAX + 1)]
        root = [mpmath.sqrt(n) for n in range(N_MAX + 1)]
        norm = 1 / mpmath.sqrt(2 * mpmath.pi)
        acc = [mpmath.mpf(0)] * (N_MAX + 1)
        for left in range(-edge, edge):
            for t, w in rule:
                x = left + (t + 1) / 2  # the interval [left, left + 1]
                value = f(sigma * x)
                if not value:
                    continue
                c = value * w / 2 * norm * mpmath.exp(-x * x / 2)
                p0, p1 = mpmath.mpf(1), x
                acc[0] += c
                acc[1] += c * x
                for n in range(1, N_MAX):
                    p0, p1 = p1, (x * p1 - root[n] * p0) * down[n]
                    acc[n + 1] += c * p1
        return acc


def table(case: tuple[str, str]) -> dict:
    name, variance = case
    expression = get_activation(name).expression
    (d1, p1), (d2, p2) = RULES
    low = coefficients(expression, variance, d1, p1)
    high = coefficients(expression, variance, d2, p2)
    values, worst = [], MAX_DIGITS
    with mpmath.workdps(p2):
        scale = max(abs(v) for v in high)
        for n, (lo, hi) in enumerate(zip(low, high)):
            diff = abs(lo - hi)
            # digits relative to the coefficient (relative to the largest for tiny ones)
            size = max(abs(hi), 1e-20 * scale)
            agree = MAX_DIGITS if diff == 0 else int(-mpmath.log10(diff / size))
            if agree < MIN_DIGITS:
                raise SystemExit(f"{name} a={variance} n={n}: only {agree} digits agree")
            worst = min(worst, agree)
            values.append(mpmath.nstr(hi, min(agree, MAX_DIGITS)))
    return {"activation": name, "variance": variance, "n_max": N_MAX, "digits": worst,
            "h": values}


def main() -> None:
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    spot = old.get("spot_checks") or [r for r in old.get("records", []) if "n" in r]
    with ProcessPoolExecutor(2) as pool:
        tables = list(pool.map(table, CASES))
    for r in spot:  # the new tables against the first version's one-value quadratures
        t = next(t for t in tables if t["activation"] == r["activation"]
                 and t["variance"] == r["variance"])
        with mpmath.workdps(50):
            got, want = mpmath.mpf(t["h"][r["n"]]), mpmath.mpf(r["h"])
            if abs(got - want) > mpmath.mpf(10) ** -30 * abs(want):
                raise SystemExit(f"{r}: the composite rule gives {got}")
    OUT.write_text(json.dumps({"description": __doc__.splitlines()[0], "tables": tables,
                               "spot_checks": spot}, indent=1) + "\n")
    for t in tables:
        print(t["activation"], t["variance"], "digits >=", t["digits"])


if __name__ == "__main__":
    main()
