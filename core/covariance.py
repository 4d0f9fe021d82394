"""Batches of 2x2 covariances [[a, c], [c, b]] carried with an accurate determinant.

Near-collinear inputs make det L = ab - c^2 cancel catastrophically in floating point; every
function here keeps ``det`` as an independent, accurately computed quantity and derives the
angle theta = arccos(c / sqrt(ab)) from it as ``atan2(sqrt(det), c)``, which is accurate
for theta near 0 and pi where ``arccos(rho)`` loses half the digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import CovarianceError, InvalidInputError

#: Variances whose products of two stay within float64, so the determinant ab - c^2 and
#: the error-free products (Dekker's split) neither overflow nor underflow: the range the
#: deep recursion keeps every layer in, and that the duals of activations which are not
#: positively homogeneous (no exact rescaling) are computed for.
VARIANCE_RANGE = (1e-150, 1e150)

_SPLIT = 134217729.0  # 2^27 + 1 (Veltkamp/Dekker splitting)


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = _SPLIT * x
    hi = t - (t - x)
    return hi, x - hi


def two_product(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Error-free product: x*y = p + e exactly (Dekker), elementwise."""
    p = x * y
    xh, xl = _split(x)
    yh, yl = _split(y)
    e = ((xh * yh - p) + xh * yl + xl * yh) + xl * yl
    return p, e


def accurate_det(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """ab - c^2 with relative error ~1e-16 even when ab and c^2 nearly cancel."""
    p1, e1 = two_product(a, b)
    p2, e2 = two_product(c, c)
    return (p1 - p2) + (e1 - e2)


@dataclass(frozen=True)
class Covariances:
    """A flat batch of covariances [[a_i, c_i], [c_i, b_i]] with det_i = a_i b_i - c_i^2 >= 0."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    det: np.ndarray

    def __len__(self) -> int:
        return self.a.shape[0]

    @cached_property
    def theta(self) -> np.ndarray:
        """Angle theta in [0, pi] with cos(theta) = rho = c / sqrt(ab) (accurate near 0, pi)."""
        return np.arctan2(np.sqrt(self.det), self.c)

    @cached_property
    def psi(self) -> np.ndarray:
        """pi - theta, computed directly (accurate near rho = -1, where theta ~ pi)."""
        return np.arctan2(np.sqrt(self.det), -self.c)

    @property
    def rho(self) -> np.ndarray:
        return self.c / np.sqrt(self.a * self.b)

    def astype(self, dtype) -> Covariances:
        """The same batch in another float type (numpy longdouble for extended precision)."""
        return Covariances(
            *(np.asarray(v, dtype=dtype) for v in (self.a, self.b, self.c, self.det))
        )

    def take(self, index) -> Covariances:
        """The sub-batch at ``index`` (boolean mask or integer array)."""
        return Covariances(self.a[index], self.b[index], self.c[index], self.det[index])

    @classmethod
    def from_arrays(cls, a, b, c, det=None, *, check: bool = True) -> Covariances:
        """Flatten, validate and complete a batch (``det`` computed accurately if omitted).

        Raises :class:`CovarianceError` for NaN/inf entries, negative variances or a
        matrix that is not positive semidefinite (beyond rounding: a determinant below
        -8 eps ab is an error; tiny negative rounding is clamped to 0).
        """
        dtype = np.longdouble if np.asarray(a).dtype == np.longdouble else float
        a, b, c = (np.asarray(v, dtype=dtype).ravel() for v in (a, b, c))
        if check:
            for name, v in (("a", a), ("b", b), ("c", c)):
                if not np.all(np.isfinite(v)):
                    raise InvalidInputError(
                        f"covariance entry {name} contains NaN or infinite values; "
                        "pass finite numbers"
                    )
            bad = (a < 0) | (b < 0)
            if np.any(bad):
                i = int(np.flatnonzero(bad)[0])
                raise CovarianceError(
                    f"variances must be >= 0, got a={float(a[i])!r}, b={float(b[i])!r} "
                    f"(entry {i}); "
                    "a covariance [[a, c], [c, b]] needs a, b >= 0 and c^2 <= ab"
                )
        if det is None:
            det = accurate_det(a, b, c)
        else:
            det = np.asarray(det, dtype=dtype).ravel()
        if check:
            tol = 8 * np.finfo(float).eps * a * b
            bad = det < -tol
            if np.any(bad):
                i = int(np.flatnonzero(bad)[0])
                raise _not_psd(a, b, c, i, f"ab - c^2 = {float(det[i]):.3e} < 0")
        det = np.maximum(det, 0.0)
        return cls(a, b, c, det)


def check_correlation(a, b, c) -> None:
    """The positive semidefinite test of :meth:`Covariances.from_arrays` for covariances
    not yet rescaled, as |c| <= sqrt(a) sqrt(b) (1 + 8 eps): no product is formed, so c far
    beyond sqrt(ab) is reported before a rescaled c' = c 2^-(p+q) or c^2 could overflow
    (relu at a = b = 3e-169, c = 1; erf at c = 1e154).  Negative variances pass here and
    are named by from_arrays."""
    a, b, c = (np.asarray(v, dtype=float).ravel() for v in (a, b, c))
    with np.errstate(invalid="ignore"):
        bad = np.abs(c) > np.sqrt(a) * np.sqrt(b) * (1 + 8 * np.finfo(float).eps)
    bad &= (a >= 0) & (b >= 0)
    if np.any(bad):
        raise _not_psd(a, b, c, int(np.flatnonzero(bad)[0]), "|c| exceeds sqrt(ab)")


def _not_psd(a, b, c, i: int, why: str) -> CovarianceError:
    """The error for entry ``i`` of a batch that is not positive semidefinite."""
    return CovarianceError(
        f"covariance [[{float(a[i])!r}, {float(c[i])!r}], [{float(c[i])!r}, {float(b[i])!r}]] "
        f"(entry {i}) is not positive semidefinite: {why}; |c| must not exceed sqrt(ab)"
    )


def two_sum(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Error-free sum: x + y = s + e exactly (Knuth), elementwise."""
    s = x + y
    bp = s - x
    e = (x - (s - bp)) + (y - bp)
    return s, e


def dot2(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise dot products as unevaluated sums hi + lo, accurate as if in twice the precision.

    The compensated algorithm Dot2 of Ogita, Rump and Oishi (2005), vectorised over rows.
    """
    p, s = two_product(x[:, 0], y[:, 0])
    for k in range(1, x.shape[1]):
        h, r = two_product(x[:, k], y[:, k])
        p, q = two_sum(p, h)
        s = s + (q + r)
    hi, lo = two_sum(p, s)
    return hi, lo


def affine_covariance(w2: float, b2: float, hi: np.ndarray, lo: np.ndarray, d: int) -> np.ndarray:
    """w2 (hi + lo) / d + b2 in numpy longdouble, accurate even when the terms nearly cancel.

    Formed in double-double arithmetic (error-free products and sums), then rounded once to
    extended precision.
    """
    p, e = two_product(np.full_like(hi, w2), hi)
    q = p / d
    qd, qe = two_product(q, np.full_like(q, float(d)))
    rem = (p - qd) - qe
    s, t = two_sum(q, np.full_like(q, b2))
    return np.longdouble(1) * s + (t + (rem + e + w2 * lo) / d)


def half_power(x: np.ndarray, k: float) -> np.ndarray:
    """x^(k/2) for x >= 0, through sqrt and integer powers when k is an integer (fast and
    exact to rounding in any float type); 0^0 = 1."""
    x = np.asarray(x)
    if k == 0:
        return np.ones_like(x)
    if float(k).is_integer():
        k = int(k)
        base = np.sqrt(x) if k % 2 else x
        p = abs(k) if k % 2 else abs(k) // 2
        with np.errstate(divide="ignore"):
            out = base**p
            return out if k > 0 else 1.0 / out
    return np.power(x, k / 2)
