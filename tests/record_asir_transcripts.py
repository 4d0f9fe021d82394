"""Record what a real Risa/Asir prints for the calls hgmntk makes; the fake Asir replays it.

    python tests/record_asir_transcripts.py            # rewrite tests/fake_asir/transcripts.json

Needs a real ``asir`` with asir-contrib (on PATH or ``HGMNTK_ASIR``; see
cas_bridge/README_BACKENDS.md).  The calls recorded are exactly those the Asir backend
makes for its probe and for deriving ReLU (``derive_activation("Max(u, 0)",
backend="asir")``: restriction and Pfaffian system of ReLU and of its derivative, the
Heaviside step), captured while that derivation runs.  Each is then run once more as
``asir -quiet -f`` on the backend's own script (prelude + call + ``end$``), and its stdout,
stderr and exit status are stored, plus two runs with asir-contrib missing from the load
path (what a broken installation prints).  Timings in Asir's messages are replaced by
``0sec`` so that re-recording gives the same file.

tests/fake_asir/asir answers a call only from this file, so the fake cannot drift from the
real program: ``test_cas_asir.py::test_transcripts_are_current`` re-runs the recorded
calls on a real Asir and compares the answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRANSCRIPTS = HERE / "fake_asir" / "transcripts.json"
_TIMING = re.compile(r"[-+0-9.e]+sec(?:\([-+0-9.e]+sec\))?")


def normalise(text: str) -> str:
    """Asir's output with timings (``0.01769sec(0.01786sec)``) replaced by ``0sec``."""
    return _TIMING.sub("0sec", text)


def run_real(backend, code: str, env: dict[str, str]) -> dict:
    """One batch run of the real Asir on the backend's script for ``code``."""
    script = backend.prelude() + (code.rstrip() + "\n" if code else "") + "end$\n"
    argv = backend._argv()
    with tempfile.TemporaryDirectory(prefix="hgmntk-record-") as tmp:
        path = Path(tmp) / "input.rr"
        path.write_text(script)
        cp = subprocess.run(
            [*argv, "-quiet", "-f", str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
    return {
        "stdout": normalise(cp.stdout),
        "stderr": normalise(cp.stderr),
        "returncode": cp.returncode,
    }


def recorded_calls() -> list[str]:
    """The codes the backend sends for its probe and for deriving ReLU, in order."""
    from hgmntk.cas_bridge import backends
    from hgmntk.cas_bridge.derive import derive_activation

    calls: list[str] = []
    real_run = backends.AsirBackend.run

    def run(self, code, *, timeout=None):
        if code not in calls:
            calls.append(code)
        return real_run(self, code, timeout=timeout)

    backends.AsirBackend.run = run  # type: ignore[method-assign]
    try:
        backend = backends.AsirBackend()
        backend.probe(refresh=True)
        derive_activation("Max(u, 0)", name="relu-recorded", backend="asir", timeout=600)
    finally:
        backends.AsirBackend.run = real_run  # type: ignore[method-assign]
    return calls


def without_contrib(env: dict[str, str]) -> dict[str, str]:
    """The environment of an Asir without asir-contrib (nk_restriction.rr, yang.rr).

    The contrib directories leave the load path, OpenXM_HOME points nowhere (Asir would
    look in its lib/asir-contrib) and the start-up file, which imports contrib files, is
    not read.
    """
    out = dict(env)
    out.pop("HGMNTK_ASIR_LIBDIR", None)
    out.pop("ASIR_CONFIG", None)
    out["OpenXM_HOME"] = str(Path(tempfile.gettempdir()) / "hgmntk-no-openxm")
    dirs = [
        d
        for d in out.get("ASIRLOADPATH", "").split(os.pathsep)
        if d and not (Path(d) / "nk_restriction.rr").exists()
    ]
    out["ASIRLOADPATH"] = os.pathsep.join(dirs)
    return out


def main() -> int:
    from hgmntk.cas_bridge.backends import AsirBackend
    from hgmntk.cas_bridge.weyl import UD, parse_operator

    backend = AsirBackend(mode="batch")
    status = backend.probe(refresh=True)
    if not status.usable:
        print(f"no usable Risa/Asir: {status.reason}", file=sys.stderr)
        return 1
    env = backend.env()
    cases = [{"code": "", "variant": "normal", **run_real(backend, "", env)}]
    for code in recorded_calls():
        cases.append({"code": code.rstrip(), "variant": "normal", **run_real(backend, code, env)})
    step = [parse_operator(UD, "u*d")]
    probe = backend.restriction_code(step, step)
    for code in ("", probe):
        cases.append({"code": code, "variant": "no_contrib",
                      **run_real(backend, code, without_contrib(env))})
    data = {
        "about": "Risa/Asir transcripts recorded by tests/record_asir_transcripts.py; "
        "replayed by tests/fake_asir/asir. Do not edit by hand.",
        "asir_version": run_real(backend, "print(version())$", env)["stdout"].split()[-1],
        "cases": cases,
    }
    TRANSCRIPTS.write_text(json.dumps(data, indent=1) + "\n")
    print(f"recorded {len(cases)} calls in {TRANSCRIPTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
