"""A CAS that fails in the middle of a derivation, end to end through `hgmntk derive`.

Fake `Singular` and `M2` executables first on PATH pass the backend's probe (a version and
the test script's answer) and then misbehave on the derivation's script: print garbage in
the answer's frame, die by SIGKILL after partial output, exit with an error status, or hang
(until the CAS timeout).  Each must end in one clear error line (exit status 2) that names
the CAS, within the timeout, and leave nothing behind: no installed activation, no cache
entry, no temporary file in the data dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

FAKE = textwrap.dedent('''\
    #!{python}
    import os, signal, sys, time
    MODE = {mode!r}
    args = sys.argv[1:]
    if "--version" in args:
        print("Singular for x86_64-Linux version 4.3.2 (fake)" if {singular!r} else "1.22")
        sys.exit(0)
    script = open(args[-1]).read()
    if '"HGMNTK_" + "OK"' in script or '"HGMNTK_" | "OK"' in script:
        print("HGMNTK_OK")  # the probe
        sys.exit(0)
    print("HGMNTK_VARS x11,x12,x22,d11,d12,d22", flush=True)
    print("HGMNTK_BEGIN", flush=True)
    if MODE == "garbage":
        print("2*x11*d11 + @@ ))((\\x00 ;;", flush=True)
        print("HGMNTK_SEP")
        print("HGMNTK_DONE")
    elif MODE == "truncated":
        print("2*x11*d11+x12*d12+2", flush=True)
        print("HGMNTK_SEP")
    elif MODE == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    elif MODE == "status":
        sys.exit(7)
    elif MODE == "hang":  # deaf to SIGINT and SIGTERM: the bridge must escalate to SIGKILL
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(0.1)
''')

CASES = [("singular", "Singular"), ("macaulay2", "M2")]
MODES = ["garbage", "truncated", "killed", "status", "hang"]


def _fake_bin(tmp_path: Path, program: str, mode: str) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / program
    exe.write_text(FAKE.format(python=sys.executable, mode=mode, singular=program == "Singular"))
    exe.chmod(0o755)
    return folder


@pytest.mark.parametrize("backend, program", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_derive_with_a_cas_failing_mid_derivation(tmp_path, backend, program, mode):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items()
           if k not in ("HGMNTK_SINGULAR", "HGMNTK_M2", "HGMNTK_CAS_BACKEND")}
    env.update(PATH=f"{_fake_bin(tmp_path, program, mode)}{os.pathsep}{env.get('PATH', '')}",
               HGMNTK_DATA_DIR=str(data), HGMNTK_CAS_TIMEOUT="3")
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "hgmntk", "derive", "Heaviside(u)*u**2", "--name", "faulty",
         "--backend", backend],
        capture_output=True, text=True, env=env, timeout=120,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("hgmntk: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    name = "Singular" if backend == "singular" else "Macaulay2"
    assert name in lines[0] or backend in lines[0], lines[0]
    if mode == "hang":
        assert "timed out" in lines[0] or "no answer" in lines[0], lines[0]
    assert elapsed < 60, elapsed  # the hang ends at the 3 s CAS timeout
    left = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file()) \
        if data.exists() else []
    assert left == [], left


def test_sigterm_mid_derivation_leaves_no_cas_process_or_folder(tmp_path):
    """SIGTERM to `hgmntk derive` while the CAS runs: the CAS process group is killed, the
    temporary folders go, and the command exits with 143 and one line."""
    bin_dir = _fake_bin(tmp_path, "Singular", "hang")
    fake = bin_dir / "Singular"
    marker = tmp_path / "cas.pid"
    fake.write_text(fake.read_text().replace(
        'elif MODE == "hang":',
        f'elif MODE == "hang":\n    open({str(marker)!r}, "w").write(str(os.getpid()))', 1))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("HGMNTK_SINGULAR", "HGMNTK_M2", "HGMNTK_CAS_BACKEND")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", TMPDIR=str(scratch),
               HGMNTK_DATA_DIR=str(tmp_path / "data"), HGMNTK_CAS_TIMEOUT="120")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hgmntk", "derive", "Heaviside(u)*u**2", "--name", "faulty",
         "--backend", "singular"], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the fake CAS never started"
    time.sleep(0.2)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "hgmntk: terminated" in err and "Traceback" not in err, err
    cas = int(marker.read_text())
    for _ in range(100):
        try:
            os.kill(cas, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the CAS process {cas} outlived hgmntk")
    assert sorted(p.name for p in scratch.iterdir()) == []
