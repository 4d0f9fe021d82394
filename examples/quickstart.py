"""A five-minute tour of hgmntk on the built-in plugins (runs in a few seconds).

    python examples/quickstart.py
"""

from __future__ import annotations

import numpy as np

import hgmntk

# 1. One dual activation value, three ways: closed form, HGM (with error estimate), quadrature.
a, b, c = 1.0, 2.0, 0.9
closed = hgmntk.dual("relu", a, b, c, method="closed")
hgm, err = hgmntk.dual("relu", a, b, c, method="hgm", return_error=True)
gh = hgmntk.dual("relu", a, b, c, method="gauss-hermite", degree=50)
print(f"E[relu(u) relu(v)]  closed {closed:.17g}  hgm {hgm:.17g} (+- {err:.1e})  GH {gh:.10g}")

# 2. Near rho = 1 the HGM keeps full relative accuracy (Price's theorem at the ends).
rho = 1 - 1e-10
print("E[Y(u)Y(v)] at rho = 1 - 1e-10:", hgmntk.dual("step", 1.0, 1.0, rho, method="hgm"))

# 3. NNGP and NTK of a depth-3 ReLU network, and the same with a near-duplicate point.
rng = np.random.default_rng(0)
X = rng.standard_normal((6, 4))
X[5] = X[0] + 1e-8  # near-duplicate of the first point
k = hgmntk.kernels(X, activation="relu", depth=3, w_std=1.5, b_std=0.1, method="hgm")
print("NTK diagonal:", np.round(np.diag(k.ntk), 6))
print("NTK(x0, x0 + 1e-8) / NTK(x0, x0) - 1 =", k.ntk[0, 5] / k.ntk[0, 0] - 1)

# 4. Kernel regression: the NTK (the network trained by gradient descent to convergence) and
#    the NNGP (the Bayesian posterior, with a calibrated predictive band); the ridge is
#    chosen by leave-one-out cross-validation.  The NTK's ensemble_std is the spread of
#    trained networks over initialisations, not an error bar.
Xtr, Xte = rng.standard_normal((40, 2)), rng.standard_normal((5, 2))
truth = lambda x: np.sin(2 * x[:, 0]) + x[:, 1] ** 2  # noqa: E731
ytr = truth(Xtr) + 0.05 * rng.standard_normal(40)
ntk = hgmntk.KernelRegressor("relu", depth=2, b_std=0.1).fit(Xtr, ytr)
nngp = hgmntk.KernelRegressor("relu", depth=2, b_std=0.1, kernel="nngp").fit(Xtr, ytr)
mean, band = nngp.predict(Xte, return_std=True)
print(f"ridge by leave-one-out: NTK {ntk.ridge_:.2g}, NNGP {nngp.ridge_:.2g}")
for m_ntk, spread, m, s, t in zip(ntk.predict(Xte), ntk.ensemble_std(Xte), mean, band,
                                  truth(Xte)):
    print(f"truth {t:+.3f}   NTK {m_ntk:+.3f} (spread over inits {spread:.3f})   "
          f"NNGP {m:+.3f}, 95% band [{m - 2 * s:+.3f}, {m + 2 * s:+.3f}]")

# 5. What is registered.
print("activations:", ", ".join(sorted(hgmntk.plugin_manager.get_registry().activations)))
