"""hgmntk against neural-tangents: speed, agreement and accuracy of deep NNGP/NTK kernels.

neural-tangents is not a dependency of hgmntk: it runs in its own optional environment
(create it with ``bash benchmarks/setup_nt_env.sh``), through ``benchmarks/nt_worker.py``
as a subprocess.  Without that environment this script prints how to create it and exits
with status 0 ("skipped").

For each case (activation, N) the network is ``Dense(W, b), act, ..., act, Dense(W, b)``
of depth 3 (W_std 1.5, b_std 0.05, NTK parameterization), on N points ~ N(0, I) in R^10
(fixed seed; every case uses the first N rows of the same array).  hgmntk.kernels (default
method) runs in a child process with a time cap, best of a few repeats; neural-tangents'
jitted ``kernel_fn`` is timed without its compilation (reported separately), best of a few
repeats.  Per case the script prints both times and their ratio, the largest relative
difference between the two (off-diagonal entries and diagonal separately), and the largest
relative error of each against a 40-digit mpmath evaluation of the kernel recursion with
closed-form duals on a random sample of entries (ReLU's NTK: ``mp_ntk_entry`` of
``benchmarks/kernels_speed.py``; activations without a closed form have no reference).

    python benchmarks/vs_neural_tangents.py [--nt-python PATH] [--cases relu:2000 erf:10:60 ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mpmath
import numpy as np

import hgmntk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from kernels_speed import mp_ntk_entry  # noqa: E402

DEPTH, W_STD, B_STD, DIM, SEED = 3, 1.5, 0.05, 10, 0
DEFAULT_CASES = (
    "relu:2000:600", "relu:4000:900", "abs:1000", "leaky_relu:1000",
    "relu2:200", "erf:10", "sin:10", "cos:10", "gelu:5", "exp:10", "gauss:10",
)
SETUP_HINT = "create it with: bash benchmarks/setup_nt_env.sh [ENV_DIR]"

MpDuals = Callable[[mpmath.mpf, mpmath.mpf, mpmath.mpf], tuple[mpmath.mpf, mpmath.mpf]]


def default_nt_python() -> Path:
    """Python of the environment made by setup_nt_env.sh at its default location."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "hgmntk-nt-env" / "bin" / "python"


def call_nt_worker(
    nt_python: Path, x1: np.ndarray, x2: np.ndarray | None, cases: list[dict],
    timeout: float = 1800,
) -> dict[str, np.ndarray]:
    """Run benchmarks/nt_worker.py on ``cases`` and return its output arrays."""
    with tempfile.TemporaryDirectory() as tmp:
        request, out = Path(tmp) / "request.npz", Path(tmp) / "out.npz"
        arrays = {"X": x1} if x2 is None else {"X": x1, "X2": x2}
        np.savez(request, request=np.array(json.dumps({"cases": cases})), **arrays)
        proc = subprocess.run(
            [str(nt_python), str(HERE / "nt_worker.py"), str(request), str(out)],
            capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"nt_worker.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        with np.load(out, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}


# --- independent reference: the kernel recursion in mpmath with closed-form duals --------


def _theta(a, b, c):
    return mpmath.acos(max(min(c / mpmath.sqrt(a * b), 1), -1))


def abrelu_duals(alpha: float, beta: float) -> MpDuals:
    """Duals of s = alpha min(u, 0) + beta max(u, 0) (stax ABRelu(alpha, beta))."""

    def duals(a, b, c):
        t, r = _theta(a, b, c), mpmath.sqrt(a * b)
        same = r / (2 * mpmath.pi) * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t))
        cross = r / (2 * mpmath.pi) * (mpmath.sin(t) - t * mpmath.cos(t))
        ss = (alpha**2 + beta**2) * same - 2 * alpha * beta * cross
        dsds = ((alpha**2 + beta**2) * (mpmath.pi - t) + 2 * alpha * beta * t) / (2 * mpmath.pi)
        return ss, dsds

    return duals


def relu2_duals(a, b, c):
    """Duals of max(u, 0)^2 (Cho and Saul's arc-cosine kernel of degree 2)."""
    t, r = _theta(a, b, c), mpmath.sqrt(a * b)
    j2 = 3 * mpmath.sin(t) * mpmath.cos(t) + (mpmath.pi - t) * (1 + 2 * mpmath.cos(t) ** 2)
    j1 = mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t)
    return r * r / (2 * mpmath.pi) * j2, 4 * r / (2 * mpmath.pi) * j1


def erf_duals(a, b, c):
    """E[erf u erf v] and E[erf' u erf' v]."""
    d = (1 + 2 * a) * (1 + 2 * b)
    ss = 2 / mpmath.pi * mpmath.asin(2 * c / mpmath.sqrt(d))
    return ss, 4 / (mpmath.pi * mpmath.sqrt(d - 4 * c * c))


def sin_duals(a, b, c):
    """E[sin u sin v] and E[cos u cos v]."""
    e = mpmath.exp(-(a + b) / 2)
    return e * mpmath.sinh(c), e * mpmath.cosh(c)


def cos_duals(a, b, c):
    """E[cos u cos v] and E[sin u sin v]."""
    ss, dsds = sin_duals(a, b, c)
    return dsds, ss


def exp_duals(a, b, c):
    """E[e^u e^v] (the derivative's dual is the same)."""
    e = mpmath.exp((a + b) / 2 + c)
    return e, e


def gauss_duals(a, b, c):
    """Duals of exp(-u^2/2) and of its derivative -u exp(-u^2/2)."""
    d = (1 + a) * (1 + b) - c * c
    return 1 / mpmath.sqrt(d), c / d**1.5


def mp_kernel_entry(
    x, y, duals: MpDuals, depth: int = DEPTH, w_std: float = W_STD, b_std: float = B_STD,
    dps: int = 40,
) -> tuple[float, float]:
    """(NNGP, NTK)(x, y) of the deep network by the recursion at ``dps`` digits."""
    with mpmath.workdps(dps):
        xs = [mpmath.mpf(float(v)) for v in x]
        ys = [mpmath.mpf(float(v)) for v in y]
        w2, b2 = mpmath.mpf(w_std) ** 2, mpmath.mpf(b_std) ** 2
        a = w2 * mpmath.fsum(v * v for v in xs) / len(xs) + b2
        b = w2 * mpmath.fsum(v * v for v in ys) / len(xs) + b2
        c = w2 * mpmath.fsum(p * q for p, q in zip(xs, ys)) / len(xs) + b2
        ntk = c
        for _ in range(depth):
            ss, dsds = duals(a, b, c)
            c = w2 * ss + b2
            ntk = c + ntk * w2 * dsds
            a, b = w2 * duals(a, a, a)[0] + b2, w2 * duals(b, b, b)[0] + b2
        return float(c), float(ntk)


@dataclass(frozen=True)
class Counterpart:
    """An hgmntk activation and the stax nonlinearity computing the same network."""

    stax: str | None
    params: dict = field(default_factory=dict)
    duals: MpDuals | None = None
    note: str = ""


# hgmntk name -> stax nonlinearity (neural-tangents 0.6.5); None: no counterpart.
COUNTERPARTS: dict[str, Counterpart] = {
    "relu": Counterpart("Relu", {}, abrelu_duals(0, 1)),
    "abs": Counterpart("Abs", {}, abrelu_duals(-1, 1)),
    "leaky_relu": Counterpart("LeakyRelu", {"alpha": 0.1}, abrelu_duals(0.1, 1)),
    "relu2": Counterpart(
        "RectifiedMonomial", {"degree": 2}, relu2_duals,
        "stax returns NaN where theta = 0 (diagonal, duplicates), which spreads with depth",
    ),
    "relu3": Counterpart("RectifiedMonomial", {"degree": 3}, None, "as relu2"),
    "erf": Counterpart("Erf", {"a": 1.0, "b": 1.0, "c": 0.0}, erf_duals),
    "sin": Counterpart("Sin", {"a": 1.0, "b": 1.0, "c": 0.0}, sin_duals),
    "cos": Counterpart("Cos", {"a": 1.0, "b": 1.0, "c": 0.0}, cos_duals),
    "gelu": Counterpart("Gelu", {"approximate": False}, None, "no closed-form reference here"),
    "exp": Counterpart("Exp", {"a": 1.0, "b": 1.0}, exp_duals),
    "gauss": Counterpart("Gaussian", {"a": 1.0, "b": -0.5}, gauss_duals),
    "step": Counterpart(
        None, note="stax Sign = 2 step - 1 and RectifiedMonomial(0) drop the Dirac term of "
        "the derivative (NTK contribution 0); hgmntk's step NTK keeps it (inf diagonal)",
    ),
    "elu": Counterpart(None, note="no Elu in stax 0.6.5"),
    "resin": Counterpart(None, note="no ReSin in stax 0.6.5"),
    # families with parameters (hgmntk.act / "name(k=v)"), by their closed forms
    "leaky_relu(alpha=0.5)": Counterpart("LeakyRelu", {"alpha": 0.5}, abrelu_duals(0.5, 1)),
    "abrelu(a=-0.5,b=2.0)": Counterpart("ABRelu", {"a": -0.5, "b": 2.0},
                                        abrelu_duals(-0.5, 2.0)),
    "erf(a=0.5,b=2.0,c=0.1)": Counterpart("Erf", {"a": 0.5, "b": 2.0, "c": 0.1}),
    "sigmoid_like": Counterpart("Sigmoid_like", {}),
    "sin(a=1.5,b=0.5,c=0.3)": Counterpart("Sin", {"a": 1.5, "b": 0.5, "c": 0.3}),
    "cos(a=1.0,b=2.0,c=0.0)": Counterpart("Cos", {"a": 1.0, "b": 2.0, "c": 0.0}),
    "rbf(gamma=0.5)": Counterpart("Rbf", {"gamma": 0.5}),
    "exp(a=0.5,b=0.3)": Counterpart("Exp", {"a": 0.5, "b": 0.3}),
    "gaussian(a=1.0,b=-1.0)": Counterpart("Gaussian", {"a": 1.0, "b": -1.0}),
    "monomial(degree=2)": Counterpart("Monomial", {"degree": 2}),
    "polynomial(coef=[0.1,1.0,0.5])": Counterpart("Polynomial", {"coef": [0.1, 1.0, 0.5]}),
    "sign": Counterpart("Sign", {}, None, "stax drops the Dirac term of sign' from the NTK"),
}


# --- timing hgmntk in a child process with a time cap -------------------------------------


def _hgmntk_child(x: np.ndarray, activation: str, repeats: int, budget: float, out: str) -> None:
    times = []
    try:
        while len(times) < repeats and (not times or sum(times) < budget):
            t0 = time.perf_counter()
            k = hgmntk.kernels(x, activation=activation, depth=DEPTH, w_std=W_STD, b_std=B_STD)
            times.append(time.perf_counter() - t0)
    except Exception as exc:  # reported in the table, the other cases still run
        np.savez(out, error=np.array(f"{type(exc).__name__}: {exc}"))
        return
    np.savez(out, nngp=k.nngp, ntk=k.ntk, times=np.array(times))


def time_hgmntk(
    x: np.ndarray, activation: str, repeats: int, budget: float, cap: float
) -> dict | None:
    """Kernels and times of hgmntk.kernels on x (or its ``error``), None past ``cap`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "k.npz")
        proc = mp.get_context("fork").Process(
            target=_hgmntk_child, args=(x, activation, repeats, budget, out)
        )
        proc.start()
        proc.join(cap)
        if proc.is_alive():
            proc.terminate()
            proc.join()
            return None
        if proc.exitcode != 0:
            raise RuntimeError(f"hgmntk.kernels failed for {activation} (exit {proc.exitcode})")
        with np.load(out) as data:
            return {key: data[key] for key in data.files}


# --- comparison ---------------------------------------------------------------------------


def max_rel(a: np.ndarray, b: np.ndarray) -> str:
    """Largest |a - b| / |b| as text, with the count of non-finite entries of either."""
    bad = ~(np.isfinite(a) & np.isfinite(b))
    ok = ~bad
    if not ok.any():
        return f"nan{int(bad.sum())}"
    text = f"{np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok])):.1e}"
    return text + (f"+nan{int(bad.sum())}" if bad.any() else "")


def split_rel(a: np.ndarray, b: np.ndarray) -> tuple[str, str]:
    """max_rel of the off-diagonal entries and of the diagonal."""
    off = ~np.eye(a.shape[0], dtype=bool)
    return max_rel(a[off], b[off]), max_rel(np.diag(a), np.diag(b))


def reference(x: np.ndarray, name: str, pairs: np.ndarray) -> np.ndarray | None:
    """(nngp, ntk) at each sampled pair, shape (len(pairs), 2), or None without reference."""
    duals = COUNTERPARTS[name].duals
    if duals is None:
        return None
    ref = np.array([mp_kernel_entry(x[i], x[j], duals) for i, j in pairs])
    if name == "relu":  # the NTK from the benchmark's own arc-cosine recursion
        ref[:, 1] = [mp_ntk_entry(x[i], x[j], DEPTH, W_STD, B_STD, 40) for i, j in pairs]
    return ref


def ref_error(k_nngp: np.ndarray, k_ntk: np.ndarray, pairs: np.ndarray, ref) -> str:
    """Largest relative error of sampled entries against the reference, NNGP / NTK."""
    if ref is None:
        return "-"
    got = np.stack([k_nngp[pairs[:, 0], pairs[:, 1]], k_ntk[pairs[:, 0], pairs[:, 1]]], axis=1)
    return f"{max_rel(got[:, 0], ref[:, 0])} / {max_rel(got[:, 1], ref[:, 1])}"


def parse_cases(specs: list[str], cap: float) -> list[tuple[str, int, float]]:
    """'name:N[:CAP]' strings -> (name, N, cap in seconds); unknown names are an error."""
    cases = []
    for spec in specs:
        name, n, case_cap = (spec.split(":") + ["", ""])[:3]
        if name not in COUNTERPARTS:
            raise SystemExit(f"unknown activation {name!r}; known: {', '.join(COUNTERPARTS)}")
        cases.append((name, int(n or 20), float(case_cap or cap)))
    return cases


def run(args: argparse.Namespace) -> None:
    nt_python = Path(args.nt_python) if args.nt_python else default_nt_python()
    if not nt_python.exists():
        print(f"skipped: neural-tangents environment not found ({nt_python}); {SETUP_HINT}")
        return
    cases = parse_cases(args.cases, args.cap)
    rng = np.random.default_rng(SEED)
    x_all = rng.standard_normal((max(n for _, n, _ in cases), DIM))
    nt_cases, runnable = [], []
    for name, n, cap in cases:
        counterpart = COUNTERPARTS[name]
        if counterpart.stax is None:
            print(f"note: {name} skipped: {counterpart.note}")
            continue
        runnable.append((name, n, cap))
        nt_cases.append({
            "activation": counterpart.stax, "params": counterpart.params, "depth": DEPTH,
            "W_std": W_STD, "b_std": B_STD, "repeats": args.repeats, "n": n,
        })
    print(
        f"hgmntk {hgmntk.__version__ if hasattr(hgmntk, '__version__') else ''} vs "
        f"neural-tangents; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{platform.machine()}, {os.cpu_count()} cores; depth {DEPTH}, W_std {W_STD}, "
        f"b_std {B_STD}, X ~ N(0, I) in R^{DIM}, seed {SEED}", flush=True,
    )
    t0 = time.perf_counter()
    nt = call_nt_worker(nt_python, x_all, None, nt_cases)
    print(f"neural-tangents: {json.loads(str(nt['versions']))} "
          f"(worker wall time {time.perf_counter() - t0:.1f} s)")
    print(
        "rel. diff = max |hgmntk - NT| / |NT| (off-diagonal | diagonal); "
        f"ref. error = max rel. error of {args.sample} sampled entries (incl. 4 diagonal) "
        "against 40-digit mpmath, NNGP / NTK; nanK = K non-finite entries"
    )
    header = (
        f"{'activation':>10} {'N':>5} {'hgmntk s':>9} {'NT s':>9} {'NT jit s':>8} "
        f"{'ratio':>7} | {'nngp off':>9} {'nngp diag':>9} {'ntk off':>9} {'ntk diag':>9} | "
        f"{'hgmntk ref. error':>19} {'NT ref. error':>19}"
    )
    print(header)
    for i, (name, n, cap) in enumerate(runnable):
        x = x_all[:n]
        pairs = np.concatenate([
            rng.integers(0, n, size=(args.sample - 4, 2)),
            np.repeat(rng.integers(0, n, size=(4, 1)), 2, axis=1),
        ])
        nt_nngp, nt_ntk = nt[f"c{i}_d{DEPTH}_nngp"], nt[f"c{i}_d{DEPTH}_ntk"]
        nt_s, nt_jit = float(nt[f"c{i}_d{DEPTH}_best_s"]), float(nt[f"c{i}_d{DEPTH}_compile_s"])
        ref = reference(x, name, pairs)
        nt_err = ref_error(nt_nngp, nt_ntk, pairs, ref)
        hk = time_hgmntk(x, name, args.repeats, args.budget, cap)
        if hk is None:
            print(
                f"{name:>10} {n:>5} {'>' + format(cap, '.0f'):>9} {nt_s:>9.3g} "
                f"{nt_jit:>8.2f} {'-':>7} | (hgmntk stopped at the {cap:.0f} s cap) | "
                f"{'-':>19} {nt_err:>19}", flush=True,
            )
            continue
        if "error" in hk:
            print(
                f"{name:>10} {n:>5} {'failed':>9} {nt_s:>9.3g} {nt_jit:>8.2f} {'-':>7} | "
                f"hgmntk raised {str(hk['error'])[:60]} | {'-':>19} {nt_err:>19}", flush=True,
            )
            continue
        hk_s = float(hk["times"].min())
        nngp_off, nngp_diag = split_rel(hk["nngp"], nt_nngp)
        ntk_off, ntk_diag = split_rel(hk["ntk"], nt_ntk)
        hk_err = ref_error(hk["nngp"], hk["ntk"], pairs, ref)
        print(
            f"{name:>10} {n:>5} {hk_s:>9.3g} {nt_s:>9.3g} {nt_jit:>8.2f} {hk_s / nt_s:>7.3g} | "
            f"{nngp_off:>9} {nngp_diag:>9} {ntk_off:>9} {ntk_diag:>9} | "
            f"{hk_err:>19} {nt_err:>19}", flush=True,
        )
        note = COUNTERPARTS[name].note
        if note:
            print(f"{'':>10} note: {note}")
    print(
        f"(hgmntk: best of <= {args.repeats} runs, no new run after {args.budget:.0f} s; NT: best "
        f"of {args.repeats} runs after the jit run 'NT jit s'; "
        f"total {time.perf_counter() - t0:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nt-python", help="Python of the neural-tangents environment "
                        "(default: the location used by setup_nt_env.sh)")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                        help="name:N[:CAP] items (CAP: seconds for hgmntk, default --cap); "
                        f"names: {', '.join(COUNTERPARTS)}")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is reported)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="hgmntk: no new repeat once this many seconds are spent")
    parser.add_argument("--cap", type=float, default=90.0,
                        help="hgmntk: seconds after which a case is stopped (default cap)")
    parser.add_argument("--sample", type=int, default=20, help="entries checked against mpmath")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
