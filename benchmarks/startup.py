"""Start-up time of the command line: how long a short call takes before it does anything.

Prints the median wall time (over ``--repeat`` runs, each a fresh process) of

- ``python -c "import numpy"``: the baseline, the interpreter and NumPy alone;
- ``hgmntk --help``, ``hgmntk activations``, ``hgmntk dual relu --a 1 --b 1 --c 0.5`` (a
  closed form), ``hgmntk activations show gelu`` (the summary of the largest shipped
  system) and ``hgmntk dual gelu --a 1 --b 1 --c 0.5`` (an HGM solve, for scale);

and each one's ratio to the baseline measured in the same run.  The issue's target: the
first three well under a second.  ``--hgmntk PATH`` times another installation's
``hgmntk`` executable too (e.g. an older version in its own virtual environment, for a
before/after table), in the same run.  Run:

    python benchmarks/startup.py [--repeat 5] [--hgmntk /path/to/other/bin/hgmntk]
                                 [--skip-other "activations show gelu"]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

CALLS = {
    "--help": ["--help"],
    "activations": ["activations"],
    "dual relu (closed form)": ["dual", "relu", "--a", "1", "--b", "1", "--c", "0.5"],
    "activations show gelu": ["activations", "show", "gelu"],
    "dual gelu (HGM)": ["dual", "gelu", "--a", "1", "--b", "1", "--c", "0.5"],
}


def wall(cmd: list[str], repeat: int) -> float:
    """Median wall time of ``cmd`` over ``repeat`` fresh processes (output discarded)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per call (median)")
    parser.add_argument("--hgmntk", help="another hgmntk executable to time alongside")
    parser.add_argument(
        "--skip-other",
        nargs="*",
        default=[],
        metavar="CALL",
        help="calls not to time with --hgmntk (e.g. the 7-minute 'activations show gelu' of "
        "versions before the summary)",
    )
    args = parser.parse_args()
    here = shutil.which("hgmntk") or f"{sys.executable} -m hgmntk.cli"
    programs = {"this": here.split()}
    if args.hgmntk:
        programs["other"] = [args.hgmntk]
    base = wall([sys.executable, "-c", "import numpy"], args.repeat)
    print(f"baseline python -c 'import numpy': {base:.3f} s (median of {args.repeat})")
    header = "call".ljust(26) + "".join(f"{name:>12} {'ratio':>7}" for name in programs)
    print(header)
    for label, argv in CALLS.items():
        row = label.ljust(26)
        for name, program in programs.items():
            if name == "other" and label in args.skip_other:
                row += f"{'skipped':>12} {'':>7}"
                continue
            t = wall(program + argv, args.repeat)
            row += f"{t:>10.3f} s {t / base:>6.1f}x"
        print(row, flush=True)


if __name__ == "__main__":
    main()
