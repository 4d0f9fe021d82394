"""Figures (matplotlib, the optional extra ``hgmntk[plot]``).

Each function draws one kind of figure into a new :class:`matplotlib.figure.Figure`
(object-oriented, no pyplot state, no display needed), writes it to ``out`` when given
(the format from the suffix, e.g. ``.png``) and returns the figure:

* :func:`duals`: E[s(u) s(v)] and E[s'(u) s'(v)] against rho for several activations and
  variances (a = b);
* :func:`regression`: 1-D kernel regression with the NNGP (posterior mean, +-2 predictive
  std) and the NTK (trained network's mean, +-2 std over initialisations), as in Sakoda and
  Takayama's figures (relu, gelu and erf by default: resin's kernels on a 1-D grid, whose
  neighbours have rho within 1e-4 of 1, take the precise path at ~1 s per pair, minutes
  in all);
* :func:`hermite_decay`: |h_n| of the Hermite coefficients against n, log-log;
* :func:`finite_width`: the relative Frobenius distance of finite-width kernels to the
  exact ones against the width, with the width^(-1/2) line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

#: Size of every figure in inches and its resolution (the PNG is 10 x 4.5 in at 100 dpi:
#: 1000 x 450 pixels).
FIGSIZE = (10.0, 4.5)
DPI = 100


def _figure():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InvalidInputError(
            "figures need matplotlib: pip install 'hgmntk[plot]' (or pip install matplotlib)"
        ) from None
    return Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")


def _save(fig, out: str | Path | None):
    if out is not None:
        fig.savefig(out, dpi=DPI)
    return fig


def duals(activations: Sequence[str] = ("relu", "erf", "gelu", "resin"),
          variances: Sequence[float] = (0.5, 1.0, 2.0), *, points: int = 201,
          out: str | Path | None = None):
    """E[s s] (left) and E[s' s'] (right) at a = b = v, c = rho v, rho in [-1, 1]: one
    colour per activation, one line style per variance."""
    from .dual_activation import dual

    fig = _figure()
    left, right = fig.subplots(1, 2)
    rho = np.linspace(-1.0, 1.0, points)
    styles = ("-", "--", ":", "-.")
    for i, name in enumerate(activations):
        for j, v in enumerate(variances):
            style = dict(color=f"C{i}", linestyle=styles[j % len(styles)])
            label = f"{name}, a = b = {v:g}"
            left.plot(rho, dual(name, v, v, rho * v), label=label, **style)
            with np.errstate(all="ignore"):
                deriv = dual(name, v, v, rho * v, derivative=True)
            right.plot(rho, np.where(np.isfinite(deriv), deriv, np.nan), label=label, **style)
    left.set(xlabel="rho", ylabel="E[s(u) s(v)]", title="dual activation")
    right.set(xlabel="rho", ylabel="E[s'(u) s'(v)]", title="dual of the derivative")
    left.legend(fontsize="x-small")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return _save(fig, out)


def regression(activations: Sequence[str] = ("relu", "gelu", "erf"), *, depth: int = 2,
               w_std: float = 1.5, b_std: float = 0.5, ridge: float | str = 0.01,
               seed: int = 0, out: str | Path | None = None):
    """1-D regression of y = sin(2x) + x/2 + noise (12 points on [-2.5, 2.5]): per
    activation the NNGP posterior mean with +-2 predictive std (top) and the NTK
    regressor's mean with +-2 std over random initialisations (bottom), with ``ridge``
    (see :class:`hgmntk.KernelRegressor`; "loo" selects it by leave-one-out)."""
    from .regression import KernelRegressor

    fig = _figure()
    axes = fig.subplots(2, len(activations), sharex=True, squeeze=False)
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2.5, 2.5, 12))
    y = np.sin(2 * x) + x / 2 + 0.1 * rng.standard_normal(x.size)
    grid = np.linspace(-4.0, 4.0, 161)
    for col, name in enumerate(activations):
        for row, kind in enumerate(("nngp", "ntk")):
            model = KernelRegressor(name, depth, w_std=w_std, b_std=b_std, kernel=kind,
                                    ridge=ridge, progress=False).fit(x[:, None], y)
            if kind == "nngp":
                mean, std = model.predict(grid[:, None], return_std=True)
            else:
                mean, std = model.predict(grid[:, None]), model.ensemble_std(grid[:, None])
            ax = axes[row, col]
            ax.fill_between(grid, mean - 2 * std, mean + 2 * std, color=f"C{col}", alpha=0.25)
            ax.plot(grid, mean, color=f"C{col}")
            ax.plot(x, y, "k.", markersize=5)
            ax.set_title(f"{name}, {kind.upper()}", fontsize="small")
            ax.grid(alpha=0.3)
    return _save(fig, out)


def hermite_decay(activations: Sequence[str] = ("relu", "gelu", "resin", "elu", "erf"),
                  n_max: int = 200, variance: float = 1.0, *, out: str | Path | None = None):
    """|h_n| (the nonzero ones) against n on log-log axes, one line per activation."""
    from .hermite import hermite

    fig = _figure()
    ax = fig.subplots()
    n = np.arange(n_max + 1)
    for i, name in enumerate(activations):
        h = np.abs(hermite(name, n_max, variance))
        keep = (h > 0) & (n > 0)
        ax.loglog(n[keep], h[keep], ".", color=f"C{i}", markersize=4, label=name)
    ax.set(xlabel="n", ylabel="|h_n|",
           title=f"Hermite coefficients h_n = E[s(sqrt(a) X) He_n(X)] / sqrt(n!), a = "
                 f"{variance:g}")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, out)


def finite_width(activations: Sequence[str] = ("relu", "erf", "resin"),
                 widths: Sequence[int] = (64, 128, 256, 512, 1024, 2048, 4096),
                 seeds: int = 3, *, depth: int = 2, points: int = 20,
                 out: str | Path | None = None):
    """Relative Frobenius distance of the empirical NNGP (left) and NTK (right) to the
    exact kernels against the width (mean over ``seeds``), with a width^(-1/2) line."""
    from .deep_kernels import kernels
    from .empirical import empirical_kernels

    fig = _figure()
    axes = fig.subplots(1, 2)
    x = np.random.default_rng(1).standard_normal((points, 5))
    widths = np.asarray(widths)
    for i, name in enumerate(activations):
        exact = kernels(x, activation=name, depth=depth, w_std=1.3, b_std=0.2)
        for ax, kind in zip(axes, ("nngp", "ntk")):
            ref = getattr(exact, kind)
            dist = [np.mean([np.linalg.norm(getattr(empirical_kernels(
                x, activation=name, depth=depth, width=int(w), w_std=1.3, b_std=0.2,
                seed=s), kind) - ref) / np.linalg.norm(ref) for s in range(seeds)])
                for w in widths]
            ax.loglog(widths, dist, "o-", color=f"C{i}", label=name)
            if i == 0:
                ax.loglog(widths, dist[0] * np.sqrt(widths[0] / widths), "k--",
                          label="width^(-1/2)")
    for ax, kind in zip(axes, ("NNGP", "NTK")):
        ax.set(xlabel="width", ylabel="relative distance to the limit",
               title=f"empirical {kind}, depth {depth}")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3, which="both")
    return _save(fig, out)


#: The kinds of ``hgmntk plot KIND``.
KINDS = {"duals": duals, "regression": regression, "hermite": hermite_decay,
         "finite-width": finite_width}
