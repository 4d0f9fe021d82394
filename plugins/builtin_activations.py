"""Built-in activations: every activation file shipped in ``hgmntk/plugins/data``.

Registered through the same hook as third-party plugins.  Closed forms, where known, are
attached here (they are code; the files are data).  The non-holonomic activations
(sigmoid, tanh, softplus, silu) are registered too, for quadrature only: exact methods
refuse them with a :class:`~hgmntk.NotHolonomicError`.
"""

from __future__ import annotations

from importlib import resources

from hgmntk.activation import Activation
from hgmntk.hookspecs import hookimpl

from . import closed_forms, smooth_forms

#: Closed forms (arc-cosine kernels): s = alpha u^n Y(u) + beta (-u)^n Y(-u).
CLOSED_FORMS = {
    name: closed_forms.RectifiedFamily(n, alpha, beta).forms()
    for name, (n, alpha, beta) in {
        "relu": (1, 1.0, 0.0),
        "step": (0, 1.0, 0.0),
        "abs": (1, 1.0, 1.0),
        "leaky_relu": (1, 1.0, -0.1),
        "relu2": (2, 1.0, 0.0),
        "relu3": (3, 1.0, 0.0),
    }.items()
}

#: Closed forms of the smooth built-ins (:mod:`hgmntk.plugins.smooth_forms`).
CLOSED_FORMS.update(
    erf=smooth_forms.ErfForm(1.0, 1.0).forms(),
    sin=smooth_forms.TrigForm(1.0, 1.0).forms(),
    cos=smooth_forms.TrigForm(1.0, 1.0, cosine=True).forms(),
    exp=smooth_forms.ExpForm(1.0, 1.0).forms(),
    gauss=smooth_forms.GaussianForm(1.0, -0.5).forms(),
    gelu=smooth_forms.GeluForm().forms(),
)

NOT_HOLONOMIC = {
    "sigmoid": ("1/(1 + exp(-u))", "exp(-u)/(1 + exp(-u))**2", "logistic sigmoid"),
    "tanh": ("tanh(u)", "1 - tanh(u)**2", "hyperbolic tangent"),
    "softplus": ("log(1 + exp(u))", "1/(1 + exp(-u))", "softplus log(1 + e^u)"),
    "silu": ("u/(1 + exp(-u))", "1/(1 + exp(-u)) + u*exp(-u)/(1 + exp(-u))**2", "SiLU / swish"),
}


def builtin_activations() -> list[Activation]:
    """Load every shipped activation file (sorted by name) and the quadrature-only ones."""
    out = []
    folder = resources.files(__package__) / "data"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            with resources.as_file(entry) as path:
                act = Activation.load(path)
            forms = CLOSED_FORMS.get(act.name)
            out.append(act.with_closed_forms(**forms) if forms else act)
    for name, (expr, deriv, desc) in NOT_HOLONOMIC.items():
        out.append(
            Activation(
                name=name,
                expression=expr,
                derivative=deriv,
                description=f"{desc} (not holonomic: quadrature only)",
                holonomic=False,
                provenance={"engine": "none", "note": "infinitely many complex poles"},
            )
        )
    return out


@hookimpl
def hgmntk_register_activations(register):
    """Register the built-in activations."""
    for act in builtin_activations():
        register(act)
