"""Derive the activation files shipped in ``hgmntk/plugins/data`` and check them.

Run ``python -m hgmntk.cas_bridge.builtin_data [--check-only] [names...]``.  Every derived
dual is checked before it is written:

* F(x0) against a direct 2-D quadrature of E[s(u)s(v)] at L = I/2 (the base point);
* the whole system against the reference values of ``shared/reference/duals.json`` (when
  found) at moderate points (a, b in {1, 3}, |rho| <= 0.9), by integrating the Pfaffian ODE
  with SciPy's DOP853 along the straight segment from the base point (an independent,
  deliberately simple integrator, not hgmntk's HGM integrator).

relu.json and step.json are hand-written and never overwritten.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..activation import Activation
from ..system import PfaffianSystem

#: name -> (expression, description)
BUILTINS: dict[str, tuple[str, str]] = {
    "gelu": ("u*(1 + erf(u/sqrt(2)))/2", "Gaussian error linear unit u Phi(u)"),
    "erf": ("erf(u)", "error function erf(u)"),
    "resin": ("Heaviside(u)*sin(u)", "rectified sine Y(u) sin(u)"),
    "sin": ("sin(u)", "sine"),
    "cos": ("cos(u)", "cosine"),
    "relu2": ("u**2*Heaviside(u)", "rectified square u^2 Y(u)"),
    "relu3": ("u**3*Heaviside(u)", "rectified cube u^3 Y(u)"),
    "leaky_relu": ("u*Heaviside(u) + u*Heaviside(-u)/10", "leaky ReLU with slope 1/10"),
    "abs": ("Abs(u)", "absolute value |u|"),
    "elu": ("u*Heaviside(u) + (exp(u) - 1)*Heaviside(-u)",
            "exponential linear unit: u (u > 0), exp(u) - 1 (u < 0)"),
    "exp": ("exp(u)", "exponential"),
    "gauss": ("exp(-u**2/2)", "Gaussian exp(-u^2/2)"),
}
PROTECTED = ("relu", "step")


def data_dir() -> Path:
    """The plugins/data directory of this checkout (a sibling of cas_bridge/)."""
    return Path(__file__).resolve().parent.parent / "plugins" / "data"


def reference_file() -> Path | None:
    """shared/reference/duals.json next to the checkout, if present."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "shared" / "reference" / "duals.json"
        if cand.exists():
            return cand
    return None


def _complex_matrices(system: PfaffianSystem):
    """P_i as one NumPy function of a complex point (x11, x12, x22), from the stored data."""
    monos: dict[tuple[int, ...], int] = {}
    for m in system.matrices:
        for row in m.numerators:
            for poly in row:
                for mono in poly.terms:
                    monos.setdefault(mono, len(monos))
    exps = np.array(list(monos) or [(0, 0, 0)], dtype=int)
    r = system.rank
    coefs = []
    for m in system.matrices:
        c = np.zeros((r * r, len(exps)))
        for i, row in enumerate(m.numerators):
            for j, poly in enumerate(row):
                for mono, v in poly.terms.items():
                    c[i * r + j, monos[mono]] = float(v)
        coefs.append(c.astype(complex))
    factors = [(np.array(list(f.terms), dtype=int),
                np.array([float(v) for v in f.terms.values()])) for f in system.factors]
    top = max([int(exps.max())] + [int(ex.max()) for ex, _ in factors if ex.size]) + 1

    def monomials(pw, ex):
        return pw[0][ex[:, 0]] * pw[1][ex[:, 1]] * pw[2][ex[:, 2]]

    def evaluate(x):
        x = np.asarray(x, dtype=complex)
        pw = [np.cumprod(np.concatenate([[1.0 + 0j], np.full(top - 1, v)])) for v in x]
        mv = monomials(pw, exps)
        fv = [np.sum(cf * monomials(pw, ex)) for ex, cf in factors]
        out = []
        for c, m in zip(coefs, system.matrices, strict=True):
            den = complex(float(m.constant))
            for k, e in m.factor_powers:
                den *= fv[k] ** e
            out.append((c @ mv).reshape(r, r) / den)
        return out

    return evaluate


def ode_dual(system: PfaffianSystem, a: float, b: float, c: float, detour: float = 0.0,
             _cache: dict | None = None, start: tuple | None = None,
             max_evaluations: int = 6000) -> float:
    """E = sqrt(det x)/pi * Ehat(x), x = -1/2 L^-1, by integrating the Pfaffian ODE.

    dF/dt = sum_i x'(t)_i P_i(x(t)) F on t in [0, 1] with DOP853 (rtol 1e-12) along
    x(t) = x0 + t (x1 - x0) + i detour |x1 - x0| sin(pi t) (1, 1/2, 1): a small complex
    detour (detour > 0) steps around apparent singularities (zeros of denominator factors)
    that the straight real segment may cross; Ehat is analytic near the negative definite
    cone.  With detour = 0 (default; derived systems are admissible) the path is real.
    ``start`` = (x0, F(x0)) replaces the system's base point and initial values.
    """
    from scipy.integrate import solve_ivp

    if detour:
        key = id(system)
        cache = _MATRIX_CACHE if _cache is None else _cache
        if key not in cache:
            cache[key] = (system, _complex_matrices(system))
        mats = cache[key][1]
    else:  # the system's own float evaluator (admissible systems: no pole on the segment)

        def mats(x):
            return [m[0] for m in system.matrices_at([np.array([v.real]) for v in x])]

    det_l = a * b - c * c
    x1 = np.array([-b / (2 * det_l), c / (2 * det_l), -a / (2 * det_l)])
    x0 = system.base_point_float if start is None else np.asarray(start[0], dtype=float)
    dx = x1 - x0
    bump = detour * float(np.linalg.norm(dx)) * np.array([1.0, 0.5, 1.0])

    calls = [0]

    def rhs(t, f):
        calls[0] += 1
        if calls[0] > max_evaluations:
            raise _TooExpensive(f"more than {max_evaluations} ODE evaluations (t = {t:.3g})")
        x = x0 + t * dx + 1j * math.sin(math.pi * t) * bump
        dxdt = dx + 1j * math.pi * math.cos(math.pi * t) * bump
        p = mats(x)
        return sum(dxdt[i] * p[i] for i in range(3)) @ f

    f0 = (system.initial_values_float if start is None
          else np.asarray(start[1], dtype=float)).astype(complex)
    atol = 1e-15 * max(float(np.abs(f0).max()), 1e-300)
    sol = solve_ivp(rhs, (0.0, 1.0), f0, method="DOP853", rtol=1e-12, atol=atol)
    if not sol.success:
        raise RuntimeError(sol.message)
    det_x = x1[0] * x1[2] - x1[1] ** 2
    return float(math.sqrt(det_x) / math.pi * sol.y[0, -1].real)


_MATRIX_CACHE: dict = {}


class _TooExpensive(RuntimeError):
    """The ODE check needs too many steps (stiff path or a pole near it)."""


def quadrature_dual(expr: str, a: float, b: float, c: float, n: int = 160) -> float:
    """E[s(u)s(v)] by tensor Gauss-Hermite quadrature (smooth activations only; coarse)."""
    from ..expressions import lambdify_activation

    fn = lambdify_activation(expr)
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    chol = np.linalg.cholesky(np.array([[a, c], [c, b]]))
    zz1, zz2 = np.meshgrid(z, z, indexing="ij")
    u = chol[0, 0] * zz1
    v = chol[1, 0] * zz1 + chol[1, 1] * zz2
    return float(np.sum(np.outer(w, w) * fn(u) * fn(v)))


def _start_point(act: Activation, key: str, system: PfaffianSystem) -> tuple | None:
    """None, or (x, F(x)) at x = x0 + (0, 1/20, 0) when P has a pole at the base point."""
    from .moments import series_values

    with np.errstate(all="ignore"):
        mats = system.matrices_at([np.array([v]) for v in system.base_point_float])
    if all(np.isfinite(m).all() for m in mats):
        return None
    expr = act.function_expression(key)
    point = system.base_point_float + np.array([0.0, 0.05, 0.0])
    values = series_values(expr, expr, system.standard_monomials,
                           [system.base_point[0], "1/20", system.base_point[2]], dps=20)
    return point, [float(v) for v in values]


def check(act: Activation, references: Sequence[dict] | None, verbose: bool = True,
          max_points: int = 3) -> float:
    """Worst relative error of the ODE-integrated duals against the reference values."""
    worst = 0.0
    for key, field in (("ss", "E_ss"), ("dsds", "E_dsds")):
        system = act.duals[key]
        # the base point: E at L = I/2 from F(x0) versus 2-D quadrature
        f0 = system.initial_values_float[0]
        e0 = f0 / math.pi  # sqrt(det x0) = 1
        expr = act.function_expression(key)
        if expr and "DiracDelta" not in expr and "Heaviside" not in expr and "Abs" not in expr:
            q = quadrature_dual(expr, 0.5, 0.5, 0.0)
            err = abs(q - e0) / max(abs(q), 1e-300)
            if err > 1e-9 and abs(q - e0) > 1e-12:
                raise AssertionError(f"{act.name} {key}: F(x0) {e0} vs quadrature {q}")
        start = _start_point(act, key, system)
        chosen = [
            rec for rec in references or ()
            if rec["activation"] == act.name and rec[field] not in ("inf", None)
            and rec["a"] in (1.0, 3.0) and rec["b"] in (1.0, 3.0)
            and abs(rec["c"]) / math.sqrt(rec["a"] * rec["b"]) < 0.91
        ]
        for rec in chosen[:: max(1, len(chosen) // max_points)]:
            a, b, c = rec["a"], rec["b"], rec["c"]
            rho = c / math.sqrt(a * b)
            if start is not None and abs(rho) < 1e-3:
                continue  # P has a pole on x12 = 0: not evaluable there by this simple ODE
            ref = float(rec[field])
            try:
                val = ode_dual(system, a, b, c, start=start)
            except _TooExpensive as exc:
                print(f"  {act.name} {key} a={a} b={b} rho={rho:.3f}: not checked ({exc})")
                continue
            err = abs(val - ref) / max(abs(ref), 1e-12)
            worst = max(worst, err)
            if verbose and err > 1e-8:
                print(f"  {act.name} {key} a={a} b={b} rho={rho:.3f}: {val!r} vs {ref!r}")
    return worst


def save_compact(act: Activation, path: Path) -> None:
    """Write the activation file as compact JSON (atomic: temporary file, then rename)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(act.to_json(), fh, separators=(",", ":"))
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Derive (or with --check-only, re-check) the built-in activation files."""
    from .derive import derive_activation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="activations (default: all)")
    parser.add_argument("--check-only", action="store_true", help="check the existing files")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument("--points", type=int, default=2,
                        help="reference points checked per dual by ODE integration")
    args = parser.parse_args(argv)
    names = args.names or list(BUILTINS)
    out = args.out or data_dir()
    ref_path = reference_file()
    references = json.loads(ref_path.read_text()) if ref_path else None
    if references is None:
        print("reference values not found: only the quadrature check runs")
    status = 0
    for name in names:
        if name in PROTECTED:
            print(f"{name}: hand-written, not touched")
            continue
        if name not in BUILTINS:
            print(f"{name}: unknown built-in")
            status = 1
            continue
        expr, description = BUILTINS[name]
        t0 = time.perf_counter()
        if args.check_only:
            act = Activation.load(out / f"{name}.json")
        else:
            act = derive_activation(
                expr, name=name, description=description,
                progress=lambda step, t, n=name: print(f"  {n}: {t:6.1f}s {step}", flush=True)
                if "pass" not in step else None)
        dt = time.perf_counter() - t0
        try:
            worst = check(act, references, max_points=args.points)
        except (AssertionError, RuntimeError) as exc:
            print(f"{name}: CHECK FAILED: {exc}")
            status = 1
            continue
        ranks = {k: v.rank for k, v in act.duals.items()}
        ok = worst < 1e-8
        print(f"{name}: ranks {ranks}, {dt:.1f} s, worst relative error {worst:.1e} "
              f"{'ok' if ok else 'FAILED'}")
        if not ok:
            status = 1
            continue
        if not args.check_only:
            save_compact(act, out / f"{name}.json")
    return status


if __name__ == "__main__":
    sys.exit(main())
