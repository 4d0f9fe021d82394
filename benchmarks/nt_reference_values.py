"""Write tests/data/nt_reference.json: neural-tangents' kernels of every stax nonlinearity.

Runs neural-tangents (float64) through ``benchmarks/nt_worker.py`` in its optional
environment (``bash benchmarks/setup_nt_env.sh``) and stores, for every elementwise
nonlinearity of stax with one or two parameter settings, the NNGP and NTK of the networks
``Dense(W, b), (Act, Dense(W, b)) * depth`` (NTK parameterization) of depths 1, 2, 3 on a
small fixed input set: 8 Gaussian points in R^4 (seed 0), a duplicate of point 0, a
positive multiple of point 1 and a negative multiple of point 2.  Non-finite values (stax
returns NaN in some places, and Exp overflows) are stored as the strings "nan", "inf",
"-inf" (``float()`` and ``numpy.array(..., dtype=float)`` read them).  Run once, by hand:

    python benchmarks/nt_reference_values.py [--nt-python PATH] [--out tests/data/nt_reference.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from vs_neural_tangents import SETUP_HINT, call_nt_worker, default_nt_python  # noqa: E402

DEPTHS = [1, 2, 3]
NETWORKS = [(1.5, 0.05), (1.0, 0.0)]  # (W_std, b_std); the second only for the first setting

# stax nonlinearity -> parameter settings (the first is the default one where there is one).
SETTINGS: dict[str, list[dict]] = {
    "Relu": [{}],
    "LeakyRelu": [{"alpha": 0.1}, {"alpha": 0.5}],
    "ABRelu": [{"a": -0.5, "b": 2.0}, {"a": 0.3, "b": 1.0}],
    "Abs": [{}],
    "Sign": [{}],
    "Erf": [{"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.5, "b": 2.0, "c": 0.1}],
    "Sigmoid_like": [{}],
    "Gelu": [{"approximate": False}, {"approximate": True}],
    "Sin": [{"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 1.5, "b": 0.5, "c": 0.3}],
    "Cos": [{"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 1.0, "b": 2.0, "c": 0.0}],
    "Exp": [{"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 0.3}],
    "Gaussian": [{"a": 1.0, "b": -1.0}, {"a": 1.0, "b": -0.5}],
    "ExpNormalized": [{"gamma": 1.0, "shift": -1.0, "do_clip": False}, {"gamma": 2.0}],
    "Hermite": [{"degree": 1}, {"degree": 2}, {"degree": 3}],
    "Monomial": [{"degree": 1}, {"degree": 2}, {"degree": 3}],
    "RectifiedMonomial": [{"degree": 0}, {"degree": 1}, {"degree": 2}, {"degree": 3}],
    "Polynomial": [{"coef": [0.1, 1.0, 0.5]}, {"coef": [0.0, 0.0, 1.0]}],
    "Rbf": [{"gamma": 1.0}, {"gamma": 0.5}],
    "Gabor": [{}],
}

CONVENTION = (
    "neural_tangents.stax.serial(Dense(1, W_std, b_std, parameterization='ntk'), "
    "(Act, Dense(1, W_std, b_std, parameterization='ntk')) * depth); "
    "kernel_fn(X, None, ('nngp', 'ntk')) with jax_enable_x64; "
    "Sigma_0 = W_std^2 x.x'/d + b_std^2, NTK_0 = Sigma_0"
)


def inputs() -> np.ndarray:
    """8 points ~ N(0, I) in R^4 (seed 0), a duplicate and a collinear pair (+, -)."""
    x = np.random.default_rng(0).standard_normal((8, 4))
    return np.vstack([x, x[0], 2.5 * x[1], -0.5 * x[2]])


def as_json_matrix(m: np.ndarray) -> list[list[float | str]]:
    """Rows of floats, non-finite entries as the strings 'nan', 'inf', '-inf'."""
    return [[float(v) if np.isfinite(v) else str(float(v)) for v in row] for row in m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nt-python", help="Python of the neural-tangents environment")
    parser.add_argument("--out", type=Path, default=HERE.parent / "tests/data/nt_reference.json")
    args = parser.parse_args()
    nt_python = Path(args.nt_python) if args.nt_python else default_nt_python()
    if not nt_python.exists():
        raise SystemExit(f"neural-tangents environment not found ({nt_python}); {SETUP_HINT}")
    x = inputs()
    cases = []
    for name, settings in SETTINGS.items():
        for k, params in enumerate(settings):
            for w_std, b_std in NETWORKS if k == 0 else NETWORKS[:1]:
                cases.append({
                    "activation": name, "params": params, "depths": DEPTHS,
                    "W_std": w_std, "b_std": b_std, "repeats": 0,
                })
    t0 = time.perf_counter()
    out = call_nt_worker(nt_python, x, None, cases)
    records = []
    for i, case in enumerate(cases):
        for depth in DEPTHS:
            records.append({
                "stax": case["activation"], "params": case["params"], "depth": depth,
                "W_std": case["W_std"], "b_std": case["b_std"],
                "nngp": as_json_matrix(out[f"c{i}_d{depth}_nngp"]),
                "ntk": as_json_matrix(out[f"c{i}_d{depth}_ntk"]),
            })
    data = {
        "description": "NNGP/NTK of stax elementwise nonlinearities computed by neural-tangents "
        "in float64 (see tests/data/README.md); 'nan', 'inf': non-finite values returned by stax",
        "versions": json.loads(str(out["versions"])),
        "created": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}",
        "convention": CONVENTION,
        "inputs": {
            "X": x.tolist(),
            "rows": "0-7: N(0, I) in R^4 (numpy default_rng(0)); 8: copy of row 0; "
            "9: 2.5 * row 1; 10: -0.5 * row 2",
        },
        "records": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    print(f"{len(records)} records ({len(cases)} networks) written to {args.out} "
          f"in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
