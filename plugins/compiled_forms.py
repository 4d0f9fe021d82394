"""The closed forms of :mod:`hgmntk.plugins.smooth_forms` and of the rectified linear
family of :mod:`hgmntk.plugins.closed_forms` as compiled loops (numba) over a float64
block: one pass per block gives E[ss], its bound, E[s's'], its bound and the slope
|dE[s's']/dc| of every entry.

Each loop computes, entry by entry, the same formulas in the same order as the numpy
forms (see those modules' docstrings for the mathematics), from the block's sa (n, 1),
sb (1, m), rho and sab = sa sb (n, m):

    c = rho sab,  a = sa^2,  b = sb^2,  det = sab^2 (1 - rho)(1 + rho),
    a + b - 2|c| = (sa - sb)^2 + 2 sab (1 - |rho|),
    a + b + 2c = (sa - sb)^2 + 2 sab (1 + rho),

and each bound is eps (8 + growth) times the magnitude of the terms, as
:meth:`SmoothForm._block`.  Transcendental functions are left to numpy between two
compiled passes (the arguments, then the rest): numpy's vectorised exp, expm1, arctan2
and arccos cost 1-3 ns an entry here, a scalar call in a compiled loop 4-15 ns.  So the
loops give the numpy forms' values and bounds bitwise, which the tests check; the numpy
forms stay for the long-double passes and the careful path.
"""

from __future__ import annotations

import math

import numpy as np

from hgmntk.jit import loop

EPS = float(np.finfo(np.float64).eps)
PI = math.pi


@loop(inline=True)
def _outputs(n, m):
    """Five (n, m) arrays: E[ss], its bound, E[s's'], its bound, the slope."""
    return np.empty((n, m)), np.empty((n, m)), np.empty((n, m)), np.empty((n, m)), np.empty((n, m))


@loop(inline=True)
def _det(rho, sab):
    return (sab * sab) * ((1 - rho) * (1 + rho))


@loop(inline=True)
def _erf_big(sa_i, sb_j, r, s, t):
    """D_t = 1 + t (a + b) + t^2 det."""
    return 1 + t * (sa_i * sa_i + sb_j * sb_j) + (t * t) * _det(r, s)


@loop
def erf_arguments(sa, sb, rho, sab, B):
    """The arguments of erf's arctan2: t c and sqrt(D_t) (t = 2 B^2)."""
    n, m = rho.shape
    y, x = np.empty((n, m)), np.empty((n, m))
    t = 2 * B * B
    for i in range(n):
        for j in range(m):
            r, s = rho[i, j], sab[i, j]
            y[i, j] = (2 * B * B) * (r * s)
            x[i, j] = math.sqrt(_erf_big(sa[i, 0], sb[0, j], r, s, t))
    return y, x


@loop
def erf_block(sa, sb, rho, sab, angle, A, B, C, k_slope):
    """s = A erf(B u) + C, given angle = arctan2(t c, sqrt(D_t)):
    E[ss] = (2 A^2/pi) angle + C^2, E[s's'] = A^2 B^2 (4/pi) / sqrt(D_t),
    slope k_slope |c| / D_t^(3/2) (k_slope = A^2 B^2 (4/pi) t^2), with t = 2 B^2 and
    D_t = 1 + t (a + b) + t^2 det."""
    n, m = rho.shape
    e, err_e, de, err_d, slope = _outputs(n, m)
    t = 2 * B * B
    k_ss = 2 * A * A / PI
    k_d = 4 * A * A * B * B / PI
    cc = C * C
    for i in range(n):
        for j in range(m):
            r, s = rho[i, j], sab[i, j]
            big = _erf_big(sa[i, 0], sb[0, j], r, s, t)
            root = math.sqrt(big)
            phi = angle[i, j]
            e[i, j] = k_ss * phi + cc
            err_e[i, j] = (EPS * 8) * (k_ss * abs(phi) + cc)
            value = k_d / root
            de[i, j] = value
            err_d[i, j] = (EPS * 8) * value
            slope[i, j] = abs(k_slope * (r * s) / (big * root))
    return e, err_e, de, err_d, slope


def erf(sa, sb, rho, sab, A, B, C):
    """The five arrays of s = A erf(B u) + C (numpy's vectorised arctan2 between two
    compiled passes: a scalar arctan2 in the loop costs five times as much)."""
    y, x = erf_arguments(sa, sb, rho, sab, B)
    t = 2 * B * B
    k_slope = 4 * A**2 * B**2 * t * t / PI  # rounded as _ErfSlope does
    return erf_block(sa, sb, rho, sab, np.arctan2(y, x), A, B, C, k_slope)


@loop(inline=True)
def _trig_terms(m_, small, q, q_ge_p, c, g, one_plus_g, scale):
    """(value, magnitude) of A sin/cos(B u + C)'s dual (TrigForm.terms), g = -+cos 2C."""
    if g == 1:
        value = m_ + small
        return scale * value, scale * value
    if g == -1:
        mq = m_ * q
        return scale * math.copysign(mq, c), scale * mq
    eq = small if q_ge_p else m_
    if g >= 0:
        value = (m_ if q_ge_p else small) + g * eq
        return scale * value, scale * value
    if g >= -0.5:
        ep = m_ if q_ge_p else small
        return scale * (ep + g * eq), scale * (ep - g * eq)
    mq = m_ * q
    split = mq + one_plus_g * eq
    direct = small - g * m_
    if not q_ge_p and direct < split:
        return scale * (small + g * m_), scale * direct
    return scale * ((mq if q_ge_p else -mq) + one_plus_g * eq), scale * split


@loop
def trig_arguments(sa, sb, rho, sab, B):
    """The exponents of a trigonometric form: -min(P, Q), -max(P, Q) and -|Q - P| with
    min(P, Q) = B^2 (a + b - 2|c|)/2 and |Q - P| = 2 B^2 |c|."""
    n, m = rho.shape
    low, high, k2 = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    for i in range(n):
        for j in range(m):
            r, s = rho[i, j], sab[i, j]
            diff = sa[i, 0] - sb[0, j]
            k = abs((2 * B * B) * (r * s))
            lo = (B * B / 2) * (diff * diff + (2 * s) * (1 - abs(r)))
            low[i, j] = -lo
            high[i, j] = -(lo + k)
            k2[i, j] = -k
    return low, high, k2


@loop
def trig_block(sa, sb, rho, sab, big, small, expm1, B, b4, g, one_plus_g, scale, dg,
               d_one_plus_g, d_scale):
    """s = A sin(B u + C) or A cos(B u + C) (g, 1 + g and scale = A^2/2 of s; dg, ... of
    s'), given e^-min(P, Q), e^-max(P, Q) and e^-|Q - P| - 1 (``big``, ``small``,
    ``expm1``; q = 1 - e^-|Q - P|):
    E = scale (e^-P + g e^-Q), P, Q = B^2 (a + b -+ 2c)/2, in the split forms of
    TrigForm.terms; slope b4 |E[ss]| (b4 = B^4, rounded as Python does); growth
    B^2 (a + b)."""
    n, m = rho.shape
    e, err_e, de, err_d, slope = _outputs(n, m)
    for i in range(n):
        for j in range(m):
            c = rho[i, j] * sab[i, j]
            m_, sm, qq = big[i, j], small[i, j], -expm1[i, j]
            q_ge_p = c >= 0
            growth = (B * B) * (sa[i, 0] * sa[i, 0] + sb[0, j] * sb[0, j])
            bound = EPS * (8 + growth)
            value, size = _trig_terms(m_, sm, qq, q_ge_p, c, g, one_plus_g, scale)
            e[i, j] = value
            err_e[i, j] = bound * size
            value_d, size_d = _trig_terms(m_, sm, qq, q_ge_p, c, dg, d_one_plus_g, d_scale)
            de[i, j] = value_d
            err_d[i, j] = bound * size_d
            slope[i, j] = b4 * abs(value)
    return e, err_e, de, err_d, slope


def trig(sa, sb, rho, sab, B, *constants):
    """The five arrays of a trigonometric form (numpy's vectorised exp and expm1 between
    two compiled passes)."""
    low, high, k2 = trig_arguments(sa, sb, rho, sab, B)
    np.exp(low, out=low)
    np.exp(high, out=high)
    np.expm1(k2, out=k2)
    return trig_block(sa, sb, rho, sab, low, high, k2, B, B**4, *constants)


@loop
def exp_arguments(sa, sb, rho, sab, B):
    """Q = B^2 (a + b + 2c)/2 = B^2 ((sa - sb)^2 + 2 sab (1 + rho))/2."""
    n, m = rho.shape
    out = np.empty((n, m))
    half = B * B / 2
    for i in range(n):
        for j in range(m):
            diff = sa[i, 0] - sb[0, j]
            out[i, j] = half * (diff * diff + (2 * sab[i, j]) * (1 + rho[i, j]))
    return out


@loop
def exp_block(q, eq, AA, dAA, b4):
    """s = A exp(B u) (AA = A^2, dAA = (A B)^2, b4 = B^4), given Q and e^Q:
    E[ss] = A^2 e^Q, E[s's'] = (A B)^2 e^Q, slope B^4 E[ss]; growth 2Q."""
    n, m = q.shape
    e, err_e, de, err_d, slope = _outputs(n, m)
    for i in range(n):
        for j in range(m):
            bound = EPS * (8 + 2 * q[i, j])
            value = AA * eq[i, j]
            e[i, j] = value
            err_e[i, j] = bound * value
            value_d = dAA * eq[i, j]
            de[i, j] = value_d
            err_d[i, j] = bound * value_d
            slope[i, j] = b4 * value
    return e, err_e, de, err_d, slope


def exponential(sa, sb, rho, sab, AA, dAA, B):
    """The five arrays of s = A exp(B u) (numpy's vectorised exp between two compiled
    passes)."""
    q = exp_arguments(sa, sb, rho, sab, B)
    return exp_block(q, np.exp(q), AA, dAA, B**4)


@loop
def gaussian_block(sa, sb, rho, sab, A, B):
    """s = A exp(B u^2): G = 1 - 2B (a + b) + 4B^2 det (as (1 - 2Ba)(1 - 2Bb) - 4B^2 c^2
    for B > 0, NaN where it is not positive), E[ss] = A^2 / sqrt(G),
    E[s's'] = 4 A^2 B^2 c / G^(3/2), slope 4 A^2 B^2 (G^(-3/2) + 12 B^2 c^2 G^(-5/2))."""
    n, m = rho.shape
    e, err_e, de, err_d, slope = _outputs(n, m)
    k = 4 * A * A * B * B
    for i in range(n):
        a = sa[i, 0] * sa[i, 0]
        for j in range(m):
            r, s = rho[i, j], sab[i, j]
            c = r * s
            b = sb[0, j] * sb[0, j]
            if B <= 0:
                g = 1 - 2 * B * (a + b) + (4 * B * B) * _det(r, s)
                growth = 0.0
            else:
                x, y = 1 - 2 * B * a, 1 - 2 * B * b
                cc = (4 * B * B) * (c * c)
                g = x * y - cc
                growth = 4 * (abs(x * y) + cc) / g if g != 0 else np.inf
                if not (x > 0 and y > 0 and g > 0):
                    g = np.nan
            root = 1 / math.sqrt(g) if g >= 0 else np.nan
            value = (A * A) * root
            e[i, j] = value
            err_e[i, j] = (EPS * (8 + growth)) * value
            r3 = root * root * root
            value = (k * c) * r3
            de[i, j] = value
            err_d[i, j] = (EPS * (8 + 3 * growth)) * abs(value)
            slope[i, j] = abs(k * (r3 + ((12 * B * B) * (c * c)) * (r3 / g)))
    return e, err_e, de, err_d, slope


@loop
def gelu_arguments(sa, sb, rho, sab):
    """delta = sqrt(1 + a + b + det) and -c, the arguments of gelu's arctan2."""
    n, m = rho.shape
    delta, minus_c = np.empty((n, m)), np.empty((n, m))
    for i in range(n):
        a = sa[i, 0] * sa[i, 0]
        for j in range(m):
            r, s = rho[i, j], sab[i, j]
            delta[i, j] = math.sqrt(1 + (a + sb[0, j] * sb[0, j]) + _det(r, s))
            minus_c[i, j] = -(r * s)
    return delta, minus_c


@loop
def gelu_block(sa, sb, rho, sab, angle):
    """s = u Phi(u), with delta^2 = 1 + a + b + det, given angle = arctan2(delta, -c)
    (the three orders of GeluForm)."""
    n, m = rho.shape
    e, err_e, de, err_d, slope = _outputs(n, m)
    two_pi = 2 * PI
    for i in range(n):
        a = sa[i, 0] * sa[i, 0]
        for j in range(m):
            r, s = rho[i, j], sab[i, j]
            c = r * s
            b = sb[0, j] * sb[0, j]
            sum_sq = a + b
            det = _det(r, s)
            d2 = 1 + sum_sq + det
            delta = math.sqrt(d2)
            ab1 = (a + 1) * (b + 1)
            quarter = angle[i, j] / two_pi
            first = ((c * c) / ab1 / delta + (a / (a + 1)) * (b / (b + 1)) * delta) / two_pi
            second = c * quarter
            e[i, j] = first + second
            err_e[i, j] = (EPS * 8) * (first + abs(second))
            first = c / (two_pi * delta) * (1 / d2 + (2 + sum_sq) / ab1)
            de[i, j] = first + quarter
            err_d[i, j] = (EPS * 8) * (abs(first) + quarter)
            ad, bd = a / d2, b / d2
            rest = ((sum_sq / d2) * (det / d2) + ad * ad + bd * bd + 4 * (ad * bd)
                    + (3 * sum_sq / d2) / d2 + (c / d2) * (c / d2) + (2 / d2) / d2)
            slope[i, j] = abs((1 + 1 / d2 + rest) / (two_pi * delta))
    return e, err_e, de, err_d, slope


def gelu(sa, sb, rho, sab):
    """The five arrays of gelu (numpy's vectorised arctan2 between two compiled passes)."""
    delta, minus_c = gelu_arguments(sa, sb, rho, sab)
    return gelu_block(sa, sb, rho, sab, np.arctan2(delta, minus_c))


@loop
def polynomial_table(x, weights, counts, factors, rows):
    """The factors of the finite Mehler sum on one side of a block: g_m(x) and |g|_m(x)
    for every point of ``x`` (n, 1) or (1, n) and every m, g_m(x) = sum_i weights[m, i]
    x^i by Horner (``counts[m]`` weights) and |g|_m its terms' magnitude (with |weights|);
    for the ``rows`` times factors[m] = 1/m! (points x terms), for the columns as they are
    and transposed (terms x points, read along a row of the block)."""
    points = x.size
    size = weights.shape[0]
    shape = (points, size) if rows else (size, points)
    g, mag = np.empty(shape), np.empty(shape)
    flat = x.ravel()
    for p in range(points):
        v = flat[p] * flat[p]
        for k in range(size):
            w = weights[k]
            top = counts[k] - 1
            value = w[top]
            magnitude = abs(w[top])
            for i in range(top - 1, -1, -1):
                value = value * v + w[i]
                magnitude = magnitude * v + abs(w[i])
            if rows:
                g[p, k] = factors[k] * value
                mag[p, k] = factors[k] * magnitude
            else:
                g[k, p] = value
                mag[k, p] = magnitude
    return g, mag


@loop(inline=True)
def _poly_row(ga, ma, gb_t, mb_t, nonzero, c, abs_c, value, size, with_size):
    """PolynomialForm.terms along one row of a block: Horner in c over m of
    (g_m(a)/m!) g_m(b) (``ga``, ``ma``: the row's factors with 1/m!; ``gb_t``, ``mb_t``:
    the columns', m x columns), skipping the g_m that vanish identically, into ``value``
    (and the magnitudes into ``size`` with ``with_size``).  The loop over the columns is
    innermost, so it vectorises; each entry sees the same operations as in the numpy
    form."""
    started = False
    for k in range(nonzero.size - 1, -1, -1):
        if started:
            for j in range(c.size):
                value[j] = value[j] * c[j]
            if with_size:
                for j in range(c.size):
                    size[j] = size[j] * abs_c[j]
        if not nonzero[k]:
            continue
        g, mg = ga[k], ma[k]
        b, mb = gb_t[k], mb_t[k]
        if started:
            for j in range(c.size):
                value[j] = value[j] + g * b[j]
            if with_size:
                for j in range(c.size):
                    size[j] = size[j] + mg * mb[j]
        else:
            for j in range(c.size):
                value[j] = g * b[j]
            if with_size:
                for j in range(c.size):
                    size[j] = mg * mb[j]
        started = True
    if not started:
        value[:] = 0.0
        size[:] = 0.0


@loop
def polynomial_block(sa, sb, rho, sab, forms, nonzero, growth):
    """s = sum_j p_j u^j: the finite Mehler sums of s, s' and s'' (the slope) on a block,
    ``forms`` holding each one's (weights, counts, 1/m!) of :meth:`PolynomialForm._tables`
    (its factors from :func:`polynomial_table` on the rows and the columns), each bound
    with its growth 4 (number of coefficients)."""
    n, m = rho.shape
    e, err_e, de, err_d, slope = _outputs(n, m)
    f0, f1, f2 = forms
    ga0, ma0 = polynomial_table(sa, f0[0], f0[1], f0[2], True)
    gb0, mb0 = polynomial_table(sb, f0[0], f0[1], f0[2], False)
    ga1, ma1 = polynomial_table(sa, f1[0], f1[1], f1[2], True)
    gb1, mb1 = polynomial_table(sb, f1[0], f1[1], f1[2], False)
    ga2, ma2 = polynomial_table(sa, f2[0], f2[1], f2[2], True)
    gb2, mb2 = polynomial_table(sb, f2[0], f2[1], f2[2], False)
    bound0, bound1 = EPS * (8 + growth[0]), EPS * (8 + growth[1])
    z0, z1, z2 = nonzero
    c, abs_c = np.empty(m), np.empty(m)
    for i in range(n):
        for j in range(m):
            c[j] = rho[i, j] * sab[i, j]
            abs_c[j] = abs(c[j])
        _poly_row(ga0[i], ma0[i], gb0, mb0, z0, c, abs_c, e[i], err_e[i], True)
        _poly_row(ga1[i], ma1[i], gb1, mb1, z1, c, abs_c, de[i], err_d[i], True)
        _poly_row(ga2[i], ma2[i], gb2, mb2, z2, c, abs_c, slope[i], slope[i], False)
        for j in range(m):
            err_e[i, j] = bound0 * err_e[i, j]
            err_d[i, j] = bound1 * err_d[i, j]
            slope[i, j] = abs(slope[i, j])
    return e, err_e, de, err_d, slope


def polynomial(sa, sb, rho, sab, tables):
    """The five arrays of a polynomial activation; ``tables``: for s, s' and s'' the
    (weights, counts, non-zero mask, 1/m!, growth) of :meth:`PolynomialForm._tables`."""
    forms = tuple((w, n, f) for w, n, _, f, _ in tables)
    nonzero = tuple(t[2] for t in tables)
    growth = np.array([t[4] for t in tables])
    return polynomial_block(sa, sb, rho, sab, forms, nonzero, growth)


@loop
def rectified_linear_block(rho, theta, asin, sab, mix, scale, hi, d_mix, d_scale, d_big,
                           d_arcsin, jump):
    """s = alpha u Y(u) + beta (-u) Y(-u) (relu, abs, leaky and two-slope relus), given
    theta = arccos(rho) (and arcsin(rho) in ``asin`` where ``d_arcsin``), as
    RectifiedFamily.ss_block / dsds_block compute them (n = 1):

        E[ss] = scale sab [(1 + mix) sin + rho (rest - mix theta)],  rest = pi - theta,
        E[s's'] = d_scale (rest + d_mix theta)  or, where alpha beta > 0 (``d_arcsin``),
                  d_big + d_scale arcsin(rho),
        slope = jump / (sab sin)  (the delta of s'': jump = (alpha + beta)^2 / (2 pi)),

    bounds 8 eps times the terms' magnitudes, infinite for 1 - |rho| below 1 - ``hi``
    (E[s's'] in its arccos form only)."""
    n, m = rho.shape
    e, err_e, de, err_d, slope = _outputs(n, m)
    for i in range(n):
        for j in range(m):
            r, t, s = rho[i, j], theta[i, j], sab[i, j]
            sin = math.sqrt((1 - r) * (1 + r))
            rest = PI - t
            trusted = r >= -hi and r <= hi
            if mix == 0:
                u = rest * r
                value = sin + u
                size = sin + abs(u)
            else:
                value = (1 + mix) * sin + r * (rest - mix * t)
                size = abs(1 + mix) * sin + abs(r) * (rest + abs(mix) * t)
            k = scale * s
            e[i, j] = k * value
            err_e[i, j] = ((EPS * 8) * k) * size if trusted else np.inf
            if d_arcsin:
                small = d_scale * asin[i, j]
                de[i, j] = small + d_big
                err_d[i, j] = (EPS * 8) * (abs(small) + d_big)
            else:
                if d_mix == 0:
                    value = rest
                    size = rest
                else:
                    value = rest + d_mix * t
                    size = rest + abs(d_mix) * t
                de[i, j] = d_scale * value
                err_d[i, j] = ((EPS * 8) * d_scale) * size if trusted else np.inf
            slope[i, j] = jump / (s * sin)
    return e, err_e, de, err_d, slope
