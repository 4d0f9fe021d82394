"""Finite-width kernels: hgmntk.empirical_kernels against neural-tangents' empirical_ntk_fn.

Depth-3 MLP of width 512 (W_std 1.5, b_std 0.05, NTK parameterization, one output) on
256 points ~ N(0, I) in R^10: the empirical NTK of one initialised network, hgmntk's
layer-wise structured formula in NumPy (float64) against neural-tangents'
``empirical_ntk_fn`` (implementation 3, structured derivatives; jitted float64, compilation
reported apart), best of 3 each, in one run.  The two draw different initialisations, so
their kernels differ by the finite-width fluctuation; the script prints each one's relative
Frobenius distance to the exact infinite-width NTK (``hgmntk.kernels``) beside the times.
neural-tangents runs in its optional environment (``bash benchmarks/setup_nt_env.sh``);
without it only hgmntk's figures are printed.

    python benchmarks/empirical.py [--width 512] [--n 256] [--activations relu erf]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import hgmntk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from vs_neural_tangents import call_nt_worker, default_nt_python  # noqa: E402

STAX = {"relu": "Relu", "erf": "Erf", "gelu": "Gelu", "sin": "Sin"}
DEPTH, W_STD, B_STD, DIM = 3, 1.5, 0.05, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--activations", nargs="+", default=["relu", "erf"])
    parser.add_argument("--nt-python", type=Path, default=default_nt_python())
    args = parser.parse_args()
    x = np.random.default_rng(0).standard_normal((args.n, DIM))
    nt_ok = args.nt_python.exists()
    print(f"depth {DEPTH}, width {args.width}, {args.n} x {args.n}; best of 3 (s)")
    print(f"{'activation':<10} {'hgmntk':>8} {'NT':>8} {'NT compile':>10} {'ratio':>6} "
          f"{'dist hgmntk':>11} {'dist NT':>8}")
    for name in args.activations:
        exact = hgmntk.kernels(x, activation=name, depth=DEPTH, w_std=W_STD, b_std=B_STD).ntk
        best, k = float("inf"), None
        for _ in range(3):
            start = time.perf_counter()
            k = hgmntk.empirical_kernels(x, activation=name, depth=DEPTH, width=args.width,
                                         w_std=W_STD, b_std=B_STD, seed=0)
            best = min(best, time.perf_counter() - start)
        dist = np.linalg.norm(k.ntk - exact) / np.linalg.norm(exact)
        nt_best = nt_compile = nt_dist = float("nan")
        if nt_ok:
            out = call_nt_worker(args.nt_python, x, None, [{
                "empirical": True, "activation": STAX[name], "depth": DEPTH,
                "width": args.width, "W_std": W_STD, "b_std": B_STD, "repeats": 3}])
            nt_best, nt_compile = float(out["c0_e_best_s"]), float(out["c0_e_compile_s"])
            nt_dist = np.linalg.norm(out["c0_e_ntk"] - exact) / np.linalg.norm(exact)
        print(f"{name:<10} {best:8.4f} {nt_best:8.4f} {nt_compile:10.2f} "
              f"{best / nt_best:6.2f} {dist:11.3f} {nt_dist:8.3f}")
    if not nt_ok:
        print(f"(neural-tangents environment not found at {args.nt_python}: create it with "
              "bash benchmarks/setup_nt_env.sh)")


if __name__ == "__main__":
    main()
