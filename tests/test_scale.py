"""Large kernels and large-N regression: tiles on Dask, out-of-core kernels that resume,
the iterative solvers (cg, nystrom) and a LocalCluster of two worker processes.

References: the kernels against kernels.json (mpmath) and the in-memory path; the cg
solver against the dense Cholesky solve; Falkon's CG against the Nystrom estimator's
normal equations solved densely by numpy; a resumed job against the bytes of an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import hgmntk
from hgmntk.errors import ConvergenceError, InvalidInputError
from hgmntk.kernel_store import load_kernels, write_kernels
from tests.conftest import kernel_results, mp_array

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

NET = dict(depth=3, w_std=1.5, b_std=0.05)


def _inputs(n: int, d: int = 4, seed: int = 0) -> np.ndarray:
    """Gaussian points with an exact duplicate, a near-duplicate and a collinear pair."""
    x = np.random.default_rng(seed).standard_normal((n, d))
    x[5] = x[3]
    x[6] = x[3] * (1 + 1e-9)
    x[7] = 2.5 * x[4]
    return x


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two worker processes (one thread each)."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


# -- tiled kernels ---------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("second", [False, True])
def test_tiled_kernels_equal_the_in_memory_ones(activation, second):
    x1 = _inputs(300)
    x2 = _inputs(170, seed=1) if second else None
    whole = hgmntk.kernels(x1, x2, activation=activation, **NET)
    tiled = hgmntk.kernels(x1, x2, activation=activation, chunks=64, **NET)
    assert tiled.careful_pairs == -1 and "tiles of 64" in tiled.method
    nngp, ntk = dask.compute(tiled.nngp, tiled.ntk)
    for mine, ref in ((nngp, whole.nngp), (ntk, whole.ntk)):
        assert np.max(np.abs(mine - ref) / np.abs(ref)) < 1e-13
    if not second:  # the tiles below the diagonal are their mirrors' transposes
        assert np.array_equal(nngp, nngp.T) and np.array_equal(ntk, ntk.T)
        assert np.array_equal(np.diag(ntk), np.diag(whole.ntk))


def test_tiled_kernels_match_the_reference_values():
    x, results = kernel_results("erf")
    r = max((r for r in results if float(r["b_std"]) > 0), key=lambda r: r["depth"])
    k = hgmntk.kernels(x, activation="erf", depth=r["depth"], w_std=float(r["W_std"]),
                       b_std=float(r["b_std"]), chunks=7)
    for field in ("nngp", "ntk"):
        ref = mp_array(r[field])
        assert np.max(np.abs(getattr(k, field).compute() - ref) / np.abs(ref)) <= 1e-12


def test_tiled_kernels_refuse_bad_input():
    x = _inputs(20)
    with pytest.raises(InvalidInputError, match="tile size"):
        hgmntk.kernels(x, activation="relu", depth=1, chunks=0)
    with pytest.raises(InvalidInputError, match="features"):
        hgmntk.kernels(x, x[:, :2], activation="relu", depth=1, chunks=8)
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        hgmntk.kernels(bad, activation="relu", depth=1, chunks=8)


def test_an_unregistered_activation_object_cannot_travel_to_workers():
    act = hgmntk.act.LeakyRelu(alpha=0.3)  # a family member: its name resolves again
    k = hgmntk.kernels(_inputs(20), activation=act, depth=1, chunks=8)
    assert k.activation == "leaky_relu(alpha=0.3)"
    lone = act.__class__(**{**act.__dict__, "name": "my_private_relu"})
    with pytest.raises(InvalidInputError, match="worker processes cannot rebuild it"):
        hgmntk.kernels(_inputs(20), activation=lone, depth=1, chunks=8)


# -- out-of-core kernels -----------------------------------------------------------------------

def _digest(folder) -> str:
    h = hashlib.sha256()
    for name in ("nngp.npy", "ntk.npy"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()


def test_out_of_core_kernels_equal_the_in_memory_ones(tmp_path):
    x1, x2 = _inputs(230), _inputs(90, seed=2)
    for name, second in (("sym", None), ("cross", x2)):
        folder = write_kernels(tmp_path / name, x1, second, activation="gelu", chunks=64, **NET)
        assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "nngp.npy", "ntk.npy"]
        k = load_kernels(folder)
        ref = hgmntk.kernels(x1, second, activation="gelu", **NET)
        assert isinstance(k.ntk, np.memmap) and k.activation == "gelu" and k.depth == 3
        for mine, want in ((k.nngp, ref.nngp), (k.ntk, ref.ntk)):
            assert np.max(np.abs(mine - want) / np.abs(want)) < 1e-13
        # the same job again: nothing to do; another job: a clear error, nothing lost
        before = _digest(folder)
        assert write_kernels(folder, x1, second, activation="gelu", chunks=64, **NET) == folder
        with pytest.raises(InvalidInputError, match="is not the result of this job"):
            write_kernels(folder, x1, second, activation="relu", chunks=64, **NET)
        assert _digest(folder) == before


class _Stop(Exception):
    pass


def _interrupt_after(count: int):
    def report(stage, done, total):
        if done >= count:
            raise _Stop
    return report


def test_an_interrupted_job_resumes_to_the_same_bytes(tmp_path):
    x = _inputs(300)
    whole = write_kernels(tmp_path / "whole", x, activation="relu", chunks=40, **NET)
    out = tmp_path / "resumed"
    with pytest.raises(_Stop):
        write_kernels(out, x, activation="relu", chunks=40, progress=_interrupt_after(9), **NET)
    partial = tmp_path / "resumed.partial"
    assert not out.exists() and partial.is_dir()
    with pytest.raises(InvalidInputError, match="unfinished job"):
        load_kernels(out)
    done = (partial / "tiles.done").read_text().splitlines()
    assert len(done) == 9
    # a kill in the middle of writing the log leaves a line cut short: ignored
    with open(partial / "tiles.done", "a") as fh:
        fh.write("3 4")
    seen = []
    write_kernels(out, x, activation="relu", chunks=40,
                  progress=lambda stage, d, t: seen.append((d, t)), **NET)
    assert seen[0] == (10, 36) and seen[-1] == (36, 36)  # 8 x 9 / 2 tiles, 9 skipped
    assert not partial.exists()
    assert _digest(out) == _digest(whole)


def test_a_killed_process_resumes_to_the_same_bytes(tmp_path):
    """SIGKILL of the CLI half-way: no finished-looking folder; the same command finishes."""
    x1, x2 = tmp_path / "x1.npy", tmp_path / "x2.npy"
    np.save(x1, _inputs(1200, seed=5))
    np.save(x2, _inputs(400, seed=6))
    cmd = [sys.executable, "-m", "hgmntk", "kernel", "--x1", str(x1), "--x2", str(x2),
           "--activation", "relu", "--depth", "3", "--chunks", "50", "--quiet", "--out"]
    subprocess.run(cmd + [str(tmp_path / "whole")], check=True, capture_output=True)
    log = tmp_path / "resumed.partial" / "tiles.done"
    proc = subprocess.Popen(cmd + [str(tmp_path / "resumed")], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= 20:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (tmp_path / "resumed").exists()
    assert len(log.read_text().splitlines()) < 24 * 8
    out = subprocess.run(cmd + [str(tmp_path / "resumed")], check=True, capture_output=True,
                         text=True)
    assert "wrote" in out.stdout
    assert _digest(tmp_path / "resumed") == _digest(tmp_path / "whole")


def test_a_foreign_or_damaged_unfinished_job_is_not_touched(tmp_path):
    x = _inputs(100)
    out = tmp_path / "k"
    with pytest.raises(_Stop):
        write_kernels(out, x, activation="relu", chunks=30, progress=_interrupt_after(2), **NET)
    partial = tmp_path / "k.partial"
    with pytest.raises(InvalidInputError, match="started with other parameters"):
        write_kernels(out, x, activation="relu", chunks=30, depth=2, w_std=1.5, b_std=0.05)
    with pytest.raises(InvalidInputError, match="started with other parameters"):
        write_kernels(out, x * 2, activation="relu", chunks=30, **NET)
    meta = json.loads((partial / "meta.json").read_text())
    (partial / "meta.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="unreadable"):
        write_kernels(out, x, activation="relu", chunks=30, **NET)
    (partial / "meta.json").write_text(json.dumps(meta))
    (partial / "ntk.npy").write_bytes(b"garbage")
    with pytest.raises(InvalidInputError, match="damaged"):
        write_kernels(out, x, activation="relu", chunks=30, **NET)
    assert partial.is_dir() and not out.exists()


def test_out_of_core_kernels_on_a_local_cluster(tmp_path, client):
    x1, x2 = _inputs(250), _inputs(120, seed=3)
    here = write_kernels(tmp_path / "here", x1, x2, activation="erf", chunks=64, **NET)
    there = write_kernels(tmp_path / "there", x1, x2, activation="erf", chunks=64,
                          client=client, **NET)
    assert _digest(here) == _digest(there)


# -- solvers ---------------------------------------------------------------------------------

def _problem(n: int, n_test: int = 150, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.sin(x[:, 0]) + 0.3 * x[:, 1] ** 2 + 0.05 * rng.standard_normal(n)
    return x, y, rng.standard_normal((n_test, d))


def _model(**kw):
    return hgmntk.KernelRegressor("relu", 2, w_std=1.5, b_std=0.05, progress=False, **kw)


def test_cg_solves_the_dense_system():
    x, y, xt = _problem(900)
    y2 = np.stack([y, np.cos(x[:, 2])], axis=1)  # several targets at once
    for target in (y, y2):
        dense = _model(ridge=0.05, solver="dense").fit(x, target)
        cg = _model(ridge=0.05, solver="cg", centres=100, tol=1e-10).fit(x, target)
        rep = cg.solve_report_
        assert rep.solver == "cg" and rep.iterations > 1 and rep.residual <= 1e-10
        ref = dense.predict(xt)
        assert np.max(np.abs(cg.predict(xt) - ref)) <= 1e-8 * np.max(np.abs(ref))
        assert cg.predict(xt).shape == ref.shape


def test_nystrom_solves_falkons_normal_equations():
    """beta of (K_nM' K_nM + lam K_MM) beta = K_nM' y, solved here densely by numpy."""
    x, y, xt = _problem(700)
    for cache in (4.0, 1e-6):  # tiles kept, or K_nM' K_nM accumulated in one pass
        model = _model(ridge=0.1, solver="nystrom", centres=150, tol=1e-11,
                       cache_gib=cache, chunks=97).fit(x, y)
        c = model.expansion_
        assert c.shape == (150, 6)
        k_nm = hgmntk.kernels(x, c, activation="relu", depth=2, w_std=1.5, b_std=0.05).ntk
        k_mm = hgmntk.kernels(c, activation="relu", depth=2, w_std=1.5, b_std=0.05).ntk
        beta = np.linalg.solve(k_nm.T @ k_nm + 0.1 * k_mm, k_nm.T @ y)
        k_tm = hgmntk.kernels(xt, c, activation="relu", depth=2, w_std=1.5, b_std=0.05).ntk
        ref = k_tm @ beta
        assert np.max(np.abs(model.predict(xt) - ref)) <= 1e-6 * np.max(np.abs(ref))


def test_nystrom_with_every_point_a_centre_is_the_dense_solve():
    x, y, xt = _problem(400)
    ref = _model(ridge=0.1, solver="dense").fit(x, y).predict(xt)
    got = _model(ridge=0.1, solver="nystrom", centres=10_000, tol=1e-12).fit(x, y).predict(xt)
    assert np.max(np.abs(got - ref)) <= 1e-8 * np.max(np.abs(ref))


def test_auto_switches_to_nystrom_above_the_dense_limit(monkeypatch):
    import hgmntk.solvers as solvers

    x, y, xt = _problem(300)
    monkeypatch.setattr(solvers, "AUTO_DENSE_MAX", 200)
    model = _model(ridge=0.1, centres=80).fit(x, y)
    assert model.solve_report_.solver == "nystrom"
    with pytest.raises(InvalidInputError, match="ridge='loo' needs the dense solver"):
        _model().fit(x, y)
    monkeypatch.setattr(solvers, "AUTO_DENSE_MAX", 10_000)
    assert _model(ridge=0.1).fit(x, y).solve_report_.solver == "dense"


def test_the_iterative_solvers_never_return_an_unconverged_answer():
    x, y, _ = _problem(300)
    with pytest.raises(ConvergenceError, match="did not converge in 2 iterations"):
        _model(ridge=1e-6, solver="cg", centres=5, max_iter=2, tol=1e-12).fit(x, y)
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        _model(ridge=1e-6, solver="nystrom", centres=100, max_iter=1, tol=1e-12).fit(x, y)


def test_bad_solver_parameters_are_clear_errors():
    x, y, xt = _problem(100)
    cases = [(dict(solver="qr", ridge=0.1), "solver must be one of"),
             (dict(solver="cg", ridge=0.0), "needs a ridge > 0"),
             (dict(solver="cg", ridge=0.1, tol=0), "tol must be"),
             (dict(solver="cg", ridge=0.1, max_iter=0), "max_iter must be"),
             (dict(solver="nystrom", ridge=0.1, centres=0), "centres must be"),
             (dict(solver="nystrom", ridge=0.1, chunks=-3), "tile size")]
    for kw, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            _model(**kw).fit(x, y)
    model = _model(ridge=0.1, solver="nystrom", kernel="nngp", centres=50).fit(x, y)
    with pytest.raises(InvalidInputError, match="needs the training kernel's factorisation"):
        model.predict(xt, return_std=True)
    with pytest.raises(InvalidInputError, match="needs the training kernel's factorisation"):
        model.ensemble_std(xt)


def test_solvers_on_a_local_cluster_give_the_same_predictions(client):
    x, y, xt = _problem(600)
    for kw in (dict(solver="nystrom", centres=120), dict(solver="nystrom", centres=120,
                                                         cache_gib=1e-6),
               dict(solver="cg", centres=60)):
        here = _model(ridge=0.1, tol=1e-10, chunks=128, **kw).fit(x, y).predict(xt)
        there = _model(ridge=0.1, tol=1e-10, chunks=128, client=client, **kw).fit(x, y)
        # (K_nM' K_nM summed per worker: the same sum in another order)
        assert np.max(np.abs(there.predict(xt) - here)) <= 1e-9 * np.max(np.abs(here))


# -- the command line ------------------------------------------------------------------------

def test_cli_kernel_folder_and_iterative_regression(tmp_path):
    x, y, xt = _problem(300, n_test=40)
    for name, arr in (("x", x), ("y", y), ("xt", xt)):
        np.save(tmp_path / f"{name}.npy", arr)
    base = [sys.executable, "-m", "hgmntk"]
    out = subprocess.run(base + ["kernel", "--x1", str(tmp_path / "x.npy"), "--activation",
                                 "relu", "--depth", "2", "--chunks", "64", "--workers", "2",
                                 "--out", str(tmp_path / "k")],
                         capture_output=True, text=True, check=True)
    assert "nngp.npy and ntk.npy of shape 300x300" in out.stdout
    ref = hgmntk.kernels(x, activation="relu", depth=2)
    assert np.max(np.abs(load_kernels(tmp_path / "k").ntk - ref.ntk) / ref.ntk) < 1e-13
    out = subprocess.run(base + ["regress", "--train-x", str(tmp_path / "x.npy"), "--train-y",
                                 str(tmp_path / "y.npy"), "--test-x", str(tmp_path / "xt.npy"),
                                 "--activation", "relu", "--depth", "2", "--ridge", "0.1",
                                 "--solver", "nystrom", "--centres", "80", "--out",
                                 str(tmp_path / "p.npy")],
                         capture_output=True, text=True, check=True)
    assert "nystrom:" in out.stdout and "80 centres" in out.stdout
    want = hgmntk.KernelRegressor("relu", 2, ridge=0.1, solver="nystrom", centres=80,
                                  progress=False).fit(x, y).predict(xt)
    assert np.max(np.abs(np.load(tmp_path / "p.npy") - want)) < 1e-12
    bad = subprocess.run(base + ["kernel", "--x1", str(tmp_path / "x.npy"), "--activation",
                                 "relu", "--depth", "2", "--chunks", "64", "--out",
                                 str(tmp_path / "k.npz")], capture_output=True, text=True)
    assert bad.returncode == 2 and "give --out a folder name" in bad.stderr


def test_large_dense_factorisations_go_block_by_block(monkeypatch):
    """The blocked Cholesky (what n > 4 CHOLESKY_BLOCK uses: the threaded OpenBLAS potrf
    crashed on 17 000 x 17 000 here) against numpy's solve, through the dense solver."""
    import hgmntk.solvers as solvers

    monkeypatch.setattr(solvers, "CHOLESKY_BLOCK", 37)
    x, y, xt = _problem(400)
    model = _model(ridge=0.05, solver="dense").fit(x, y)
    k = model.k_train_.ntk
    want = np.linalg.solve(k + 0.05 * np.eye(400), y)
    assert np.max(np.abs(model.alpha_ - want)) <= 1e-9 * np.max(np.abs(want))
    lower = model.factor_[0]
    assert np.array_equal(lower, np.tril(lower))
    from hgmntk.regression import _factor

    with pytest.raises(InvalidInputError, match="not positive definite"):
        _factor(-np.eye(300), 0.0)  # the blocked path refuses an indefinite matrix


def test_tiles_beyond_the_cache_are_never_all_held(client):
    """With nothing cached, every product computes, uses and drops one tile at a time
    (here and on a cluster), and gives the cached operator's values."""
    from hgmntk.solvers import KernelOperator
    from hgmntk.tiles import kernel_spec

    spec = kernel_spec("relu", 2, 1.5, 0.05)
    x, z = _inputs(300), _inputs(120, seed=4)
    v = np.random.default_rng(9).standard_normal((120, 2))
    idx = np.array([0, 7, 33, 119])
    kept = KernelOperator(spec, "ntk", x, z, tile=64)
    want = (kept.matmat(v), kept.gram(v), kept.columns(idx))
    assert kept.passes == 1
    for where in (None, client):
        fresh = KernelOperator(spec, "ntk", x, z, tile=64, client=where, cache_gib=1e-9)
        got = (fresh.matmat(v), fresh.gram(v), fresh.columns(idx))
        assert fresh._tiles is None and fresh.passes == 3
        for a, b in zip(got, want):
            assert np.allclose(a, b, rtol=1e-14, atol=0)


def test_a_scheduler_address_connects_for_the_call_and_an_unreachable_one_is_clear(
        client, monkeypatch):
    import hgmntk.tiles as tiles

    monkeypatch.setattr(tiles, "CONNECT_TIMEOUT", "2s")
    x, y, xt = _problem(200)
    address = client.scheduler.address
    here = _model(ridge=0.1, solver="nystrom", centres=50).fit(x, y).predict(xt)
    there = _model(ridge=0.1, solver="nystrom", centres=50, client=address).fit(x, y)
    assert np.max(np.abs(there.predict(xt) - here)) <= 1e-9 * np.max(np.abs(here))
    with pytest.raises(InvalidInputError, match="cannot reach the Dask scheduler"):
        _model(ridge=0.1, solver="nystrom", client="tcp://127.0.0.1:9").fit(x, y)
