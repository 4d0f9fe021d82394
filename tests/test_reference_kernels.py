"""NNGP and NTK of deep networks against kernels.json (erf, gelu, resin; relu is in
test_reference_relu_step.py), by the HGM and by the closed forms (erf, gelu).

kernels.json holds, for data set gauss20_d5 and (W_std, b_std) in {(1.5, 0.1), (1, 0)}, the
kernels of depths 1, 3 and 5.  One recursion to the deepest depth per (W_std, b_std)
yields every shallower network as an intermediate layer (:func:`hgmntk.kernel_layers`), so
each configuration is computed once.  Every entry must agree to relative error 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

import hgmntk
from tests.conftest import kernel_results, mp_array

TOL = 1e-12


def _check(activation: str, method: str = "hgm") -> None:
    X, results = kernel_results(activation)
    configs = sorted({(float(r["W_std"]), float(r["b_std"])) for r in results})
    assert len(results) >= 6 and len(configs) >= 2
    for w_std, b_std in configs:
        mine = [r for r in results if (float(r["W_std"]), float(r["b_std"])) == (w_std, b_std)]
        deepest = max(r["depth"] for r in mine)
        layers = hgmntk.kernel_layers(
            X, activation=activation, depth=deepest, w_std=w_std, b_std=b_std, method=method
        )
        for r in mine:
            k = layers[r["depth"] - 1]
            assert k.depth == r["depth"]
            for field in ("nngp", "ntk"):
                ref = mp_array(r[field])
                rel = np.abs(getattr(k, field) - ref) / np.abs(ref)
                assert rel.max() <= TOL, (activation, w_std, b_std, r["depth"], field, rel.max())


def test_erf_kernels_match_reference():
    _check("erf")


@pytest.mark.parametrize("activation", ["erf", "gelu"])
def test_closed_form_kernels_match_reference(activation):
    """The smooth closed forms (hgmntk.plugins.smooth_forms): fast path and careful path."""
    _check(activation, method="closed")


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["resin", "gelu"])
def test_slow_kernels_match_reference(activation):
    _check(activation)


def test_kernel_layers_equal_separate_depths():
    """Layer h of one recursion is the depth-h network (relu, closed form)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 3))
    layers = hgmntk.kernel_layers(X, activation="relu", depth=3, w_std=1.3, b_std=0.2)
    for h, k in enumerate(layers, start=1):
        single = hgmntk.kernels(X, activation="relu", depth=h, w_std=1.3, b_std=0.2)
        np.testing.assert_array_equal(k.nngp, single.nngp)
        np.testing.assert_array_equal(k.ntk, single.ntk)
