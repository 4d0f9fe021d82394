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

# 4. Kernel regression with the NTK (gradient descent to convergence) and its uncertainty.
Xtr, Xte = rng.standard_normal((40, 2)), rng.standard_normal((5, 2))
ytr = np.sin(2 * Xtr[:, 0]) + Xtr[:, 1] ** 2
model = hgmntk.KernelRegressor("relu", depth=2, b_std=0.1, ridge=1e-6).fit(Xtr, ytr)
mean, std = model.predict(Xte, return_std=True)
for m, s, t in zip(mean, std, np.sin(2 * Xte[:, 0]) + Xte[:, 1] ** 2):
    print(f"predict {m:+.4f} +- {s:.4f}   truth {t:+.4f}")

# 5. What is registered.
print("activations:", ", ".join(sorted(hgmntk.plugin_manager.get_registry().activations)))
