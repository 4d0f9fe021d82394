"""Hermite coefficients h_0..h_N: hgmntk's recurrence against Gauss-Hermite quadrature.

The quadrature is what random-feature and sketching methods use to fit these coefficients
(Han et al. 2022): h_n ~ sum_q w_q s(sqrt(a) z_q) p_n(z_q), with the orthonormal Hermite
polynomials p_n = He_n / sqrt(n!) from their stable three-term recurrence and a rule of Q
nodes (SciPy's roots_hermitenorm; exact for polynomial s of degree < 2Q - n).  Both run in this
process, best of 3; the quadrature's error is measured against hgmntk's values (the tests
check those against closed forms and 40-digit quadrature).  Prints one line per
(activation, Q) with the times, their ratio and the quadrature's largest absolute error
relative to |h_0|.

    python benchmarks/hermite.py [--n 1000] [--activations relu gelu resin elu erf]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import hgmntk
from hgmntk.dual_activation import get_activation


def quadrature(name: str, n: int, a: float, nodes: int) -> np.ndarray:
    """h_0..h_n by a Gauss-Hermite rule of ``nodes`` nodes (float64)."""
    from scipy.special import roots_hermitenorm

    z, w = roots_hermitenorm(nodes)
    keep = w > 0  # the outermost weights underflow
    z, root_w = z[keep], np.sqrt(w[keep] / np.sqrt(2 * np.pi))
    f = get_activation(name).numeric_functions["s"](np.sqrt(a) * z) * root_w
    out = np.empty(n + 1)
    # p_k(z) sqrt(w): bounded (Hermite functions), where p_k alone overflows
    prev, cur = np.zeros_like(z), root_w.copy()
    for k in range(n + 1):
        out[k] = f @ cur
        prev, cur = cur, (z * cur - np.sqrt(k) * prev) / np.sqrt(k + 1)
    return out


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--variance", type=float, default=1.0)
    parser.add_argument("--activations", nargs="+",
                        default=["relu", "gelu", "resin", "elu", "erf"])
    args = parser.parse_args()
    n, a = args.n, args.variance
    print(f"h_0..h_{n} at variance {a}; times best of 3 (s); error = max |h_quad - h| / |h_0|")
    print(f"{'activation':<10} {'hgmntk':>8} {'nodes':>6} {'quadrature':>10} {'ratio':>7} "
          f"{'error':>9}")
    for name in args.activations:
        hgmntk.hermite(name, 5, a)  # imports and first-use costs out of the timing
        t_rec, exact = best_of(lambda name=name: hgmntk.hermite(name, n, a))
        scale = abs(exact[0]) or np.max(np.abs(exact))
        for nodes in (n + 1, 2 * n, 4 * n):
            t_q, approx = best_of(lambda name=name, q=nodes: quadrature(name, n, a, q))
            err = np.max(np.abs(approx - exact)) / scale
            print(f"{name:<10} {t_rec:8.3f} {nodes:6d} {t_q:10.3f} {t_rec / t_q:7.2f} "
                  f"{err:9.1e}")


if __name__ == "__main__":
    main()
