"""Kernel matrices written out-of-core, tile by tile, and resumable.

``write_kernels(path, x1, x2, ...)`` makes a folder ``path`` holding ``nngp.npy`` and
``ntk.npy`` (plain NumPy files, opened with ``np.load(..., mmap_mode="r")`` or
:func:`load_kernels`) and ``meta.json`` (the kernel's parameters, the inputs' SHA-256, the
tile size).  While it runs, everything lives in ``path + ".partial"``: the two arrays as
memory maps, and ``tiles.done``, one line per tile whose values are flushed to disk.  A job
that is stopped (killed, out of power) leaves only that folder; the same call later skips
the tiles listed and computes the rest; the folder is renamed to ``path`` only when every
tile is on disk, so a file that looks complete is complete.  The tiles are deterministic,
so a resumed job writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .deep_kernels import Kernels, check_input_pair
from .errors import InvalidInputError
from .files import atomic_write
from .progress import ProgressCallback, reporter
from .tiles import DEFAULT_TILE, KernelSpec, check_tile, compute_tile, kernel_spec, tile_grid

FORMAT = "hgmntk-kernels"
VERSION = 1
NAMES = ("nngp", "ntk")


def _digest(x: np.ndarray | None) -> str | None:
    """SHA-256 of an input array's shape and bytes (None for no array)."""
    if x is None:
        return None
    h = hashlib.sha256(repr(x.shape).encode())
    h.update(np.ascontiguousarray(x, dtype=float).tobytes())
    return h.hexdigest()


def _meta(spec: KernelSpec, x1: np.ndarray, x2: np.ndarray | None, size: int) -> dict:
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    return {"format": FORMAT, "version": VERSION, "spec": spec.as_dict(),
            "shape": [x1.shape[0], n2], "tile": size,
            "x1_sha256": _digest(x1), "x2_sha256": _digest(x2)}


def _read_meta(folder: Path) -> dict | None:
    """The folder's meta.json, or None when it is missing or unreadable."""
    try:
        return json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    """Write a small JSON file whole or not at all."""
    atomic_write(path, lambda fh: json.dump(data, fh, indent=1), binary=False)


def _done_tiles(log: Path) -> set[tuple[int, int]]:
    """Tiles listed in ``tiles.done``; a line cut short by a kill is ignored."""
    done = set()
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2] == "ok" and all(p.isdigit() for p in parts[:2]):
                done.add((int(parts[0]), int(parts[1])))
    return done


class _NpyFile:
    """A float64 C-order .npy file written block by block with positioned writes (no memory
    map: the pages written are not held by this process)."""

    def __init__(self, path: Path, shape: tuple[int, int] | None = None) -> None:
        if shape is not None:  # a new file of the right size (sparse until written)
            np.lib.format.open_memmap(path, mode="w+", dtype=float, shape=shape).flush()
        with open(path, "rb") as fh:
            read = (np.lib.format.read_array_header_1_0 if np.lib.format.read_magic(fh) == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            have, fortran, dtype = read(fh)
            self.offset = fh.tell()
        if len(have) != 2 or fortran or dtype != np.dtype(float):
            raise ValueError(f"{path.name} is not a 2-D float64 C-order array")
        self.shape = have
        self.fd = os.open(path, os.O_RDWR)

    def write(self, r0: int, c0: int, block: np.ndarray) -> None:
        """Put ``block`` at rows r0.., columns c0.. ."""
        n2 = self.shape[1]
        block = np.ascontiguousarray(block, dtype="<f8")
        for k, row in enumerate(block):
            os.pwrite(self.fd, row.tobytes(), self.offset + 8 * ((r0 + k) * n2 + c0))

    def close(self) -> None:
        """Flush to disk and close."""
        os.fsync(self.fd)
        os.close(self.fd)


def _open_partial(partial: Path, meta: dict, shape: tuple[int, int]) -> list[_NpyFile]:
    """The arrays of an unfinished job at ``partial`` (created when absent)."""
    if partial.exists():
        old = _read_meta(partial)
        if old != meta:
            what = "is unreadable" if old is None else "was started with other parameters"
            raise InvalidInputError(
                f"{partial} holds an unfinished kernel job that {what} (activation, depth, "
                "variances, method, tile size or inputs differ); remove that folder to start "
                "again, or write to another path"
            )
        try:
            files = [_NpyFile(partial / f"{n}.npy") for n in NAMES]
        except (OSError, ValueError) as exc:
            raise InvalidInputError(
                f"{partial} holds an unfinished kernel job whose arrays are damaged ({exc}); "
                "remove that folder to start again"
            ) from exc
        if any(f.shape != shape for f in files):
            raise InvalidInputError(
                f"{partial} holds arrays of the wrong shape; remove that folder to start again")
        return files
    partial.mkdir(parents=True)
    files = [_NpyFile(partial / f"{n}.npy", shape) for n in NAMES]
    _write_json(partial / "meta.json", meta)
    return files


def write_kernels(
    path: str | os.PathLike,
    x1,
    x2=None,
    *,
    activation,
    depth: int,
    w_std: float = 1.0,
    b_std: float = 0.0,
    method: str = "auto",
    chunks: int = DEFAULT_TILE,
    client=None,
    progress: bool | ProgressCallback | None = None,
) -> Path:
    """Write NNGP(x1, x2) and NTK(x1, x2) to the folder ``path`` tile by tile (see the module
    docstring); resumes an unfinished job of the same kernel and inputs.

    Each tile is ``hgmntk.kernels`` of its rows and columns (``chunks`` of them), computed
    in this process, or on a Dask cluster when ``client`` (a ``dask.distributed.Client``)
    is given; this process writes the tiles as they arrive.  Memory: a few tiles, whatever
    the size of the matrix.  Returns ``Path(path)``.
    """
    spec = kernel_spec(activation, depth, w_std, b_std, method)
    size = check_tile(chunks)
    x1, x2 = check_input_pair(x1, x2)
    final = Path(path)
    meta = _meta(spec, x1, x2, size)
    if final.exists():
        if _read_meta(final) == {**meta, "complete": True}:
            return final  # the same job, already finished
        raise InvalidInputError(
            f"{final} exists and is not the result of this job; remove it or write to "
            "another path")
    if not final.parent.is_dir():
        raise InvalidInputError(f"cannot write {final}: folder {final.parent} does not exist")
    partial = final.with_name(final.name + ".partial")
    shape = (x1.shape[0], x1.shape[0] if x2 is None else x2.shape[0])
    arrays = _open_partial(partial, meta, shape)
    log = partial / "tiles.done"
    done = _done_tiles(log)
    todo = [t for t in tile_grid(*shape, size, x2 is None) if t not in done]
    total = len(done) + len(todo)
    report, close = reporter(progress, "hgmntk kernels")
    try:
        with open(log, "a", encoding="utf-8") as fh:
            for count, ((i, j), tile) in enumerate(_tiles(spec, x1, x2, size, todo, client),
                                                   start=len(done) + 1):
                r0, c0 = i * size, j * size
                for arr, block in zip(arrays, tile):
                    arr.write(r0, c0, block)
                    if x2 is None and i != j:
                        arr.write(c0, r0, block.T)
                    os.fdatasync(arr.fd)
                fh.write(f"{i} {j} ok\n")
                fh.flush()
                os.fsync(fh.fileno())
                report("tiles", count, total)
    finally:
        close()
        for arr in arrays:
            arr.close()
    _write_json(partial / "meta.json", {**meta, "complete": True})
    log.unlink()
    os.replace(partial, final)
    return final


def _tiles(spec, x1, x2, size, todo, client):
    """((I, J), tile) for every tile of ``todo``, as they are computed (on ``client``'s
    cluster when given, in this process otherwise)."""
    if client is None:
        for i, j in todo:
            yield (i, j), compute_tile(spec, x1, x2, size, i, j)
        return
    from dask.distributed import as_completed

    x1f = client.scatter(x1, broadcast=True, hash=False)
    x2f = None if x2 is None else client.scatter(x2, broadcast=True, hash=False)
    # a window of tasks in flight: finished tiles wait in the workers' memory until they
    # are written here, so at most ``window`` of them, whatever the size of the matrix
    window = 2 * max(1, len(client.scheduler_info()["workers"]))
    pending = iter(todo)
    running = as_completed()
    where = {}

    def submit() -> None:
        tile = next(pending, None)
        if tile is not None:
            future = client.submit(compute_tile, spec, x1f, x2f, size, *tile, pure=False)
            where[future.key] = tile
            running.add(future)

    for _ in range(window):
        submit()
    for future in running:
        yield where.pop(future.key), future.result()
        future.release()
        submit()


def load_kernels(path: str | os.PathLike) -> Kernels:
    """The kernels written by :func:`write_kernels`, as read-only memory maps (nothing is
    read into memory until used)."""
    folder = Path(path)
    meta = _read_meta(folder)
    if meta is None or meta.get("format") != FORMAT or not meta.get("complete"):
        partial = folder.with_name(folder.name + ".partial")
        hint = (f"; an unfinished job is in {partial}: run the same command again to finish "
                "it" if partial.exists() else "")
        raise InvalidInputError(f"{folder} is not a finished hgmntk kernel folder{hint}")
    nngp, ntk = (np.load(folder / f"{n}.npy", mmap_mode="r") for n in NAMES)
    spec = meta["spec"]
    return Kernels(nngp, ntk, spec["activation"], spec["depth"], spec["w_std"], spec["b_std"],
                   spec["method"], -1)
