"""Speed and accuracy of the depth-3 ReLU NTK: closed form vs HGM vs Gauss-Hermite.

Prints, in one run, entries per second of the depth-3 NTK (W_std = 1.5, b_std = 0.1) of N
Gaussian points in R^5 for N = 1000 and 2000, with method ``closed``, ``hgm`` and
``gauss-hermite`` (degree 25 and 100); the max relative error of each against a 60-digit
mpmath evaluation of the arc-cosine recursion on a random sample of entries; and the ratio
of the hgm time to the closed-form time measured in the same run (target: <= 10).

Gauss-Hermite is timed on a block of rows (every entry costs the same; the rate is what
matters); closed and hgm compute the whole N x N matrix.  Then every other activation's
depth-3 NTK at N = 1000 (the setting of the "fast exact kernels" issue: W_std 1.5, b_std
0.05, inputs in R^10) is timed against relu's in the same run, with the number of pairs
that needed the careful path, for a first call in a fresh process (one-time costs
included) and a second call (the kernel's own work).  Run:

    python benchmarks/kernels_speed.py [--sizes 1000 2000] [--gh-rows 20]
                                       [--activations gelu erf ...] [--act-size 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import mpmath
import numpy as np

import hgmntk

DEPTH, W_STD, B_STD = 3, 1.5, 0.1


def mp_ntk_entry(x, y, depth=DEPTH, w_std=W_STD, b_std=B_STD, dps=40) -> float:
    """NTK(x, y) of the ReLU network by the arc-cosine recursion at ``dps`` digits."""
    with mpmath.workdps(dps):
        d = len(x)
        xs = [mpmath.mpf(float(v)) for v in x]
        ys = [mpmath.mpf(float(v)) for v in y]
        w2, b2 = mpmath.mpf(w_std) ** 2, mpmath.mpf(b_std) ** 2
        a = w2 * mpmath.fsum(v * v for v in xs) / d + b2
        b = w2 * mpmath.fsum(v * v for v in ys) / d + b2
        c = w2 * mpmath.fsum(p * q for p, q in zip(xs, ys)) / d + b2
        ntk = c
        for _ in range(depth):
            t = mpmath.acos(max(min(c / mpmath.sqrt(a * b), 1), -1))
            e = (
                mpmath.sqrt(a * b)
                / (2 * mpmath.pi)
                * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t))
            )
            dot = w2 * (mpmath.pi - t) / (2 * mpmath.pi)
            c = w2 * e + b2
            ntk = c + ntk * dot
            a, b = w2 * a / 2 + b2, w2 * b / 2 + b2
        return float(ntk)


def run(sizes, gh_rows, sample, seed=0):
    rng = np.random.default_rng(seed)
    print(f"depth-{DEPTH} ReLU NTK, W_std={W_STD}, b_std={B_STD}, inputs N(0,1) in R^5")
    print(f"{'N':>6} {'method':>18} {'seconds':>9} {'entries/s':>12} {'max rel err':>12}")
    for n in sizes:
        X = rng.standard_normal((n, 5))
        pairs = rng.integers(0, n, size=(sample, 2))
        ref = np.array([mp_ntk_entry(X[i], X[j]) for i, j in pairs])
        timings = {}
        for method, opts, rows in (
            ("closed", {}, None),
            ("hgm", {}, None),
            ("gauss-hermite", {"degree": 25}, gh_rows),
            ("gauss-hermite", {"degree": 100}, max(1, gh_rows // 10)),
        ):
            label = method + (f"({opts['degree']})" if opts else "")
            if rows is None:
                t0 = time.perf_counter()
                k = hgmntk.kernels(
                    X,
                    activation="relu",
                    depth=DEPTH,
                    w_std=W_STD,
                    b_std=B_STD,
                    method=method,
                    **opts,
                )
                secs = time.perf_counter() - t0
                entries = n * n
                got = k.ntk[pairs[:, 0], pairs[:, 1]]
                refs = ref
            else:
                rows_idx = np.arange(rows)
                t0 = time.perf_counter()
                k = hgmntk.kernels(
                    X[rows_idx],
                    X,
                    activation="relu",
                    depth=DEPTH,
                    w_std=W_STD,
                    b_std=B_STD,
                    method=method,
                    **opts,
                )
                secs = time.perf_counter() - t0
                entries = rows * n
                sub = pairs[:, 0] < rows
                got = k.ntk[pairs[sub, 0], pairs[sub, 1]]
                refs = ref[sub]
                if not sub.any():  # sample a few entries of the computed block
                    cols = rng.integers(0, n, size=min(sample, 10))
                    got = k.ntk[0, cols]
                    refs = np.array([mp_ntk_entry(X[0], X[j]) for j in cols])
            err = float(np.max(np.abs(got - refs) / np.abs(refs)))
            timings[label] = secs / entries
            print(
                f"{n:>6} {label:>18} {secs:>9.3f} {entries / secs:>12.4g} {err:>12.3e}", flush=True
            )
        ratio = timings["hgm"] / timings["closed"]
        print(f"{n:>6} ratio hgm/closed (time per entry): {ratio:.2f}  (target <= 10)")


_CHILD = """
import sys, time, numpy as np, hgmntk
name, n = sys.argv[1], int(sys.argv[2])
X = np.random.default_rng(0).standard_normal((n, 10))
times = []
for _ in range(2):
    t0 = time.perf_counter()
    k = hgmntk.kernels(X, activation=name, depth=3, w_std=1.5, b_std=0.05)
    times.append(time.perf_counter() - t0)
print(times[0], times[1], k.careful_pairs, n * (n - 1) // 2, k.method)
"""


def _timed(name: str, n: int, cap: float):
    """(first call's seconds, second call's seconds, careful pairs, pairs, method) of the
    depth-3 NTK in a fresh process (two calls: the first pays the one-time costs, the
    second is the kernel's own work), or None when it runs past ``cap`` seconds (the
    child is killed)."""
    try:
        out = subprocess.run([sys.executable, "-c", _CHILD, name, str(n)], capture_output=True,
                             text=True, timeout=cap, check=True).stdout.split()
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:  # report hgmntk's error, go on
        lines = exc.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {exc.returncode}"
    return float(out[0]), float(out[1]), int(out[2]), int(out[3]), out[4]


def activation_ratios(names, n: int, cap: float) -> None:
    """Every activation's depth-3 NTK (W_std 1.5, b_std 0.05, N(0, 1) inputs in R^10, the
    setting of the 'fast exact kernels' issue) against relu's in the same run, each in a
    fresh process: the first call (start-up's lazy imports and first-use costs such as
    quadrature rules and coefficients included: a script computing one kernel) and a
    second call on the same inputs (the kernel's own work)."""
    print(f"\ndepth-3 NTK, N = {n}, W_std 1.5, b_std 0.05, inputs N(0,1) in R^10; "
          f"time cap {cap:g} s per process (two calls)")
    print(f"{'activation':>12} {'1st call s':>10} {'/ relu':>7} {'2nd call s':>10} {'/ relu':>7}"
          f" {'careful pairs':>16} {'method':>8}")
    relu = _timed("relu", n, cap)
    for name in ["relu", *names]:
        got = relu if name == "relu" else _timed(name, n, cap)
        if got is None:
            print(f"{name:>12} {'> cap':>10}")
            continue
        if isinstance(got, str):
            print(f"{name:>12} {'failed':>10}  {got[:100]}")
            continue
        first, second, careful, pairs, method = got
        r1 = first / relu[0] if relu else float("nan")
        r2 = second / relu[1] if relu else float("nan")
        print(f"{name:>12} {first:>10.2f} {r1:>7.1f} {second:>10.3f} {r2:>7.1f} "
              f"{careful:>9} ({careful / pairs:.1%}) {method:>8}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000])
    parser.add_argument("--gh-rows", type=int, default=20, help="rows timed for gauss-hermite")
    parser.add_argument("--sample", type=int, default=40, help="entries checked against mpmath")
    parser.add_argument("--activations", nargs="*", default=[
        "abs", "leaky_relu", "relu2", "relu3", "gelu", "erf", "sin", "cos", "exp", "gauss",
        "resin", "elu"], help="activations timed against relu at --act-size")
    parser.add_argument("--act-size", type=int, default=1000)
    parser.add_argument("--cap", type=float, default=400.0,
                        help="seconds per activation (its process, two calls)")
    args = parser.parse_args()
    if args.sizes:
        run(args.sizes, args.gh_rows, args.sample)
    if args.activations:
        activation_ratios(args.activations, args.act_size, args.cap)


if __name__ == "__main__":
    main()
