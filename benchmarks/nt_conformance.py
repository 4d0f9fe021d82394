"""Conformance table: every stax nonlinearity of the stored neural-tangents data
(tests/data/nt_reference.json) against hgmntk's family of the same name and parameters.

    python benchmarks/nt_conformance.py            # prints a Markdown table

For each setting: how a user writes it for hgmntk, the integrator the default method
picks, and the largest relative difference to neural-tangents' float64 kernels over
depths 1-3 and both (W_std, b_std) of the file, off the diagonal and on it (an entry
below 1e-8 of its matrix's largest is compared to that; NaN entries of stax are left
out, and the kernels and depths left out by tests/test_vs_neural_tangents_data.py).  Where the
two differ by more than rounding, the row says which one is off (checked against the
exact dual in the tests).  neural-tangents is not needed: its values are stored.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

import hgmntk
from hgmntk.dual_activation import choose_integrator, get_activation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.test_vs_neural_tangents_data import (  # noqa: E402
    FAMILY_EXCEPTIONS,
    FAMILY_KERNELS,
    compared_depths,
    family_text,
    records,
    stax_settings,
)

NOTES = {
    "Sign": "NNGP, depth 1 only: stax drops sign' = 2 delta from the NTK, and its depth-2 "
            "NNGP is 1e-4 off at collinear pairs (hgmntk: 1.2e-15 against mpmath)",
    "RectifiedMonomial": "depth 1 only: stax returns NaN at angle-0 pairs (the diagonal) "
                         "and NaN almost everywhere from depth 2; degree 0: NNGP only (stax "
                         "drops the step's delta)",
    "Gelu": "stax's kernel is the exact gelu kernel whatever `approximate` says; "
            "hgmntk's gelu(approximate=True) is the tanh curve (quadrature only)",
    "Exp": "overflows float64 on these inputs for a = b = 1 (stax: inf entries; hgmntk: a "
           "clear error)",
}


def main() -> None:
    data = json.loads((ROOT / "tests" / "data" / "nt_reference.json").read_text())
    x = np.array(data["inputs"]["X"])
    off = ~np.eye(len(x), dtype=bool)
    print("| stax | hgmntk | method | max rel. diff, off-diagonal | on the diagonal | note |")
    print("|---|---|---|---|---|---|")
    for stax, params in stax_settings():
        shown = f"`{stax}({', '.join(f'{k}={v!r}' for k, v in params.items())})`"
        if stax in FAMILY_EXCEPTIONS:
            print(f"| {shown} | - | - | - | - | {FAMILY_EXCEPTIONS[stax]} |")
            continue
        text = family_text(stax, params)
        act = get_activation(text)
        method = choose_integrator(act, "ss", "auto").name
        worst_off = worst_diag = 0.0
        failed = ""
        which = FAMILY_KERNELS.get(stax, ("nngp", "ntk"))
        if stax == "RectifiedMonomial" and params["degree"] == 0:
            which = ("nngp",)
        for rs in records(stax, params).values():
            for r in compared_depths(stax, rs):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        k = hgmntk.kernels(x, activation=act, depth=r["depth"],
                                           w_std=r["W_std"], b_std=r["b_std"])
                except hgmntk.HgmntkError as exc:
                    failed = type(exc).__name__
                    continue
                for name in which:
                    want = np.array(r[name], dtype=float)
                    ok = np.isfinite(want)
                    # entries below 1e-8 of the matrix's largest are compared to that
                    floor = 1e-8 * np.max(np.abs(want[ok]))
                    rel = np.abs(getattr(k, name) - want) / np.maximum(np.abs(want), floor)
                    rel = np.where(ok, rel, 0)
                    worst_off = max(worst_off, float(np.max(rel[off])))
                    worst_diag = max(worst_diag, float(np.max(rel[~off])))
        note = NOTES.get(stax, "")
        if failed:
            note = f"{note} ({failed} on some records)".strip()
        print(f"| {shown} | `{act.name}` | {method} | {worst_off:.1e} | {worst_diag:.1e} "
              f"| {note} |")


if __name__ == "__main__":
    main()
