"""Activation families with parameters (hgmntk.act, "name(k=v)" text) and their closed forms.

The closed forms (hgmntk.plugins.smooth_forms, hgmntk.plugins.closed_forms) are checked
against the textbook formulas evaluated in 40-digit mpmath, written here from their
definitions (no care about cancellation: mpmath's digits absorb it), which are in turn
checked against a tensor Gauss-Hermite quadrature of the activation itself; the deep
kernels of every family (depths 1-5, with bias) against the recursion done in mpmath.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import hgmntk
from hgmntk.covariance import Covariances
from hgmntk.errors import InvalidInputError, NotHolonomicError
from hgmntk.plugins.families import builtin_families
from tests.conftest import mp_kernels

TOL = 1e-12
DPS = 40


# ------------------------------------------------------- textbook duals, in mpmath
def _erf(A, B, C):
    def ss(a, b, c):
        t = 2 * B * B
        return A * A * 2 / mp.pi * mp.asin(t * c / mp.sqrt((1 + t * a) * (1 + t * b))) + C * C

    def dsds(a, b, c):
        t = 2 * B * B
        return A * A * B * B * 4 / mp.pi / mp.sqrt((1 + t * a) * (1 + t * b) - t * t * c * c)

    return ss, dsds


def _trig_ss(A, B, C, cosine):
    def ss(a, b, c):
        minus = mp.exp(-B * B * (a + b - 2 * c) / 2)
        plus = mp.exp(-B * B * (a + b + 2 * c) / 2) * mp.cos(2 * C)
        return A * A / 2 * (minus + plus if cosine else minus - plus)

    return ss


def _trig(A, B, C, cosine):
    return _trig_ss(A, B, C, cosine), _trig_ss(A * B, B, C, not cosine)


def _exp(A, B):
    return (lambda a, b, c: A * A * mp.exp(B * B * (a + b + 2 * c) / 2),
            lambda a, b, c: A * A * B * B * mp.exp(B * B * (a + b + 2 * c) / 2))


def _gaussian(A, B):
    def g(a, b, c):
        return (1 - 2 * B * a) * (1 - 2 * B * b) - 4 * B * B * c * c

    return (lambda a, b, c: A * A / mp.sqrt(g(a, b, c)),
            lambda a, b, c: 4 * A * A * B * B * c / g(a, b, c) ** 1.5)


def _gelu():
    def ss(a, b, c):  # Tsuchida et al.: written from E[u Phi(u) v Phi(v)]
        d = mp.sqrt((a + 1) * (b + 1) - c * c)
        return ((c * c + a * b * d * d) / ((a + 1) * (b + 1) * d) + c * mp.atan(c / d)) / (
            2 * mp.pi) + c / 4

    def dsds(a, b, c):
        return mp.diff(lambda x: ss(a, b, x), c)

    return ss, dsds


def _moment(j, k, a, b, c):
    """E[u^j v^k] by Isserlis (sum over the number m of u-v pairings)."""
    total = mp.mpf(0)
    for m in range(min(j, k) + 1):
        if (j - m) % 2 or (k - m) % 2:
            continue
        p, q = (j - m) // 2, (k - m) // 2
        total += (mp.factorial(j) * mp.factorial(k)
                  / (mp.factorial(m) * mp.factorial(p) * mp.factorial(q) * 2 ** (p + q))
                  * c**m * a**p * b**q)
    return total


def _polynomial(coef):
    coef = [mp.mpf(x) for x in coef]
    dcoef = [j * x for j, x in enumerate(coef)][1:] or [mp.mpf(0)]

    def dual(cs):
        return lambda a, b, c: mp.fsum(p * q * _moment(j, k, a, b, c)
                                       for j, p in enumerate(cs) for k, q in enumerate(cs))

    return dual(coef), dual(dcoef)


def _rectified(n, alpha, beta):
    """Cho and Saul's arc-cosine kernels (their J_0 .. J_3, Cho and Saul 2009)."""
    def j(n, t):
        s, c, r = mp.sin(t), mp.cos(t), mp.pi - t
        return [r, s + r * c, 3 * s * c + r * (1 + 2 * c * c),
                4 * s + 11 * s * c * c + r * (6 * c**3 + 9 * c)][n]

    def dual(n, al, be):
        def ss(a, b, c):
            theta = mp.acos(c / mp.sqrt(a * b))
            return (a * b) ** (mp.mpf(n) / 2) / (2 * mp.pi) * (
                (al * al + be * be) * j(n, theta) + 2 * al * be * j(n, mp.pi - theta))
        return ss

    if n == 0:
        return dual(0, alpha, beta), (
            lambda a, b, c: (alpha - beta) ** 2 / (2 * mp.pi * mp.sqrt(a * b - c * c)))
    return dual(n, alpha, beta), dual(n - 1, n * alpha, -n * beta)


#: (text a user writes, textbook duals, activation s as a numpy function)
CASES = [
    ("Erf(a=0.5, b=2.0, c=0.1)", _erf(0.5, 2.0, 0.1), None),
    ("sigmoid_like", _erf(0.5, 1 / 2.4020563531719796, 0.5), None),
    ("Sin(a=1.5, b=0.5, c=0.3)", _trig(1.5, 0.5, 0.3, False), None),
    ("Cos(a=1.0, b=2.0, c=0.0)", _trig(1.0, 2.0, 0.0, True), None),
    ("cos(b=0.7, c=-1.2)", _trig(1.0, 0.7, -1.2, True), None),
    ("Rbf(gamma=0.5)", _trig(math.sqrt(2), 1.0, math.pi / 4, False), None),
    ("Exp(a=0.5, b=0.3)", _exp(0.5, 0.3), None),
    ("Gaussian(a=1.0, b=-1.0)", _gaussian(1.0, -1.0), None),
    ("gaussian(a=2, b=0.1)", _gaussian(2.0, 0.1), None),
    ("Gelu()", _gelu(), None),
    ("Monomial(3)", _polynomial([0, 0, 0, 1]), None),
    ("Polynomial(coef=[0.1, 1.0, 0.5])", _polynomial([0.1, 1.0, 0.5]), None),
    ("Hermite(degree=2)", _polynomial([-1 / math.sqrt(2), 0, 1 / math.sqrt(2)]), None),
    ("LeakyRelu(alpha=0.2)", _rectified(1, 1.0, -0.2), None),
    ("ABRelu(a=-0.5, b=2.0)", _rectified(1, 2.0, 0.5), None),
    ("Sign()", _rectified(0, 1.0, -1.0), None),
    ("RectifiedMonomial(degree=2)", _rectified(2, 1.0, 0.0), None),
]

#: exp's values stay finite up to variance 3; the growing Gaussian (b = 0.1) converges
#: where 2 b (a + b) < 1
LARGEST_VARIANCE = {"Exp(a=0.5, b=0.3)": 3.0, "gaussian(a=2, b=0.1)": 1.0}
#: (w_std, b_std) keeping five layers of fast-growing activations finite
NETWORK = {"Exp(a=0.5, b=0.3)": (1.0, 0.1), "gaussian(a=2, b=0.1)": (0.5, 0.1),
           "Monomial(3)": (0.6, 0.05)}
#: variances 1e-4 .. 1e2
VARIANCES = [1e-4, 0.01, 1.0, 3.0, 100.0]
RHOS = [-0.99999, -0.3, 0.0, 0.4, 0.999, 1 - 1e-8]


def _grid(text):
    big = LARGEST_VARIANCE.get(text)
    out = []
    for a in VARIANCES:
        for b in VARIANCES:
            if big and max(a, b) > big:
                continue
            for r in RHOS:
                out.append((a, b, r * math.sqrt(a * b)))
    return out


def _rel(got, want):
    scale = max(abs(want), 1e-300)
    return abs(got - want) / scale


@pytest.mark.parametrize("text, duals, _", CASES, ids=[c[0] for c in CASES])
def test_family_duals_against_mpmath(text, duals, _):
    act = hgmntk.dual_activation.get_activation(text)
    assert set(act.closed_forms) == {"ss", "dsds"}
    grid = _grid(text)
    a, b, c = (np.array(v) for v in zip(*grid))
    for derivative, ref in ((False, duals[0]), (True, duals[1])):
        got = hgmntk.dual(act, a, b, c, derivative=derivative, method="closed")
        with mp.workdps(DPS):
            want = [ref(mp.mpf(x), mp.mpf(y), mp.mpf(z)) for x, y, z in grid]
        # an entry that is zero to rounding is held to 1e-15 of the terms' scale
        worst = max(
            min(_rel(g, float(w)), abs(g - float(w)) / 1e-3 if abs(float(w)) < 1e-15 else 1)
            for g, w in zip(got, want))
        assert worst <= TOL, (text, derivative, worst)


def _gauss_hermite(f, a, b, c, n=160):
    """E[f(u) f(v)] by tensor Gauss-Hermite quadrature (float64), via u = sa z1,
    v = sb (rho z1 + sqrt(1 - rho^2) z2)."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    sa, sb = math.sqrt(a), math.sqrt(b)
    rho = c / (sa * sb)
    u = sa * z[:, None] + 0 * z[None, :]
    v = sb * (rho * z[:, None] + math.sqrt(1 - rho * rho) * z[None, :])
    return float(np.sum(w[:, None] * w[None, :] * f(u) * f(v)))


@pytest.mark.parametrize("text", [c[0] for c in CASES if "Relu" not in c[0]
                                  and "Sign" not in c[0] and "Rectified" not in c[0]])
def test_textbook_formulas_against_quadrature(text):
    """The mpmath formulas above are the duals of the activations (smooth ones: tensor
    Gauss-Hermite of the activation's own expression, at 1e-7: erf(2u) is steep)."""
    duals = dict((c[0], c[1]) for c in CASES)[text]
    act = hgmntk.dual_activation.get_activation(text)
    s, ds = act.numeric_functions["s"], act.numeric_functions["ds"]
    for a, b, c in [(0.7, 1.3, 0.4), (2.0, 0.5, -0.9)]:
        for f, ref in ((s, duals[0]), (ds, duals[1])):
            with mp.workdps(DPS):
                want = float(ref(mp.mpf(a), mp.mpf(b), mp.mpf(c)))
            assert _gauss_hermite(f, a, b, c) == pytest.approx(want, rel=1e-7, abs=1e-12)


KERNEL_CASES = [c for c in CASES if c[0] not in ("Sign()",)]


@pytest.mark.parametrize("text, duals, _", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_family_kernels_against_mpmath(text, duals, _):
    """Depths 1..5 with bias, a duplicated and a collinear point among random ones."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((6, 4)) * 0.8
    X = np.vstack([X, X[0], -0.5 * X[1]])
    w_std, b_std = NETWORK.get(text, (1.5, 0.05))
    layers = hgmntk.kernel_layers(X, activation=text, depth=5, w_std=w_std, b_std=b_std)
    ref = mp_kernels(X, duals[0], duals[1], 5, w_std, b_std, DPS)
    for k, (nngp, ntk) in zip(layers, ref):
        for got, want in ((k.nngp, nngp), (k.ntk, ntk)):
            rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
            assert rel.max() <= TOL, (text, k.depth, rel.max())


# --------------------------------------------------------------------- the families
def _j_by_definition(n, theta):
    """Cho and Saul's J_n = (-1)^n sin^(2n+1) (1/sin d/dtheta)^n ((pi - theta)/sin), by
    nested numerical derivatives (mpmath; away from theta = 0 and pi)."""
    def step(g):
        return lambda t: mp.diff(g, t) / mp.sin(t)

    g = lambda t: (mp.pi - t) / mp.sin(t)  # noqa: E731
    for _ in range(n):
        g = step(g)
    return (-1) ** n * mp.sin(theta) ** (2 * n + 1) * g(theta)


@pytest.mark.parametrize("degree", [4, 5, 7])
def test_rectified_monomials_of_higher_degree(degree):
    """RectifiedMonomial(degree > 3): J_n from the recurrence of its polynomials against
    the defining derivative formula, E[s s] and E[s's'] (the family of degree - 1)."""
    act = hgmntk.act.RectifiedMonomial(degree=degree)
    assert set(act.closed_forms) == {"ss", "dsds"}
    a, b = 1.7, 0.6
    for rho in (-0.85, -0.4, 0.1, 0.6, 0.9):
        c = rho * math.sqrt(a * b)
        for derivative, n, scale in ((False, degree, 1), (True, degree - 1, degree**2)):
            with mp.workdps(30):
                theta = mp.acos(mp.mpf(c) / mp.sqrt(mp.mpf(a) * mp.mpf(b)))
                want = scale * (mp.mpf(a) * mp.mpf(b)) ** (mp.mpf(n) / 2) / (2 * mp.pi) * \
                    _j_by_definition(n, theta)
            got = hgmntk.dual(act, a, b, c, derivative=derivative)
            assert got == pytest.approx(float(want), rel=1e-12), (degree, rho, derivative)


def test_every_family_makes_its_default_activation():
    for family in builtin_families():
        try:
            act = family.activation()
        except InvalidInputError as exc:  # a required parameter
            assert "needs the parameter" in str(exc)
            continue
        assert act.expression and isinstance(act.name, str)


@pytest.mark.parametrize("text, name", [
    ("leaky_relu(alpha=0.2)", "leaky_relu(alpha=0.2)"),
    ("LeakyRelu(0.2)", "leaky_relu(alpha=0.2)"),
    ("LeakyRelu(alpha=0.2, do_stabilize=True)", "leaky_relu(alpha=0.2)"),
    ("Erf()", "erf"),
    ("Erf(a=1, b=1, c=0)", "erf"),
    ("Gaussian(b=-0.5)", "gauss"),
    ("RectifiedMonomial(1)", "relu"),
    ("Gelu", "gelu"),
    ("sign", "sign"),
    ("polynomial([0, 1])", "polynomial(coef=[0.0, 1.0])"),
])
def test_family_spellings(text, name):
    assert hgmntk.dual_activation.get_activation(text).name == name


def test_expressions_are_not_taken_for_families():
    act = hgmntk.dual_activation.get_activation("sin(u)")
    assert act.expression == "sin(u)" and act.name == "sin(u)"


@pytest.mark.parametrize("text, message", [
    ("LeakyRelu()", "needs the parameter 'alpha'"),
    ("erf(d=1)", "has no parameter 'd'"),
    ("erf(1, 2, 3, 4)", "takes 3 parameter"),
    ("erf(a=float('nan'))", "parameter 'a' must be a literal number"),
    ("erf(b=nan)", "parameter 'b' must be a literal number"),
    ("erf(b=__import__('os').getpid())", "parameter 'b' must be a literal number"),
    ("erf(a=1e999)", "must be finite"),
    ("erf(b=1e200)", "out of range"),
    ("leaky_relu(alpha=1e308)", "out of range"),
    ("monomial(degree=2.5)", "non-negative integer"),
    ("monomial(degree=-1)", "non-negative integer"),
    ("polynomial(coef=3)", "list of numbers"),
    ("gelu(approximate=1)", "True or False"),
    ("abrelu(a=0, b=0)", "identically zero"),
])
def test_bad_parameters_are_clear_errors(text, message):
    with pytest.raises(hgmntk.HgmntkError, match=message.replace("(", r"\(")):
        hgmntk.dual(text, 1.0, 1.0, 0.5)


def test_act_namespace():
    act = hgmntk.act.LeakyRelu(alpha=0.2)
    assert act.name == "leaky_relu(alpha=0.2)"
    assert "LeakyRelu" in dir(hgmntk.act) and "Erf" in dir(hgmntk.act)
    assert hgmntk.act.Erf() is hgmntk.dual_activation.get_activation("erf")
    with pytest.raises(AttributeError, match="no activation family 'Swish'"):
        _ = hgmntk.act.Swish
    assert "leaky_relu(alpha" in hgmntk.act.LeakyRelu.__doc__


def test_closed_forms_need_no_derivation():
    """A family member with closed forms computes kernels without deriving its system;
    the hgm method derives it on first use and agrees."""
    act = hgmntk.act.Erf(a=0.25, b=3.0, c=-0.2)
    assert "not derived yet" in repr(act.duals)
    X = np.random.default_rng(1).standard_normal((5, 3))
    k = hgmntk.kernels(X, activation=act, depth=2, w_std=1.2, b_std=0.1)
    assert "not derived yet" in repr(act.duals)
    h = hgmntk.kernels(X, activation=act, depth=2, w_std=1.2, b_std=0.1, method="hgm")
    np.testing.assert_allclose(h.ntk, k.ntk, rtol=1e-12)
    np.testing.assert_allclose(h.nngp, k.nngp, rtol=1e-12)


def test_gelu_tanh_approximation_is_quadrature_only():
    act = hgmntk.act.Gelu(approximate=True)
    assert not act.holonomic
    with pytest.raises(NotHolonomicError):
        hgmntk.dual(act, 1.0, 1.0, 0.5)
    exact = hgmntk.dual("gelu", 1.0, 1.2, 0.5)
    approx = hgmntk.dual(act, 1.0, 1.2, 0.5, method="gauss-hermite")
    assert abs(approx - exact) < 1e-3 * exact


def test_divergent_gaussian_is_a_clear_error():
    with pytest.raises(hgmntk.HgmntkError):
        hgmntk.dual("gaussian(b=0.5)", 2.0, 1.0, 0.5)


def test_smooth_form_block_bounds_hold():
    """The block evaluations' error bounds cover their actual error (against mpmath)."""
    from hgmntk.integrator import PairBlock

    rng = np.random.default_rng(5)
    sa = np.sqrt(10 ** rng.uniform(-4, 2, (12, 1)))
    sb = np.sqrt(10 ** rng.uniform(-4, 2, (1, 12)))
    rho = np.clip(rng.uniform(-1, 1, (12, 12)), -1 + 1e-9, 1 - 1e-9)
    for text, duals, _ in CASES[:12]:
        if text in LARGEST_VARIANCE:
            continue
        act = hgmntk.dual_activation.get_activation(text)
        for key, ref in (("ss", duals[0]), ("dsds", duals[1])):
            value, err, _ = act.closed_forms[key].block(PairBlock(sa, sb, rho))
            with mp.workdps(DPS):
                for i in range(12):
                    for j in range(12):
                        a, b = mp.mpf(sa[i, 0]) ** 2, mp.mpf(sb[0, j]) ** 2
                        c = mp.mpf(rho[i, j]) * mp.mpf(sa[i, 0]) * mp.mpf(sb[0, j])
                        true = ref(a, b, c)
                        # the block's value is for c = rho sa sb rounded: allow c's error
                        assert abs(value[i, j] - true) <= err[i, j] + 1e-15 * abs(true) + \
                            1e-300, (text, key, value[i, j], float(true), err[i, j])


def test_families_listed_by_the_registry():
    families = hgmntk.plugin_manager.get_registry().families
    assert {"leaky_relu", "erf", "gelu", "hermite", "polynomial"} <= set(families)
    assert families["erf"].stax == "Erf"
    assert Covariances  # imported for the block test's types


@pytest.mark.parametrize("text", [
    "Hermite(2)", "sin(a=1.5, b=0.5, c=0.3)", "polynomial(coef=[0.1, 1.0, 0.5])",
    "abrelu(a=-0.5, b=2.0)", "gaussian(a=1.0, b=-1.0)", "sign", "Rbf(gamma=0.5)",
    "RectifiedMonomial(4)",
])
def test_hgm_cross_checks_the_closed_forms(text):
    """The HGM on the system derived for the parameter value (SymPy engine, cached)
    against the family's closed forms."""
    a, b, c = [1.3, 0.2, 2.0], [0.7, 3.0, 2.0], [0.4, -0.7, 1.9]
    for derivative in (False, True):
        h = hgmntk.dual(text, a, b, c, derivative=derivative, method="hgm")
        k = hgmntk.dual(text, a, b, c, derivative=derivative, method="closed")
        np.testing.assert_allclose(h, k, rtol=1e-12, err_msg=f"{text} {derivative}")


def test_elu_with_alpha_by_its_derived_system():
    """elu(alpha=0.5): no closed form; its system is derived for alpha = 1/2 (about 25 s,
    then cached). Reference: 2-D mpmath quadrature at 25 digits of
    E[s(u)s(v)] and E[s'(u)s'(v)] at (a, b, c) = (1, 2, 0.5), split at the kinks."""
    act = hgmntk.act.elu(alpha=0.5)
    assert not act.closed_forms
    e = hgmntk.dual(act, 1.0, 2.0, 0.5)
    f = hgmntk.dual(act, 1.0, 2.0, 0.5, derivative=True)
    assert e == pytest.approx(0.3195638642802258237188276, rel=1e-12)
    assert f == pytest.approx(0.424686308592307873889402, rel=1e-12)


def test_evaluators_are_remembered_per_activation_object():
    """An evaluator remembered under an id serves only the object it was made for (an id
    is reused once its object is gone; family members and derived expressions are made
    anew), and a family member is one object per parameter values."""
    from hgmntk.plugins.builtin_integrators import _remembered

    class Obj:
        pass

    store: dict = {}
    first, second = Obj(), Obj()
    assert _remembered(store, 7, first, lambda: "for first") == "for first"
    assert _remembered(store, 7, first, lambda: "again") == "for first"
    assert _remembered(store, 7, second, lambda: "for second") == "for second"
    assert hgmntk.act.Sin(a=2.0) is hgmntk.dual_activation.get_activation("sin(a=2.0)")
