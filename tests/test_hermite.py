"""Hermite coefficients h_n = E[s(sqrt(a) X) He_n(X)] / sqrt(n!) from the recurrence in n.

Checked against independent values: closed forms to n = 500 (relu, exp, sin, erf, gelu,
the step's delta, from Gaussian moments of Hermite polynomials),
40-digit mpmath quadrature at small and moderate n (erf, gelu, resin, elu, and a derived
expression), 60/80-digit composite quadrature of every h_n to n = 500 for resin and elu
(tests/reference/hermite.json), and Mehler's expansion sum_n h_n(a) h_n(b) rho^n against
the reference duals (tests/reference) for every record with a, b <= 3 and |rho| <= 0.9,
where 400 terms leave a tail below 1e-18.
"""

from __future__ import annotations

import contextlib
import io
import math
from functools import cache

import mpmath
import numpy as np
import pytest

import hgmntk
from hgmntk.cli import main
from hgmntk.collinear import _mp_function
from hgmntk.dual_activation import get_activation
from hgmntk.errors import InvalidInputError
from tests.conftest import dual_records, mp_array


def _close(got, want, rel=1e-13, floor=1e-16):
    """Relative 1e-13, or absolute 1e-16 for coefficients below 1e-3 of the largest."""
    want = np.asarray(want, dtype=float)
    big = np.max(np.abs(want))
    err = np.abs(np.asarray(got) - want)
    ok = (err <= rel * np.abs(want)) | ((np.abs(want) < 1e-3 * big) & (err <= floor * big))
    assert np.all(ok), (np.flatnonzero(~ok)[:5], got[~ok][:5], want[~ok][:5])


def _scaled(values, n_max: int):
    """values[n] / sqrt(n!) for n = 0..n_max (mpmath values), as floats."""
    with mpmath.workdps(40):
        return np.array([float(v / mpmath.sqrt(mpmath.factorial(n)))
                         for n, v in enumerate(values[: n_max + 1])])


def _he0(k: int) -> int:
    """He_k(0)."""
    return 0 if k % 2 else (-1) ** (k // 2) * math.prod(range(k - 1, 0, -2))


def _gauss_he(k: int, c2, scale):
    """scale * E[He_k(c Z)], Z ~ N(0, 1): scale (k - 1)!! (c^2 - 1)^(k/2) for even k."""
    if k < 0 or k % 2:
        return mpmath.mpf(0)
    return scale * (mpmath.fac2(k - 1) if k else 1) * (c2 - 1) ** (k // 2)


def _erf_moments(n: int, a: float) -> list:
    """m_k = sigma^k E[erf^(k)(sigma X)]: erf^(k)(u) = 2 sqrt2 (-sqrt2)^(k-1)
    He_{k-1}(sqrt2 u) phi(sqrt2 u), and E[He_j(c X) phi(c X)] = E[He_j(c Z / r)] / (sqrt(2 pi) r)
    with r^2 = 1 + c^2."""
    s = mpmath.sqrt(a)
    scale = 1 / mpmath.sqrt(2 * mpmath.pi * (1 + 2 * a))
    return [mpmath.mpf(0)] + [
        s**k * 2 * mpmath.sqrt(2) * (-mpmath.sqrt(2)) ** (k - 1)
        * _gauss_he(k - 1, 2 * a / (1 + 2 * a), scale) for k in range(1, n + 1)]


def _gelu_moments(n: int, a: float) -> list:
    """gelu'' = (2 - u^2) phi = phi - phi'', so gelu^(k) = (-1)^k (He_{k-2} - He_k) phi for
    k >= 2; m_0 and m_1 by quadrature."""
    s = mpmath.sqrt(a)
    inf = mpmath.inf
    m0 = mpmath.quad(lambda x: s * x * mpmath.ncdf(s * x) * mpmath.npdf(x), [-inf, 0, inf])
    m1 = s * mpmath.quad(lambda x: (mpmath.ncdf(s * x) + s * x * mpmath.npdf(s * x))
                         * mpmath.npdf(x), [-inf, 0, inf])
    scale, c2 = 1 / mpmath.sqrt(2 * mpmath.pi * (1 + a)), a / (1 + a)
    return [m0, m1] + [s**k * (-1) ** k * (_gauss_he(k - 2, c2, scale)
                                           - _gauss_he(k, c2, scale)) for k in range(2, n + 1)]


@pytest.mark.parametrize("a", [0.3, 1.0, 7.0])
def test_closed_forms_up_to_500(a):
    n = 500
    with mpmath.workdps(40):
        s = mpmath.sqrt(a)
        phi0 = 1 / mpmath.sqrt(2 * mpmath.pi)
        # relu: m_0 = sigma phi(0), m_1 = sigma / 2, m_n = sigma He_{n-2}(0) phi(0)
        relu = [s * phi0, s / 2] + [s * _he0(k - 2) * phi0 for k in range(2, n + 1)]
        # exp(u): m_n = sigma^n e^(a/2); sin(u): sigma^n e^(-a/2) sin(n pi / 2)
        exp = [s**k * mpmath.exp(a / 2) for k in range(n + 1)]
        sin = [s**k * mpmath.exp(-a / 2) * (0, 1, 0, -1)[k % 4] for k in range(n + 1)]
        # step' = delta: m_n = He_n(0) phi(0) / sigma
        delta = [_he0(k) * phi0 / s for k in range(n + 1)]
        erf, gelu = _erf_moments(n, a), _gelu_moments(n, a)
    _close(hgmntk.hermite("relu", n, a), _scaled(relu, n))
    _close(hgmntk.hermite("exp", n, a), _scaled(exp, n))
    _close(hgmntk.hermite("sin", n, a), _scaled(sin, n))
    _close(hgmntk.hermite("step", n, a, derivative=True), _scaled(delta, n))
    _close(hgmntk.hermite("erf", n, a), _scaled(erf, n))
    _close(hgmntk.hermite("gelu", n, a), _scaled(gelu, n))


def _mp_coefficients(expression: str, a: float, ns) -> np.ndarray:
    """h_n by 40-digit mpmath quadrature, the z-axis cut at 0 and every 2 units."""
    f = _mp_function(expression)
    out = []
    for n in ns:
        with mpmath.workdps(40 + n // 2):
            s = mpmath.sqrt(a)
            edge = 2 * (int(math.sqrt(n + 2)) + 6)
            points = [-mpmath.inf, *range(-edge, edge + 1, 2), mpmath.inf]
            v = mpmath.quad(lambda x, n=n, s=s: f(s * x) * mpmath.hermite(n, x / mpmath.sqrt(2))
                            * mpmath.exp(-x * x / 2), points)
            v *= 2 ** (-mpmath.mpf(n) / 2) / mpmath.sqrt(2 * mpmath.pi * mpmath.factorial(n))
            out.append(float(v))
    return np.array(out)


@pytest.mark.parametrize("name", ["erf", "gelu", "resin", "elu", "Heaviside(u)*cos(u)"])
@pytest.mark.parametrize("a", [0.05, 2.5])
def test_against_quadrature(name, a):
    ns = [*range(0, 7), 13, 30]
    got = hgmntk.hermite(name, 30, a)[ns]
    expression = get_activation(name).expression
    _close(got, _mp_coefficients(expression, a, ns))


@pytest.mark.parametrize("name", ["resin", "elu"])
def test_up_to_500_against_the_reference_quadrature(name):
    """tests/reference/hermite.json: every h_n, n <= 500, at variances 1 and 4 by a
    composite Gauss-Legendre rule at 60 and 80 digits (agreeing to 32), itself checked
    against adaptive 70/100-digit quadratures of single coefficients at n = 250."""
    import json

    from tests.conftest import REFERENCE_DIR

    data = json.loads((REFERENCE_DIR / "hermite.json").read_text())
    tables = [t for t in data["tables"] if t["activation"] == name]
    assert {t["variance"] for t in tables} == {"1", "4"}
    for t in tables:
        want = np.array([float(mpmath.mpf(v)) for v in t["h"]])
        assert want.size == 501 and t["digits"] >= 30
        _close(hgmntk.hermite(name, 500, float(t["variance"])), want)
    for r in data["spot_checks"]:  # the two quadrature methods agree
        if r["activation"] == name:
            t = next(t for t in tables if t["variance"] == r["variance"])
            with mpmath.workdps(40):
                assert abs(mpmath.mpf(t["h"][r["n"]]) / mpmath.mpf(r["h"]) - 1) < 1e-30


def test_derivative_against_quadrature():
    ns = [0, 1, 2, 3, 6, 15]
    for name in ("resin", "gelu", "elu"):
        got = hgmntk.hermite(name, 15, 1.7, derivative=True)[ns]
        _close(got, _mp_coefficients(get_activation(name).derivative, 1.7, ns))


@cache
def _coefficients(name: str, a: float) -> np.ndarray:
    return hgmntk.hermite(name, 400, a)


@pytest.mark.parametrize("name", ["erf", "gelu", "resin", "elu"])
def test_mehler_sums_reproduce_the_reference_duals(name):
    records = [r for r in dual_records(name)
               if float(r["a"]) <= 3 and float(r["b"]) <= 3 and abs(float(r["rho"])) <= 0.9]
    assert len(records) >= 20
    for r in records:
        a, b, rho = float(r["a"]), float(r["b"]), float(r["rho"])
        terms = _coefficients(name, a) * _coefficients(name, b) * rho ** np.arange(401)
        want = float(mp_array([r["E_ss"]])[0])
        err = abs(math.fsum(terms) - want)
        assert err <= 1e-12 * abs(want) + 4e-16 * np.sum(np.abs(terms)), (r, err)


def test_bad_input_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="not holonomic"):
        hgmntk.hermite("sigmoid", 5)
    for n in (-1, 1.5, True, 10**6):
        with pytest.raises(InvalidInputError, match="n_max"):
            hgmntk.hermite("relu", n)
    for a in (0.0, -1.0, float("nan"), 1e300, "x"):
        with pytest.raises(InvalidInputError, match="variance"):
            hgmntk.hermite("relu", 5, a)


def test_cli_prints_one_line_per_coefficient():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["hermite", "relu", "--n", "50", "--variance", "2"])
    assert code == 0, err.getvalue()
    lines = out.getvalue().split("\n")[:-1]
    assert [int(line.split()[0]) for line in lines] == list(range(51))
    values = np.array([float(line.split()[1]) for line in lines])
    assert values == pytest.approx(hgmntk.hermite("relu", 50, 2.0), rel=1e-16, abs=0)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["hermite", "tanh", "--n", "5"])
    assert code == 2 and err.getvalue().startswith("hgmntk: error: ")
