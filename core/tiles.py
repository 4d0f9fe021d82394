"""Kernel matrices tile by tile: the unit of work of large kernels, on one machine or on Dask.

A tile is the block K(x1[rows], x2[cols]) computed by :func:`hgmntk.kernels` itself, so every
accuracy guarantee of the in-memory path (exact diagonals, near-duplicates, collinear pairs)
holds tile by tile.  A symmetric matrix K(x, x) is computed from its tiles on and above the
diagonal; a tile below is the transpose of its mirror, so the result is exactly symmetric.

:class:`KernelSpec` names everything a tile needs (activation as text, depth, variances,
method) and pickles, so Dask workers in other processes rebuild the activation from the
plugin registry, like the local process does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from .activation import Activation
from .errors import InvalidInputError

#: Rows (and columns) of a tile unless the caller says otherwise: 2048 x 2048 entries are
#: 32 MiB per kernel, and amortise the per-call work (diagonals, integrator set-up).
DEFAULT_TILE = 2048


@dataclass(frozen=True)
class KernelSpec:
    """Everything that fixes a kernel besides its inputs; picklable (activation as text)."""

    activation: str
    depth: int
    w_std: float = 1.0
    b_std: float = 0.0
    method: str = "auto"

    def kernels(self, x1: np.ndarray, x2: np.ndarray | None = None):
        """``hgmntk.kernels(x1, x2, ...)`` of this spec, silently (x2 None: the symmetric
        block of x1 with itself)."""
        from .deep_kernels import kernels

        return kernels(x1, x2, activation=self.activation, depth=self.depth,
                       w_std=self.w_std, b_std=self.b_std, method=self.method, progress=False)

    def tile(self, x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """The stacked (NNGP, NTK) block of shape (2, n1, n2) of :meth:`kernels`."""
        k = self.kernels(x1, x2)
        return np.stack([k.nngp, k.ntk])

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict (kept beside out-of-core results)."""
        return asdict(self)


def kernel_spec(activation: str | Activation, depth: int, w_std: float = 1.0,
                b_std: float = 0.0, method: str = "auto") -> KernelSpec:
    """A checked :class:`KernelSpec`: the activation resolves here (a clear error now, not
    on a worker later) and is kept as the text that resolves to it again anywhere."""
    from .deep_kernels import _check_params
    from .dual_activation import get_activation

    act = get_activation(activation, method)
    depth, w_std, b_std = _check_params(depth, w_std, b_std)
    try:
        again = get_activation(act.name, method)
    except Exception:  # noqa: BLE001 -- any failure means the name does not travel
        again = None
    if again is None or again.expression != act.expression:
        raise InvalidInputError(
            f"the activation {act.name!r} is an object that is not registered under its "
            "name, so worker processes cannot rebuild it; pass its expression text or a "
            "registered name (hgmntk activations list), or register it through a plugin"
        )
    return KernelSpec(act.name, depth, w_std, b_std, method)


#: How long a connection to a Dask scheduler given by its address may take.
CONNECT_TIMEOUT = "20s"


@contextlib.contextmanager
def connected(client):
    """The Dask client to run tiles on: ``client`` itself (a Client, or None), or a Client
    connected to the scheduler address ``client`` for the duration (closed after it)."""
    if client is None or not isinstance(client, str):
        yield client
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise InvalidInputError(
            "a Dask scheduler address needs dask.distributed: pip install 'hgmntk[dask]'"
        ) from None
    try:
        connection = Client(client, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidInputError(f"cannot reach the Dask scheduler at {client}: {exc}") from exc
    with connection:
        yield connection


def check_tile(tile) -> int:
    """A tile size: an integer >= 1 (clear error otherwise)."""
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise InvalidInputError(f"the tile size (chunks) must be an integer >= 1, got {tile!r}")
    return int(tile)


def spans(n: int, size: int) -> list[tuple[int, int]]:
    """[(0, size), (size, 2 size), ..., (.., n)]: the row ranges of tiles of ``size``."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def tile_grid(n1: int, n2: int, size: int, symmetric: bool) -> Iterator[tuple[int, int]]:
    """Indices (I, J) of the tiles to compute: all of them, or I <= J when symmetric."""
    rows, cols = len(spans(n1, size)), len(spans(n2, size))
    for i in range(rows):
        for j in range(i if symmetric else 0, cols):
            yield i, j


def compute_tile(spec: KernelSpec, x1: np.ndarray, x2: np.ndarray | None, size: int,
                 i: int, j: int) -> np.ndarray:
    """Tile (I, J) of K(x1, x2) (x2 None: of K(x1, x1), where tile (I, I) is the symmetric
    block of its own rows)."""
    r0, r1 = i * size, min((i + 1) * size, x1.shape[0])
    other = x1 if x2 is None else x2
    c0, c1 = j * size, min((j + 1) * size, other.shape[0])
    if x2 is None and i == j:
        return spec.tile(x1[r0:r1])
    return spec.tile(x1[r0:r1], other[c0:c1])


def dask_kernels(spec: KernelSpec, x1: np.ndarray, x2: np.ndarray | None, size: int):
    """(NNGP, NTK) as lazy dask arrays of shape (n1, n2) with square chunks of ``size``:
    one task per tile on or above the diagonal (x2 None), whose result both arrays share."""
    import dask
    import dask.array as da

    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    rows, cols = spans(n1, size), spans(n2, size)
    x1d = dask.delayed(x1, pure=True)  # one copy of the inputs in the graph
    x2d = None if x2 is None else dask.delayed(x2, pure=True)
    task = dask.delayed(compute_tile, pure=True)
    done: dict[tuple[int, int], object] = {
        (i, j): task(spec, x1d, x2d, size, i, j)
        for i, j in tile_grid(n1, n2, size, x2 is None)
    }
    blocks = []
    for i, (r0, r1) in enumerate(rows):
        row = []
        for j, (c0, c1) in enumerate(cols):
            if (i, j) in done:
                block = da.from_delayed(done[i, j], (2, r1 - r0, c1 - c0), dtype=float)
            else:  # below the diagonal of a symmetric matrix: the mirror's transpose
                block = da.from_delayed(done[j, i], (2, c1 - c0, r1 - r0),
                                        dtype=float).transpose(0, 2, 1)
            row.append(block)
        blocks.append(row)
    both = da.block(blocks)
    return both[0], both[1]
