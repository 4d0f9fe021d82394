"""``hgmntk dual``, ``hermite``, ``kernel``, ``empirical`` and ``regress``: the numbers.

Each command's parser (``add_*_parser``) sits next to its handler (``cmd_*``);
:func:`register` adds them all to the ``hgmntk`` parser.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path
from typing import TextIO

import numpy as np

from .common import (
    EXIT_OK,
    FORMATTER,
    CLIError,
    add_method_options,
    add_network_options,
    atomic_write,
    check_output_path,
    format_float,
    parse_options,
    read_inputs,
    read_targets,
    resolve_activation,
    save_array,
)


def add_dual_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk dual``."""
    p = sub.add_parser(
        "dual",
        formatter_class=FORMATTER,
        help="evaluate one dual activation value",
        description="Print E[s(u) s(v)] (or E[s'(u) s'(v)] with --derivative) for (u, v) ~ "
        "N(0, [[a, c], [c, b]]) with 17 significant digits; with --error also the estimated "
        "absolute error, on the same line after a space.",
        epilog="examples:\n"
        "  hgmntk dual relu --a 1 --b 2 --c 0.5\n"
        "  hgmntk dual relu --a 1 --b 1 --c 0.3 --derivative --method hgm --error\n"
        "  hgmntk dual 'Heaviside(u)*cos(u)' --a 1 --b 1 --c 0.5\n"
        "  hgmntk dual sigmoid --a 1 --b 1 --c 0.5 --method gauss-hermite -o degree=120\n"
        "  hgmntk dual 'u*tanh(log(1 + exp(u)))' --a 1 --b 1 --c 0.5 --method gauss-hermite",
    )
    p.add_argument(
        "activation",
        metavar="ACTIVATION",
        help="registered name (see 'hgmntk activations'), family member "
        "('erf(a=0.5, b=2.0)') or SymPy expression in u",
    )
    p.add_argument("--a", type=float, required=True, help="variance of u")
    p.add_argument("--b", type=float, required=True, help="variance of v")
    p.add_argument("--c", type=float, required=True, help="covariance of u and v")
    p.add_argument("--derivative", action="store_true", help="dual of the derivative s'")
    p.add_argument("--error", action="store_true", help="also print the error estimate")
    add_method_options(p)
    p.set_defaults(func=cmd_dual)


def cmd_dual(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk dual``: one dual activation value."""
    from ..dual_activation import dual

    options = parse_options(args.option)
    value, error = dual(
        resolve_activation(args.activation, args.method),
        args.a,
        args.b,
        args.c,
        derivative=args.derivative,
        method=args.method,
        rtol=args.rtol,
        return_error=True,
        **options,
    )
    if args.error:
        print(f"{format_float(value)} {float(error):.3g}", file=out)
    else:
        print(format_float(value), file=out)
    return EXIT_OK


def add_hermite_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk hermite``."""
    p = sub.add_parser(
        "hermite",
        formatter_class=FORMATTER,
        help="print the Hermite coefficients of an activation",
        description="Print h_n = E[s(sqrt(a) X) He_n(X)] / sqrt(n!) for n = 0..N (X ~ N(0, 1); "
        "s' with --derivative), one 'n h_n' line each with 17 significant digits, from the "
        "recurrence in n derived from the activation's annihilator (ball arithmetic; "
        "quadrature only for the first few). Mehler: E[s(u) s(v)] = sum h_n(a) h_n(b) rho^n.",
        epilog="examples:\n"
        "  hgmntk hermite relu --n 50\n"
        "  hgmntk hermite gelu --n 500 --variance 2.5\n"
        "  hgmntk hermite resin --n 20 --derivative",
    )
    p.add_argument("activation", metavar="ACTIVATION",
                   help="registered name, family member or SymPy expression in u")
    p.add_argument("--n", type=int, required=True, metavar="N", help="largest index n")
    p.add_argument("--variance", type=float, default=1.0, metavar="A",
                   help="variance a of the argument (default: 1)")
    p.add_argument("--derivative", action="store_true", help="coefficients of s'")
    p.set_defaults(func=cmd_hermite)


def cmd_hermite(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk hermite``: the Hermite coefficients, one per line."""
    from ..hermite import hermite

    values = hermite(resolve_activation(args.activation, "hgm"), args.n, args.variance,
                     derivative=args.derivative)
    for n, value in enumerate(values):
        print(f"{n} {format_float(value)}", file=out)
    return EXIT_OK


def add_kernel_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk kernel``."""
    p = sub.add_parser(
        "kernel",
        formatter_class=FORMATTER,
        help="NNGP and NTK matrices of a deep network",
        description="Compute the NNGP and NTK matrices of a fully connected network of depth L "
        "at infinite width (neural-tangents' NTK parameterization) between the rows of X1 "
        "and X2 (X1 itself if --x2 is not given), and write them to one .npz archive with the "
        "arrays 'nngp' and 'ntk'.\n\n"
        "Inputs are .npy arrays or comma-separated text (.csv) of shape (n_points, "
        "n_features); a non-numeric first line of a CSV is a header and skipped.\n\n"
        "Large kernels: an --out without a suffix is a folder that receives nngp.npy "
        "and ntk.npy tile by tile (--chunks rows and columns a tile), out-of-core; a job "
        "that is stopped leaves OUT.partial, and the same command resumes it.  --workers N "
        "computes the tiles on a local Dask cluster, --scheduler ADDRESS on a running one "
        "(pip install 'hgmntk[dask]').",
        epilog="examples:\n"
        "  hgmntk kernel --x1 x.csv --activation relu --depth 3 --out k.npz\n"
        "  hgmntk kernel --x1 big.npy --x2 test.npy --activation relu --depth 3 \\\n"
        "      --chunks 4096 --workers 2 --out kernels/   # out-of-core, resumable\n"
        "  hgmntk kernel --x1 train.npy --x2 test.npy --activation step --depth 2 \\\n"
        "      --w-std 1.4 --b-std 0.1 --out k.npz\n"
        "  python -c \"import numpy as np; k = np.load('k.npz'); print(k['ntk'])\"",
    )
    p.add_argument("--x1", required=True, metavar="FILE", help="inputs (.npy or .csv)")
    p.add_argument("--x2", metavar="FILE", help="second inputs (default: X1)")
    add_network_options(p)
    add_method_options(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT.npz|DIR",
        help="output archive with arrays nngp and ntk, shape (n1, n2); or a folder (a name "
        "without suffix) for nngp.npy and ntk.npy written tile by tile (out-of-core, "
        "resumable)",
    )
    p.add_argument("--chunks", type=int, default=None, metavar="N",
                   help="rows and columns of a tile of an out-of-core kernel (default 2048)")
    add_cluster_options(p)
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line (shown on a terminal for jobs over 2 s)",
    )
    p.set_defaults(func=cmd_kernel)


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """--workers and --scheduler: where kernel tiles are computed."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, metavar="N",
                       help="compute kernel tiles on a local Dask cluster of N processes")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="compute kernel tiles on the Dask cluster at ADDRESS "
                       "(e.g. tcp://host:8786)")


@contextlib.contextmanager
def cluster_client(args: argparse.Namespace):
    """A dask.distributed Client for --workers / --scheduler (None without them)."""
    from ..tiles import connected

    if args.workers is None and args.scheduler is None:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise CLIError("--workers and --scheduler need Dask: pip install 'hgmntk[dask]'"
                       ) from None
    if args.scheduler is not None:
        with connected(args.scheduler) as client:
            yield client
        return
    if args.workers < 1:
        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def cmd_kernel(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk kernel``: NNGP and NTK matrices into one .npz file."""
    from ..deep_kernels import kernels

    suffix = Path(args.out).suffix
    if not suffix:
        return _kernel_folder(args, out)
    if suffix.lower() != ".npz":
        raise CLIError(f"--out {args.out}: give a file name ending in .npz (one archive) or "
                       "a folder name without suffix (out-of-core, tile by tile)")
    if args.chunks is not None or args.workers is not None or args.scheduler is not None:
        raise CLIError("--chunks, --workers and --scheduler write an out-of-core folder: "
                       "give --out a folder name (no suffix)")
    target, x1, x2 = _kernel_io(args)
    k = kernels(
        x1,
        x2,
        activation=resolve_activation(args.activation, args.method),
        depth=args.depth,
        w_std=args.w_std,
        b_std=args.b_std,
        method=args.method,
        rtol=args.rtol,
        progress=False if args.quiet else None,
        **parse_options(args.option),
    )
    _save_kernels(target, k, f"method {k.method}", out)
    infinite = int(np.count_nonzero(np.isinf(k.ntk)))
    if infinite:
        print(
            f"note: {infinite} NTK entries are inf: s' has a Dirac term (s jumps), and "
            "E[s'(u) s'(v)] diverges on collinear inputs (rho = +-1, the diagonal "
            "included); the NNGP is finite",
            file=out,
        )
    return EXIT_OK


def _kernel_folder(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk kernel --out DIR``: out-of-core, tile by tile, resumable."""
    from ..kernel_store import write_kernels
    from ..tiles import DEFAULT_TILE

    if args.option:
        raise CLIError("--option is not supported with an out-of-core --out folder")
    x1 = read_inputs(args.x1, "--x1")
    x2 = None if args.x2 is None else read_inputs(args.x2, "--x2")
    with cluster_client(args) as client:
        folder = write_kernels(
            args.out, x1, x2, activation=resolve_activation(args.activation, args.method),
            depth=args.depth, w_std=args.w_std, b_std=args.b_std, method=args.method,
            chunks=DEFAULT_TILE if args.chunks is None else args.chunks, client=client,
            progress=False if args.quiet else None)
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    print(f"wrote {folder}: nngp.npy and ntk.npy of shape {x1.shape[0]}x{n2} (open with "
          "numpy.load(..., mmap_mode='r') or hgmntk.load_kernels)", file=out)
    return EXIT_OK


def add_empirical_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk empirical``."""
    p = sub.add_parser(
        "empirical",
        formatter_class=FORMATTER,
        help="NNGP and NTK of one finite-width network",
        description="Draw one fully connected network of depth L and WIDTH units per hidden "
        "layer (the network of 'hgmntk kernel', NTK parameterization, one output) with "
        "SEED, and write its empirical NNGP (read-out layer's kernel of its features) and "
        "empirical NTK (J J^T over all parameters, by the layer-wise structured formula) "
        "between the rows of X1 and X2 to one .npz archive with the arrays 'nngp' and "
        "'ntk'. They tend to the kernels of 'hgmntk kernel' like WIDTH^(-1/2).",
        epilog="examples:\n"
        "  hgmntk empirical --x1 x.csv --activation relu --depth 3 --width 512 --out e.npz\n"
        "  hgmntk empirical --x1 x.npy --activation erf --depth 2 --width 4096 --seed 3 \\\n"
        "      --w-std 1.4 --b-std 0.1 --out e.npz",
    )
    p.add_argument("--x1", required=True, metavar="FILE", help="inputs (.npy or .csv)")
    p.add_argument("--x2", metavar="FILE", help="second inputs (default: X1)")
    add_network_options(p)
    p.add_argument("--width", required=True, type=int, metavar="WIDTH",
                   help="units per hidden layer (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation (default 0)")
    p.add_argument("--out", required=True, metavar="OUT.npz",
                   help="output archive with arrays nngp and ntk, shape (n1, n2)")
    p.set_defaults(func=cmd_empirical)


def cmd_empirical(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk empirical``: one finite-width network's NNGP and NTK into one .npz file."""
    from ..empirical import empirical_kernels

    target, x1, x2 = _kernel_io(args)
    k = empirical_kernels(
        x1, x2, activation=resolve_activation(args.activation, "gauss-hermite"),
        depth=args.depth, width=args.width, w_std=args.w_std, b_std=args.b_std,
        seed=args.seed,
    )
    _save_kernels(target, k, k.method, out)
    return EXIT_OK


def _kernel_io(args: argparse.Namespace):
    """(the checked --out path, X1, X2 or None) of ``kernel`` and ``empirical``; the output
    path is checked before any computation."""
    target = check_output_path(args.out, (".npz",), "--out")
    x1 = read_inputs(args.x1, "--x1")
    x2 = None if args.x2 is None else read_inputs(args.x2, "--x2")
    return target, x1, x2


def _save_kernels(target, k, how: str, out: TextIO) -> None:
    """Write k.nngp and k.ntk to one .npz archive (atomically) and say so."""
    atomic_write(target, lambda fh: np.savez(fh, nngp=k.nngp, ntk=k.ntk))
    print(f"wrote {target}: nngp and ntk of shape {k.nngp.shape[0]}x{k.nngp.shape[1]} "
          f"({k.activation}, depth {k.depth}, {how})", file=out)


def add_regress_parser(sub: argparse._SubParsersAction) -> None:
    """The parser of ``hgmntk regress``."""
    p = sub.add_parser(
        "regress",
        formatter_class=FORMATTER,
        help="kernel regression with the NTK or NNGP",
        description="Fit kernel (ridge) regression with the infinite-width NTK or NNGP on "
        "(train-x, train-y) and write the predictions at test-x (.npy, or .csv text by "
        "suffix).  The ridge is chosen by leave-one-out cross-validation unless --ridge "
        "gives one.  --std-out (NNGP only) writes the predictive standard deviation of a "
        "new observation (a calibrated band: the Gaussian-process posterior with the "
        "ridge as noise and the output scale fitted by maximum likelihood); "
        "--ensemble-std-out writes the spread over random initialisations of the trained "
        "networks, which is not an error bar (it vanishes at the training points).",
        epilog="examples:\n"
        "  hgmntk regress --train-x x.csv --train-y y.csv --test-x xt.csv \\\n"
        "      --activation relu --depth 2 --out pred.npy\n"
        "  hgmntk regress --train-x x.npy --train-y y.npy --test-x xt.npy --activation erf \\\n"
        "      --depth 3 --kernel nngp --out pred.csv --std-out std.csv\n"
        "  hgmntk regress --train-x x.npy --train-y y.npy --test-x xt.npy --activation relu \\\n"
        "      --depth 3 --ridge 1e-6 --out pred.npy --ensemble-std-out spread.npy",
    )
    p.add_argument("--train-x", required=True, metavar="FILE", help="training inputs")
    p.add_argument("--train-y", required=True, metavar="FILE", help="training targets")
    p.add_argument("--test-x", required=True, metavar="FILE", help="test inputs")
    add_network_options(p)
    p.add_argument(
        "--kernel",
        choices=("ntk", "nngp"),
        default="ntk",
        help="kernel to regress with (default: ntk)",
    )
    p.add_argument(
        "--ridge",
        default="loo",
        metavar="R",
        help="ridge (diagonal regularisation): a number >= 0, or 'loo' (default): the "
        "ridge of least leave-one-out error over mean(diag K) * 10^(-9..1)",
    )
    p.add_argument(
        "--method",
        default="auto",
        metavar="M",
        help="integrator (default: auto; see 'hgmntk plugins')",
    )
    p.add_argument("--out", required=True, metavar="PRED.npy", help="predictions (.npy/.csv)")
    p.add_argument(
        "--std-out",
        metavar="STD.npy",
        help="NNGP only: predictive standard deviation of a new observation (.npy/.csv)",
    )
    p.add_argument(
        "--ensemble-std-out",
        metavar="SPREAD.npy",
        help="standard deviation over random initialisations of the trained networks "
        "(.npy/.csv; not an error bar)",
    )
    p.add_argument("--solver", default="auto", choices=("auto", "dense", "cg", "nystrom"),
                   help="dense Cholesky, matrix-free conjugate gradients, or Falkon's "
                   "Nystrom estimator (auto: dense up to 10000 training points)")
    p.add_argument("--centres", type=int, metavar="M",
                   help="Nystrom centres (default min(n, 5000))")
    p.add_argument("--tol", type=float, default=1e-7,
                   help="relative residual of the iterative solvers (default 1e-7)")
    p.add_argument("--max-iter", type=int, default=500,
                   help="iteration limit of the iterative solvers (default 500)")
    p.add_argument("--chunks", type=int, metavar="ROWS",
                   help="rows of a kernel tile of the iterative solvers")
    add_cluster_options(p)
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line (shown on a terminal for kernels over 2 s)",
    )
    p.set_defaults(func=cmd_regress)


def cmd_regress(args: argparse.Namespace, out: TextIO) -> int:
    """``hgmntk regress``: kernel (ridge) regression with the NTK or NNGP."""
    try:
        from ..regression import KernelRegressor
    except ImportError as exc:
        raise CLIError(
            f"kernel regression (hgmntk.regression) is not available in this build: {exc}"
        ) from None
    pred_path = check_output_path(args.out, (".npy", ".csv"), "--out")
    std_path = spread_path = None
    if args.std_out is not None:
        if args.kernel != "nngp":
            raise CLIError(
                "--std-out is the NNGP's predictive band and needs --kernel nngp; the NTK "
                "regressor has no posterior (--ensemble-std-out writes the spread of trained "
                "networks over initialisations, which is not an error bar)"
            )
        std_path = check_output_path(args.std_out, (".npy", ".csv"), "--std-out")
    if args.ensemble_std_out is not None:
        spread_path = check_output_path(
            args.ensemble_std_out, (".npy", ".csv"), "--ensemble-std-out"
        )
    ridge = _ridge_argument(args.ridge)
    x_train = read_inputs(args.train_x, "--train-x")
    y_train = read_targets(args.train_y, "--train-y")
    x_test = read_inputs(args.test_x, "--test-x")
    if y_train.shape[0] != x_train.shape[0]:
        raise CLIError(
            f"--train-y has {y_train.shape[0]} rows but --train-x has {x_train.shape[0]}"
        )
    if x_test.shape[1] != x_train.shape[1]:  # before the (possibly long) training kernel
        raise CLIError(
            f"--test-x has {x_test.shape[1]} features (columns) but --train-x has "
            f"{x_train.shape[1]}; both need the same features in the same order"
        )
    if std_path is not None or spread_path is not None:
        from ..solvers import chosen_solver

        if chosen_solver(args.solver, x_train.shape[0]) != "dense":
            raise CLIError(
                "--std-out and --ensemble-std-out need the training kernel's factorisation "
                "(--solver dense); the iterative solvers give predictions only")
    with cluster_client(args) as client:
        model = KernelRegressor(
            resolve_activation(args.activation, args.method),
            args.depth,
            w_std=args.w_std,
            b_std=args.b_std,
            kernel=args.kernel,
            ridge=ridge,
            method=args.method,
            progress=False if args.quiet else None,
            solver=args.solver,
            centres=args.centres,
            tol=args.tol,
            max_iter=args.max_iter,
            chunks=args.chunks,
            client=client,
        ).fit(x_train, y_train)
        if std_path is not None:
            pred, std = model.predict(x_test, return_std=True)
        else:
            pred, std = model.predict(x_test), None
        spread = None if spread_path is None else model.ensemble_std(x_test)
    save_array(pred_path, np.asarray(pred))
    chosen = " (leave-one-out)" if ridge == "loo" else ""
    msg = f"wrote {pred_path}: predictions of shape {np.shape(pred)}"
    if std_path is not None:
        save_array(std_path, np.asarray(std))
        msg += f"; {std_path}: predictive standard deviations"
    if spread is not None:
        save_array(spread_path, np.asarray(spread))
        msg += f"; {spread_path}: spread over initialisations"
    rep = model.solve_report_
    how = (f"; {rep.solver}: {rep.iterations} iterations, residual {rep.residual:.1e}"
           + (f", {rep.centres} centres" if rep.solver == "nystrom" else "")
           if rep.solver != "dense" else "")
    print(f"{msg}; ridge {model.ridge_:.3g}{chosen}{how}", file=out)
    return EXIT_OK


def _ridge_argument(text: str) -> float | str:
    """--ridge: 'loo' or a finite number >= 0."""
    if text == "loo":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise CLIError(f"--ridge must be 'loo' or a finite number >= 0, got {text!r}")
    return value



def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dual``, ``hermite``, ``kernel``, ``empirical`` and ``regress`` to the
    subcommands."""
    add_dual_parser(sub)
    add_hermite_parser(sub)
    add_kernel_parser(sub)
    add_empirical_parser(sub)
    add_regress_parser(sub)
