"""Large-N kernel regression and out-of-core kernels (the "scale on Dask" issue).

Prints, on this machine, for the depth-3 ReLU NTK (W_std 1.5, b_std 0.05) of synthetic data
in d = 20 (X ~ N(0, I), y = f(X) + 0.1 noise with a known f, test targets noise-free):

1. ``--n-compare`` (20 000) training points: the exact dense solve against the Nystrom
   (Falkon) solver and matrix-free CG on the same data and ridge: wall time, peak RSS,
   test RMSE, the RMSE ratio and the max relative difference of the predictions.
2. ``--n-large`` (100 000) training points and 10 000 test points with the Nystrom solver:
   wall time, peak RSS (target <= 8 GiB), test RMSE.
3. ``--out-of-core``: a 100 000 x 10 000 kernel written with ``hgmntk kernel --out DIR``,
   once uninterrupted, once killed (SIGKILL) half-way and restarted: the SHA-256 of the
   arrays must be equal.

Each case runs in a fresh process (its peak RSS is its own).  ``--workers 2`` runs the
solvers' kernel tiles on a ``dask.distributed.LocalCluster`` of 2 worker processes and
compares its predictions with those of a run without it (saved in ``--save``).  The
ridge is :data:`RIDGE` in every solve.  Run:

    python benchmarks/scale.py [--n-large 100000] [--n-compare 20000] [--centres 10000]
                               [--workers 2] [--out-of-core] [--save DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

D, DEPTH, W_STD, B_STD, NOISE = 20, 3, 1.5, 0.05, 0.1
#: The ridge of every solve (the NTK's diagonal is about 12.8 here: 0.8 % of it).
RIDGE = 0.1


def target(x: np.ndarray) -> np.ndarray:
    """The known function: u1 + 0.3 u2^2 + 0.2 u1 u3 + 0.2 sin(2 u3) of three fixed unit
    projections u = W x (mostly a low-degree polynomial, which the NTK learns in d = 20)."""
    rng = np.random.default_rng(12345)
    w = rng.standard_normal((3, x.shape[1]))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    u = x @ w.T
    return u[:, 0] + 0.3 * u[:, 1] ** 2 + 0.2 * u[:, 0] * u[:, 2] + 0.2 * np.sin(2 * u[:, 2])


def data(n: int, n_test: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, D))
    y = target(x) + NOISE * rng.standard_normal(n)
    xt = np.random.default_rng(seed + 1).standard_normal((n_test, D))
    return x, y, xt, target(xt)


def case(args: dict) -> dict:
    """One fit and predict, in this process: the figures as a dict."""
    import hgmntk

    x, y, xt, yt = data(args["n"], args["n_test"])
    client = cluster = None
    if args.get("workers"):
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args["workers"], threads_per_worker=1,
                               processes=True, memory_limit=0, dashboard_address=None)
        client = Client(cluster)
    t0 = time.perf_counter()
    model = hgmntk.KernelRegressor(
        "relu", DEPTH, w_std=W_STD, b_std=B_STD, ridge=RIDGE,
        solver=args["solver"], centres=args["centres"], client=client, progress=False)
    model.fit(x, y)
    fit_s = time.perf_counter() - t0
    pred = model.predict(xt)
    wall = time.perf_counter() - t0
    if args.get("save"):
        np.save(args["save"], pred)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if client is not None:
        client.close()
        cluster.close()
    rep = model.solve_report_
    return {"solver": rep.solver, "n": args["n"], "wall_s": wall, "fit_s": fit_s,
            "rss_gib": rss, "rmse": float(np.sqrt(np.mean((pred - yt) ** 2))),
            "iterations": rep.iterations, "residual": rep.residual, "centres": rep.centres}


def run_case(**args) -> dict:
    """``case`` in a fresh process (so that its peak RSS is its own)."""
    out = subprocess.run([sys.executable, __file__, "--case", json.dumps(args)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"case {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(r: dict) -> None:
    it = f", {r['iterations']} iterations, residual {r['residual']:.1e}" if r["iterations"] else ""
    print(f"  {r['solver']:8s} n={r['n']:6d}: {r['wall_s']:7.1f} s (fit {r['fit_s']:.1f} s), "
          f"peak RSS {r['rss_gib']:.2f} GiB, test RMSE {r['rmse']:.5f}{it}", flush=True)


def out_of_core(folder: Path, rows: int, cols: int, chunks: int) -> None:
    """Uninterrupted vs killed-and-restarted out-of-core kernels: equal bytes?"""
    rng = np.random.default_rng(3)
    x1, x2 = folder / "x1.npy", folder / "x2.npy"
    np.save(x1, rng.standard_normal((rows, D)))
    np.save(x2, rng.standard_normal((cols, D)))
    cmd = [sys.executable, "-m", "hgmntk", "kernel", "--x1", str(x1), "--x2", str(x2),
           "--activation", "relu", "--depth", str(DEPTH), "--w-std", str(W_STD),
           "--b-std", str(B_STD), "--chunks", str(chunks), "--quiet", "--out"]

    def digest(path: Path) -> str:
        h = hashlib.sha256()
        for name in ("nngp.npy", "ntk.npy"):
            with open(path / name, "rb") as fh:
                while block := fh.read(1 << 24):
                    h.update(block)
        return h.hexdigest()

    t0 = time.perf_counter()
    subprocess.run(cmd + [str(folder / "whole")], check=True)
    whole_s = time.perf_counter() - t0
    first = digest(folder / "whole")
    shutil.rmtree(folder / "whole")
    target_dir = folder / "resumed"
    log = folder / "resumed.partial" / "tiles.done"
    n_tiles = -(-rows // chunks) * -(-cols // chunks)
    proc = subprocess.Popen(cmd + [str(target_dir)])
    while proc.poll() is None:
        done = len(log.read_text().splitlines()) if log.exists() else 0
        if done >= n_tiles // 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    looks_done = target_dir.exists()
    t0 = time.perf_counter()
    subprocess.run(cmd + [str(target_dir)], check=True)
    rest_s = time.perf_counter() - t0
    second = digest(target_dir)
    print(f"  {rows} x {cols} kernel, tiles of {chunks}: uninterrupted {whole_s:.1f} s; killed "
          f"after {killed_at}/{n_tiles} tiles (a finished folder present: {looks_done}), "
          f"restart finished the rest in {rest_s:.1f} s; same SHA-256: {first == second}")
    if first != second or looks_done:
        raise SystemExit("out-of-core restart did not give the same bytes")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--n-large", type=int, default=100_000)
    p.add_argument("--n-compare", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--centres", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=0, help="LocalCluster workers (0: none)")
    p.add_argument("--save", default="benchmarks/.scale", help="where predictions are kept")
    p.add_argument("--out-of-core", action="store_true")
    p.add_argument("--skip-compare", action="store_true")
    args = p.parse_args()
    if args.case:
        print(json.dumps(case(json.loads(args.case))))
        return
    import platform

    print(f"scale benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
          f"{platform.python_version()}; relu depth {DEPTH} NTK, d = {D}", flush=True)
    save = Path(args.save)
    save.mkdir(parents=True, exist_ok=True)
    tag = f"w{args.workers}" if args.workers else "local"
    common = dict(centres=args.centres, n_test=args.n_test, workers=args.workers)
    if not args.skip_compare:
        n = args.n_compare
        print(f"1. n = {n}: the exact dense solve against the iterative solvers")
        dense = run_case(n=n, solver="dense", save=str(save / f"dense{n}.npy"), **common)
        show(dense)
        ref = np.load(save / f"dense{n}.npy")
        for solver in ("nystrom", "cg"):
            r = run_case(n=n, solver=solver, save=str(save / f"{solver}{n}.npy"), **common)
            show(r)
            pred = np.load(save / f"{solver}{n}.npy")
            diff = np.max(np.abs(pred - ref)) / np.max(np.abs(ref))
            print(f"    vs dense: RMSE ratio {r['rmse'] / dense['rmse']:.4f}, max relative "
                  f"difference of the predictions {diff:.2e}; time ratio "
                  f"{r['wall_s'] / dense['wall_s']:.2f}", flush=True)
    n = args.n_large
    print(f"2. n = {n}, {args.n_test} test points, Nystrom with {args.centres} centres "
          f"({tag})")
    out = save / f"nystrom{n}_{tag}.npy"
    r = run_case(n=n, solver="nystrom", save=str(out), **common)
    show(r)
    local = save / f"nystrom{n}_local.npy"
    if args.workers and local.exists():
        a, b = np.load(out), np.load(local)
        print(f"    vs the run without a cluster: max relative difference "
              f"{np.max(np.abs(a - b)) / np.max(np.abs(b)):.2e}")
    if args.out_of_core:
        print("3. out-of-core kernel, killed half-way and restarted")
        with tempfile.TemporaryDirectory(dir=save) as tmp:
            out_of_core(Path(tmp), 100_000, 10_000, 4096)


if __name__ == "__main__":
    main()
