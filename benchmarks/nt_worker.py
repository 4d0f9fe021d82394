"""Compute NNGP/NTK kernels with neural-tangents, in its own environment.

Run with the Python of the optional neural-tangents environment (created by
``benchmarks/setup_nt_env.sh``), never with hgmntk's: hgmntk does not import
neural-tangents, it calls this script as a subprocess.

    NT_PYTHON benchmarks/nt_worker.py REQUEST OUT.npz
    NT_PYTHON benchmarks/nt_worker.py --list        # stax nonlinearities of this version

REQUEST is a ``.json`` file or an ``.npz`` file.  A ``.json`` request holds ``X`` (list of
rows), optionally ``X2``, and ``cases``; an ``.npz`` request holds the arrays ``X`` (and
``X2``) and a string entry ``request`` with the same JSON (without the arrays).  Each case is

    {"activation": "Erf", "params": {"a": 1, "b": 1, "c": 0},
     "depths": [1, 2, 3], "W_std": 1.5, "b_std": 0.05, "repeats": 3}

(``depth`` may replace ``depths``; an optional ``"n": N`` uses the first N rows of ``X``
and of ``X2``).  A case with ``"empirical": true`` and ``"width": W`` (one ``depth``) asks
for the empirical NTK of one initialised network instead (keys ``c{i}_e_ntk``,
``c{i}_e_best_s``, ``c{i}_e_compile_s``, ``c{i}_e_times``).  For every depth the network is

    stax.serial(Dense(W_std, b_std), Act, Dense(W_std, b_std), Act, ..., Dense(W_std, b_std))

with ``parameterization="ntk"`` and ``depth`` copies of ``Act``, and
``kernel_fn(x1, x2, ("nngp", "ntk"))`` is evaluated in float64 (``jax_enable_x64``).
Timing: the jitted kernel function is called once (compilation and first run, reported as
``compile_s``), then ``repeats`` times with ``block_until_ready``; ``best_s`` is the fastest.

OUT.npz holds, for case ``i`` and depth ``h``, ``c{i}_d{h}_nngp``, ``c{i}_d{h}_ntk``,
``c{i}_d{h}_compile_s``, ``c{i}_d{h}_best_s``, ``c{i}_d{h}_times`` and ``versions`` (JSON).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # neural-tangents imports TensorFlow

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

# Elementwise nonlinearities of stax that a request may name (all take plain parameters;
# ``Elementwise`` and ``ElementwiseNumerical`` take Python callables and are left out).
NONLINEARITIES = (
    "ABRelu", "Abs", "Cos", "Erf", "Exp", "ExpNormalized", "Gabor", "Gaussian", "Gelu",
    "Hermite", "LeakyRelu", "Monomial", "Polynomial", "Rbf", "RectifiedMonomial", "Relu",
    "Sigmoid_like", "Sign", "Sin",
)


def available() -> dict[str, str]:
    """Name -> signature of the supported nonlinearities that this stax version has."""
    return {
        name: str(
            inspect.signature(getattr(stax, name)).replace(
                return_annotation=inspect.Signature.empty
            )
        )
        for name in NONLINEARITIES
        if hasattr(stax, name)
    }


def network(activation: str, params: dict, depth: int, w_std: float, b_std: float):
    """The kernel function of Dense, (Act, Dense) * depth in the NTK parameterization."""
    if activation not in available():
        raise ValueError(f"unknown stax nonlinearity {activation!r}; known: {list(available())}")
    layers = [stax.Dense(1, w_std, b_std, parameterization="ntk")]
    for _ in range(depth):
        layers += [
            getattr(stax, activation)(**params),
            stax.Dense(1, w_std, b_std, parameterization="ntk"),
        ]
    _, _, kernel_fn = stax.serial(*layers)
    return kernel_fn


def run_empirical(x1, x2, case: dict) -> dict[str, np.ndarray]:
    """The empirical NTK of one initialised network of ``width`` units per hidden layer
    (the same stack with Dense(width) layers and one output), by ``empirical_ntk_fn``
    with ``implementation`` (default 3, structured derivatives), jitted; timed like the
    kernels."""
    import neural_tangents as nt

    width, depth = int(case["width"]), int(case["depth"])
    layers = [stax.Dense(width, case["W_std"], case["b_std"], parameterization="ntk")]
    for i in range(depth):
        layers += [
            getattr(stax, case["activation"])(**case.get("params", {})),
            stax.Dense(width if i < depth - 1 else 1, case["W_std"], case["b_std"],
                       parameterization="ntk"),
        ]
    init_fn, apply_fn, _ = stax.serial(*layers)
    _, params = init_fn(jax.random.PRNGKey(int(case.get("seed", 0))), x1.shape)
    fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0,
                                     implementation=int(case.get("implementation", 3))))
    t0 = time.perf_counter()
    ntk = jax.block_until_ready(fn(x1, x2, params))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(int(case.get("repeats", 3))):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(x1, x2, params))
        times.append(time.perf_counter() - t0)
    return {"e_ntk": np.asarray(ntk, dtype=np.float64).reshape(x1.shape[0], -1),
            "e_compile_s": np.float64(compile_s), "e_times": np.array(times),
            "e_best_s": np.float64(min(times))}


def run_case(x1, x2, case: dict) -> dict[str, np.ndarray]:
    """Kernels and timings of one case, for each of its depths (the empirical NTK with
    ``"empirical": true``, see :func:`run_empirical`)."""
    if case.get("empirical"):
        return run_empirical(x1, x2, case)
    depths = case.get("depths", [case.get("depth")])
    repeats = int(case.get("repeats", 3))
    if case.get("n") is not None:
        n = int(case["n"])
        x1 = x1[:n]
        x2 = None if x2 is None else x2[:n]
    out = {}
    for depth in depths:
        kernel_fn = network(
            case["activation"], case.get("params", {}), int(depth),
            float(case["W_std"]), float(case["b_std"]),
        )
        fn = jax.jit(lambda a, b, f=kernel_fn: f(a, b, ("nngp", "ntk")))
        t0 = time.perf_counter()
        nngp, ntk = jax.block_until_ready(fn(x1, x2))
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(x1, x2))
            times.append(time.perf_counter() - t0)
        out[f"d{depth}_nngp"] = np.asarray(nngp, dtype=np.float64)
        out[f"d{depth}_ntk"] = np.asarray(ntk, dtype=np.float64)
        out[f"d{depth}_compile_s"] = np.float64(compile_s)
        out[f"d{depth}_times"] = np.array(times)
        out[f"d{depth}_best_s"] = np.float64(min(times) if times else compile_s)
    return out


def read_request(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(X, X2 or None, request dict) from a .json or .npz request."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            request = json.loads(str(data["request"]))
            x1 = np.array(data["X"], dtype=np.float64)
            x2 = np.array(data["X2"], dtype=np.float64) if "X2" in data else None
    else:
        request = json.loads(path.read_text())
        x1 = np.array(request.pop("X"), dtype=np.float64)
        x2 = request.pop("X2", None)
        x2 = None if x2 is None else np.array(x2, dtype=np.float64)
    return x1, x2, request


def versions() -> dict[str, str]:
    """Versions of the packages that produced the numbers."""
    import importlib.metadata as md

    return {
        "neural_tangents": md.version("neural-tangents"),
        "jax": jax.__version__,
        "jaxlib": md.version("jaxlib"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "x64": str(jax.config.jax_enable_x64),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", nargs="?", type=Path)
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--list", action="store_true", help="print the nonlinearities and exit")
    args = parser.parse_args()
    if args.list:
        print(json.dumps({"versions": versions(), "nonlinearities": available()}, indent=1))
        return
    if args.request is None or args.out is None:
        parser.error("REQUEST and OUT are required (or --list)")
    x1, x2, request = read_request(args.request)
    x1 = jnp.asarray(x1)
    x2 = None if x2 is None else jnp.asarray(x2)
    results: dict[str, np.ndarray] = {"versions": np.array(json.dumps(versions()))}
    for i, case in enumerate(request["cases"]):
        for key, value in run_case(x1, x2, case).items():
            results[f"c{i}_{key}"] = value
    np.savez(args.out, **results)


if __name__ == "__main__":
    main()
