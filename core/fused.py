"""Compiled (numba) loops of the fast path's float64 recursion, one pass per step.

The deep-kernel recursion of :mod:`hgmntk.block_kernels` does a few arithmetic operations
per entry and layer, carrying an absolute error bound along; written as numpy expressions
that is some thirty passes over each block per layer, and those passes, not the duals,
took most of the time of the closed-form kernels.  The functions here do the same
arithmetic, in the same order (so the same float64 values), entry by entry in one pass:

* :func:`correlations`: rho = Sigma / (sa sb) clipped to [-1, 1], sab = sa sb, and the
  error of c grown by the rounding of rho;
* :func:`layer_update`: Sigma_{h+1} = W^2 E + b^2, NTK_{h+1} = Sigma_{h+1} + NTK_h W^2 E',
  their bounds, and the mark of entries whose bound exceeds the target;
* :func:`write_block`: a block written into the kernel matrix, and mirrored for a
  symmetric one (column by column, so the transposed writes are contiguous);
* :func:`first_layer`: Sigma_0 and its rounding bound from a block's dot products;
* :func:`pair_dot2`: compensated dot products (Dot2) of scattered pairs, for the entries
  redone in extended precision;
* :func:`level_horner`, :func:`kinked_horner`: Mehler's sums (plain, each entry with the
  terms of its |rho| level; and the kinked series of :mod:`hgmntk.kink_mehler`).

They take float64 arrays only (numba has no long double): the extended-precision passes
keep the numpy expressions, which are also the reference the tests compare these with
(bitwise).  :func:`hgmntk.jit.loop` compiles with numba's numpy error model (x/0 is inf
or NaN, as numpy gives it) and without fast-math, so IEEE rounding holds operation by
operation.
Compiled code is cached on disk (:mod:`hgmntk.jit`), so only the first run on a machine
pays for the compilation.
"""

from __future__ import annotations

import numpy as np

from .jit import loop


@loop
def correlations(sigma, err, sa, sb, eps, rho_absolute):
    """rho = clip(Sigma / sab, -1, 1), sab = sa sb, and err + 2 eps (|Sigma| (+ sab with
    ``rho_absolute``)); ``sigma``, ``err`` are (n, m), ``sa`` (n, 1) or (n, m), ``sb``
    (1, m) or (n, m) (broadcast by indexing).  Returns (rho, sab, err)."""
    n, m = sigma.shape
    rho = np.empty((n, m))
    sab = np.empty((n, m))
    out = np.empty((n, m))
    wide_a = sa.shape[1] > 1
    wide_b = sb.shape[0] > 1
    for i in range(n):
        for j in range(m):
            a = sa[i, j] if wide_a else sa[i, 0]
            b = sb[i, j] if wide_b else sb[0, j]
            s = a * b
            sab[i, j] = s
            r = sigma[i, j] / s
            if r > 1.0:
                r = 1.0
            elif r < -1.0:
                r = -1.0
            rho[i, j] = r
            t = abs(sigma[i, j])
            if rho_absolute:
                t += s
            out[i, j] = err[i, j] + t * (2 * eps)
    return rho, sab, out


@loop
def layer_update(sigma_err, ntk, ntk_err, e, err_e, de, err_d, slope, has_slope, w2, b2,
                 eps, target, check, flag):
    """One layer of the recursion on (n, m) arrays: returns (Sigma, err, NTK, NTK err)
    of the next layer from the previous NTK and bounds and the evaluators' E, its bound,
    E', its bound and slope (ignored, taken infinite, unless ``has_slope``); with
    ``check``, entries whose bound exceeds ``target`` of their value (or is NaN) are set
    in ``flag``.  The same operations, in the same order, as
    :func:`hgmntk.block_kernels.recursion`'s numpy expressions."""
    n, m = ntk.shape
    new_s = np.empty((n, m))
    new_err = np.empty((n, m))
    new_k = np.empty((n, m))
    new_kerr = np.empty((n, m))
    two_b2 = eps * 2 * b2
    for i in range(n):
        for j in range(m):
            err = sigma_err[i, j]
            wde = w2 * de[i, j]
            if has_slope:
                d_err = slope[i, j] * err + err_d[i, j]
            else:
                d_err = np.inf
            new = w2 * e[i, j] + b2
            abs_new = abs(new)
            s_err = abs_new * eps + (abs(de[i, j]) * err + err_e[i, j]) * w2 + two_b2
            k = ntk[i, j]
            abs_k = abs(k)
            k_new = k * wde + new
            t = (abs_k * eps + ntk_err[i, j]) * abs(wde) + (abs_k * w2) * d_err
            t = t + s_err + eps * abs_new
            new_s[i, j] = new
            new_err[i, j] = s_err
            new_k[i, j] = k_new
            new_kerr[i, j] = t
            if check:
                if not (s_err <= target * abs_new) or not (t <= target * abs(k_new)):
                    flag[i, j] = True
    return new_s, new_err, new_k, new_kerr


@loop
def write_block(mat, values, r0, c0, symmetric):
    """mat[r0:r0+n, c0:c0+m] = values, and with ``symmetric`` the mirror image
    mat[c0:c0+m, r0:r0+n] = values.T; where the block straddles the diagonal (c0 == r0)
    only its upper triangle is used, on both sides."""
    n, m = values.shape
    square = symmetric and c0 == r0
    for i in range(n):
        start = i if square else 0
        for j in range(start, m):
            mat[r0 + i, c0 + j] = values[i, j]
    if symmetric:
        for j in range(m):
            stop = min(j + 1, n) if square else n
            for i in range(stop):
                mat[c0 + j, r0 + i] = values[i, j]


@loop(inline=True)
def _two_product(x, y):
    """x y = p + e exactly (Dekker's split, as :func:`hgmntk.covariance.two_product`)."""
    p = x * y
    t = 134217729.0 * x
    xh = t - (t - x)
    xl = x - xh
    t = 134217729.0 * y
    yh = t - (t - y)
    yl = y - yh
    return p, ((xh * yh - p) + xh * yl + xl * yh) + xl * yl


@loop(inline=True)
def _two_sum(x, y):
    """x + y = s + e exactly (Knuth)."""
    s = x + y
    bp = s - x
    return s, (x - (s - bp)) + (y - bp)


@loop
def pair_dot2(x1, x2, i, j):
    """For the pairs (x1[i[k]], x2[j[k]]): the dot products as unevaluated sums hi + lo
    (Dot2 of Ogita, Rump and Oishi, the same operations as
    :func:`hgmntk.covariance.dot2`) and the products of the norms |x1[i]| |x2[j]|,
    without gathering the rows first."""
    count, d = i.size, x1.shape[1]
    hi, lo, norms = np.empty(count), np.empty(count), np.empty(count)
    for k in range(count):
        x, y = x1[i[k]], x2[j[k]]
        p, s = _two_product(x[0], y[0])
        sx, sy = x[0] * x[0], y[0] * y[0]
        for t in range(1, d):
            h, r = _two_product(x[t], y[t])
            p, q = _two_sum(p, h)
            s = s + (q + r)
            sx += x[t] * x[t]
            sy += y[t] * y[t]
        hi[k], lo[k] = _two_sum(p, s)
        norms[k] = np.sqrt(sx * sy)
    return hi, lo, norms


@loop
def level_horner(ha_t, hb_t, rho, cut):
    """(e, e', e''/2) of e(rho) = sum_{n < cut} ha_t[i, n] hb_t[j, n] rho^n for every entry
    (i, j) of a 2-D block, each with its own number of terms ``cut[i, j]``: the compiled
    twin of :func:`hgmntk.mehler.level_horner` (the same Horner steps per entry, so the
    same values), with the coefficients as rows (ha_t: rows x terms, hb_t: columns x
    terms) so each entry reads them contiguously."""
    n, m = rho.shape
    e, de, d2 = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    for i in range(n):
        a = ha_t[i]
        for j in range(m):
            b = hb_t[j]
            r = rho[i, j]
            x = 0.0
            dx = 0.0
            d2x = 0.0
            for k in range(cut[i, j] - 1, -1, -1):
                d2x = d2x * r + dx
                dx = dx * r + x
                x = x * r + a[k] * b[k]
            e[i, j], de[i, j], d2[i, j] = x, dx, d2x
    return e, de, d2


@loop
def kinked_horner(ra_t, hb_t, qa_t, rb_t, rho, terms):
    """(e, e', e''/2) of e(rho) = sum_{n < terms} (ra_t[i, n] hb_t[j, n]
    + qa_t[i, n] rb_t[j, n]) rho^n on a 2-D block: the kinked Mehler sum of
    :mod:`hgmntk.kink_mehler` (its numpy loop's Horner steps, per entry)."""
    n, m = rho.shape
    e, de, d2 = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    for i in range(n):
        ra, qa = ra_t[i], qa_t[i]
        for j in range(m):
            hb, rb = hb_t[j], rb_t[j]
            r = rho[i, j]
            x = 0.0
            dx = 0.0
            d2x = 0.0
            for k in range(terms - 1, -1, -1):
                d2x = d2x * r + dx
                dx = dx * r + x
                x = x * r + ra[k] * hb[k]
                x = x + qa[k] * rb[k]
            e[i, j], de[i, j], d2[i, j] = x, dx, d2x
    return e, de, d2


@loop
def first_layer(dots, norm1, norm2, w2d, b2, growth, eps):
    """Sigma_0 = w2d x.x' + b^2 (in place of the dot products ``dots``) and its bound
    eps (w2d growth |x| |x'| + b^2) on a block, ``norm1``, ``norm2`` the rows' and the
    columns' norms (as :func:`hgmntk.block_kernels.block_layers` forms them)."""
    n, m = dots.shape
    err = np.empty((n, m))
    scale = w2d * growth
    for i in range(n):
        for j in range(m):
            dots[i, j] = w2d * dots[i, j] + b2
            err[i, j] = eps * (scale * (norm1[i] * norm2[j]) + b2)
    return dots, err
