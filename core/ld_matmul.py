"""Long-double matrix products through float64 BLAS (error-free splitting).

NumPy multiplies numpy longdouble matrices with a plain triple loop, ~50x slower than
BLAS.  :func:`matmul` computes A @ B for longdouble A (m x k) and B (k x n) as a sum of
float64 products that BLAS computes exactly (the splitting of Ozaki, Ogita, Oishi and
Rump, "Error-free transformations of matrix multiplication", Numer. Algorithms 59, 2012):

* every row of A is scaled by a power of two to |entries| < 1 and cut into slices of
  ``beta`` bits, A = sum_p 2^(e_i - p beta) I_p with integer matrices |I_p| < 2^beta
  (each cut exact in longdouble); the columns of B likewise, B = sum_q J_q 2^(f_j - q beta);
* with 2 beta + log2(k) <= 53 every product I_p @ J_q is an integer matrix below 2^53, so
  float64 BLAS returns it exactly, whatever its order of summation (FMA included);
* the products with p + q <= ``SLICES`` + 1 are scaled back and summed in longdouble; the
  ones left out are below k 2^(-(SLICES - 1) beta) max|A_i.| max|B_.j|, which for
  beta >= 20 is under 2^-60 of that scale, below long double's rounding of the sum.

The result is as accurate as the triple loop (a few long-double ulps of sum |a||b| per
entry, relative to the rows' and columns' largest entries) in a few float64 GEMMs.
"""

from __future__ import annotations

import math
import threading

import numpy as np

LD = np.longdouble
#: Slices per operand (4 x 20 bits cover long double's 64).
SLICES = 4


def _slices(x: np.ndarray, beta: int, axis: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Integer slices (float64) of ``x`` scaled along ``axis`` (rows: axis 1, columns:
    axis 0) and the exponents e with x ~ sum_p I_p 2^(e - p beta)."""
    biggest = np.max(np.abs(x), axis=axis, keepdims=True)
    _, e = np.frexp(np.where(biggest > 0, biggest, LD(1)))  # biggest < 2^e
    rest = np.ldexp(x, -e)  # |rest| < 1, exact
    shift = LD(2) ** beta
    out = []
    for _ in range(SLICES):
        rest = rest * shift  # exact (a power of two)
        cut = rest.astype(np.int64)  # truncation toward 0: |cut| < 2^beta
        rest = rest - cut.astype(LD)  # exact: cut holds rest's leading bits
        out.append(cut.astype(np.float64))  # integers below 2^beta: exact
    return out, e


#: Row slices of the last few left operands (the quadrature matrices are reused across
#: calls): id -> (the array itself, beta, slices, exponents).
_LEFT: dict[int, tuple] = {}
_LEFT_SIZE = 8
_LEFT_LOCK = threading.Lock()  # coefficient layers are made on worker threads too


def _row_slices(a: np.ndarray, beta: int):
    """:func:`_slices` of a's rows, remembered for the last few arrays (by identity; the
    entry keeps the array alive, so its id is not reused)."""
    with _LEFT_LOCK:
        hit = _LEFT.get(id(a))
    if hit is not None and hit[0] is a and hit[1] == beta:
        return hit[2], hit[3]
    rows, e = _slices(a, beta, axis=1)
    with _LEFT_LOCK:
        if len(_LEFT) >= _LEFT_SIZE:
            _LEFT.pop(next(iter(_LEFT)))
        _LEFT[id(a)] = (a, beta, rows, e)
    return rows, e


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for 2-D longdouble a (m x k) and b (k x n), through float64 BLAS (module
    docstring); any other float type goes to numpy's own product."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != LD and b.dtype != LD:
        return a @ b
    a = a if a.dtype == LD else a.astype(LD)
    b = b if b.dtype == LD else b.astype(LD)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] == 0:
        return a @ b
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return a @ b  # inf and NaN keep numpy's semantics
    k = a.shape[1]
    beta = (53 - math.ceil(math.log2(k + 1))) // 2
    if beta < 16:  # beyond ~2^21 terms the slices get too thin: the plain product
        return a @ b
    rows, ea = _row_slices(a, beta)
    cols, eb = _slices(b, beta, axis=0)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=LD)
    # from the smallest products up, so the large ones are added last
    for total in range(SLICES + 1, 1, -1):
        for p in range(max(1, total - SLICES), min(SLICES, total - 1) + 1):
            q = total - p
            exact = rows[p - 1] @ cols[q - 1]
            out += np.ldexp(exact.astype(LD), -(p + q) * beta)
    return np.ldexp(np.ldexp(out, ea), eb)
