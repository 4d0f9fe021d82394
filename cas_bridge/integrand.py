"""The integrand ideal I1 of Ehat in the Weyl algebra of (y1, y2, x11, x12, x22).

G(x, y) = int s1(u) s2(v) exp(x11 u^2 + 2 x12 u v + x22 v^2 + y1 u + y2 v) du dv satisfies,
for every annihilator p(u, d_u) of s1 (MATH.md section 3.1), the Fourier image of p under the
ring homomorphism

    u   -> dy1,   d_u -> -(y1 + 2 x11 dy1 + 2 x12 dy2),
    v   -> dy2,   d_v -> -(y2 + 2 x12 dy1 + 2 x22 dy2),

and the three heat-type operators d11 - dy1^2, d22 - dy2^2, d12 - 2 dy1 dy2.
Restricting I1 to y = 0 (Oaku-Takayama) gives the annihilating ideal of Ehat(x) = G(x, 0).
The restricted variables come first, as Macaulay2's ``DrestrictionIdeal`` and Risa/Asir's
``restriction_ideal`` expect.  All products are true Weyl products.
"""

from __future__ import annotations

from collections.abc import Sequence

from .weyl import UD, Operator, WeylAlgebra

#: Weyl algebra of (y1, y2, x11, x12, x22) and (dy1, dy2, d11, d12, d22).
YX = WeylAlgebra(("y1", "y2", "x11", "x12", "x22"), ("dy1", "dy2", "d11", "d12", "d22"))


def fourier_image(p: Operator, side: int) -> Operator:
    """Image of p(u, d_u) (``side`` 0) or p(v, d_v) (``side`` 1) in :data:`YX`."""
    if p.alg != UD:
        raise ValueError("annihilators must be operators of the algebra Q[u]<d>")
    y1, y2, x11, x12, x22 = (YX.x(i) for i in range(5))
    dy1, dy2 = YX.d(0), YX.d(1)
    if side == 0:
        mult, deriv = dy1, -(y1 + 2 * x11 * dy1 + 2 * x12 * dy2)
    else:
        mult, deriv = dy2, -(y2 + 2 * x12 * dy1 + 2 * x22 * dy2)
    out = YX.zero()
    for ((i,), (j,)), c in p.terms.items():
        out = out + c * (mult**i) * (deriv**j)
    return out


def integrand_ideal(ann1: Sequence[Operator], ann2: Sequence[Operator]) -> list[Operator]:
    """Generators of I1 for the pair (s1, s2) with annihilators ann1, ann2 (MATH.md 3.1)."""
    dy1, dy2, d11, d12, d22 = (YX.d(i) for i in range(5))
    gens = [fourier_image(p, 0) for p in ann1] + [fourier_image(p, 1) for p in ann2]
    gens += [d11 - dy1**2, d22 - dy2**2, d12 - 2 * dy1 * dy2]
    return gens
