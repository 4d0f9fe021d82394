"""The CAS process bridge and the backend contract, with real processes.

Faults are produced by real child processes: a missing program, a Python child that hangs
(with and without ignoring signals), one killed from outside mid-computation, one that dies
by itself, Singular (when installed) printing an error, and a fake Risa/Asir
(tests/fake_asir/asir) that speaks Asir's prompt protocol.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from hgmntk.cas_bridge import backend as bk
from hgmntk.cas_bridge.asir_output import parse_operators, parse_pfaffian, records
from hgmntk.cas_bridge.backends import (
    BUILTIN_BACKENDS,
    AsirBackend,
    Macaulay2Backend,
    SingularBackend,
    SympyBackend,
    parse_answer,
)
from hgmntk.cas_bridge.pfaffian import pfaffian_from_ideal, same_system
from hgmntk.cas_bridge.process import (
    CASSession,
    Dialect,
    asir_dialect,
    resolve_command,
    run_batch,
    singular_dialect,
)
from hgmntk.cas_bridge.ratfun import XCTX, RatFun
from hgmntk.cas_bridge.testing import require_backend, required_cas
from hgmntk.cas_bridge.weyl import UD, XD, parse_operator
from hgmntk.errors import CASError

FAKE_ASIR = Path(__file__).parent / "fake_asir" / "asir"
FAKE_CMD = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_ASIR))}"
RELU = [parse_operator(UD, "u*d - 1")]
RELU_IDEAL = [
    parse_operator(XD, t)
    for t in ("2*x11*d11 + x12*d12 + 2", "x12*d12 + 2*x22*d22 + 2", "4*d11*d22 - d12^2")
]
PY = [sys.executable, "-u"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


# --------------------------------------------------------------------------- batch mode


def test_missing_executable_batch():
    with pytest.raises(CASError, match="(?s)not found.*apt-get install -y --no-install-recommends"):
        run_batch(["hgmntk-no-such-cas-xyz"], "1;", name="Nope")


def test_missing_executable_session_and_backends():
    dialect = Dialect(
        name="Nope",
        argv=("hgmntk-no-such-cas-xyz",),
        prompt="> ",
        tag_command=lambda a, b: f"{a}{b}",
        load_command=lambda p: p,
        assign=lambda v, c: c,
        startup=("1", "1"),
    )
    with pytest.raises(CASError, match="not found"):
        CASSession(dialect).start()
    for backend in (SingularBackend("hgmntk-no-such-cas-xyz"), Macaulay2Backend("hgmntk-nope")):
        status = backend.probe()
        assert not status.usable and "apt-get install" in status.reason
        with pytest.raises(CASError, match="not usable"):
            backend.restriction_ideal(RELU, RELU)
    status = AsirBackend(command="hgmntk-no-such-asir").probe()
    assert not status.usable and "HGMNTK_ASIR" in status.reason


def test_batch_output_and_exit_status():
    res = run_batch(PY, "print('hello')\nprint('multi\\nline')", name="py", suffix=".py")
    assert res.output.split() == ["hello", "multi", "line"] and res.returncode == 0
    with pytest.raises(CASError, match="(?s)exited with status 3.*partial"):
        run_batch(PY, "print('partial')\nraise SystemExit(3)", name="py", suffix=".py")


def test_batch_hang_times_out_and_next_call_works():
    t0 = time.monotonic()
    with pytest.raises(CASError, match="timed out after 1 s"):
        run_batch(
            PY,
            "import time\nprint('started')\nwhile True: time.sleep(1)",
            name="py",
            suffix=".py",
            timeout=1,
        )
    assert time.monotonic() - t0 < 6
    assert run_batch(PY, "print(2)", name="py", suffix=".py").output.strip() == "2"


def test_batch_hang_ignoring_signals_is_killed():
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "while True: time.sleep(0.1)\n"
    )
    t0 = time.monotonic()
    with pytest.raises(CASError, match="timed out"):
        run_batch(PY, script, name="py", suffix=".py", timeout=0.5)
    assert time.monotonic() - t0 < 8


def test_batch_killed_mid_computation():
    script = "import os, signal\nprint('working', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(CASError, match="(?s)killed by signal 9.*working"):
        run_batch(PY, script, name="py", suffix=".py")


def test_batch_error_lines_and_output_cap():
    with pytest.raises(CASError, match="reported an error: \\? undefined thing"):
        run_batch(
            PY,
            "print('ok')\nprint('   ? undefined thing')",
            name="py",
            suffix=".py",
            error_pattern=r"^\s*\?\s",
        )
    with pytest.raises(CASError, match="exceeded 1000 bytes"):
        run_batch(
            PY,
            "import time\nwhile True: print('x' * 100, flush=True)",
            name="py",
            suffix=".py",
            max_output=1000,
        )


# --------------------------------------------------------------------------- fake Risa/Asir


@pytest.fixture
def fake_session():
    session = CASSession(asir_dialect(FAKE_CMD), timeout=20)
    yield session
    session.close()


def _same_ideal(a, b) -> bool:
    """Equal left ideals of R = Q(x)<d>: the engine's Pfaffian systems agree (no CAS)."""
    same_system(pfaffian_from_ideal(list(a)), pfaffian_from_ideal(list(b)), what="test")
    return True


def test_fake_asir_prompt_and_multiline_output(fake_session):
    assert fake_session.eval('print("A" + "B")$') == "AB"
    assert fake_session.eval("1+2;") == "3"
    backend = AsirBackend()
    with pytest.raises(CASError, match="hgmntk_restriction undefined"):  # libraries not loaded
        fake_session.eval(backend.restriction_code(RELU, RELU))
    fake_session.eval(backend.prelude())
    out = fake_session.eval(backend.restriction_code(RELU, RELU))  # a recorded real answer
    assert out.count("\n") >= 7
    assert _same_ideal(parse_operators(out, XD), RELU_IDEAL)
    # several statements on one line and a multi-line input (sent through a file)
    assert fake_session.eval('print("x")$ print("y")$') == "x\ny"
    assert fake_session.eval('print("p")$\nprint("q")$') == "p\nq"


def test_fake_asir_error_keeps_session(fake_session):
    fake_session.start()
    gen = fake_session.generation
    with pytest.raises(CASError, match="no_such_function undefined"):
        fake_session.eval("no_such_function(1)$")
    assert fake_session.eval("print(7)$") == "7"
    assert fake_session.generation == gen


def test_fake_asir_crash_then_restart(fake_session):
    ref = fake_session.set("A", "1+1")
    assert fake_session.eval(f"print({ref})$") == "2"
    old_pid = fake_session.pid
    with pytest.raises(CASError, match="(?s)died during the computation.*HGMNTK_T"):
        fake_session.eval("crash()$")
    with pytest.raises(CASError, match="died or been restarted"):
        str(ref)
    assert fake_session.eval("print(5)$") == "5"
    assert fake_session.pid != old_pid
    with pytest.raises(CASError, match="died or been restarted"):
        str(ref)


def test_fake_asir_hang_times_out_and_next_call_works(fake_session):
    fake_session.start()
    pid = fake_session.pid
    t0 = time.monotonic()
    with pytest.raises(CASError, match="no answer within 1 s; interrupted and killed"):
        fake_session.eval("hang()$", timeout=1)
    assert time.monotonic() - t0 < 6
    assert _gone(pid)
    assert fake_session.eval("print(3)$") == "3"


def test_fake_asir_killed_mid_computation(fake_session):
    fake_session.start()
    pid = fake_session.pid
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(CASError, match="died during the computation"):
        fake_session.eval("hang()$", timeout=20)
    assert fake_session.eval("print(4)$") == "4"


def test_session_output_cap():
    session = CASSession(asir_dialect(FAKE_CMD), timeout=20, max_output=400)
    backend = AsirBackend()
    try:
        session.eval(backend.prelude())
        with pytest.raises(CASError, match="printed more than 400 characters"):
            session.eval(backend.restriction_code(RELU, RELU))
        assert not session.alive
    finally:
        session.close()


def test_session_startup_check():
    wrong = asir_dialect(FAKE_CMD)
    wrong = Dialect(**{**wrong.__dict__, "startup": ("print(1+1)$", "3")})
    with pytest.raises(CASError, match="start-up check"):
        CASSession(wrong).start()
    dead = Dialect(**{**asir_dialect("true").__dict__})
    with pytest.raises(CASError, match="did not start correctly"):
        CASSession(dead, startup_timeout=5).start()


@pytest.mark.parametrize("mode", ["batch", "session"])
def test_asir_backend_with_fake(mode, monkeypatch, tmp_path):
    monkeypatch.setenv("HGMNTK_ASIR", FAKE_CMD)
    monkeypatch.setenv("HGMNTK_ASIR_LIBDIR", str(tmp_path))
    backend = AsirBackend(mode=mode)
    try:
        status = backend.probe()
        assert status.usable, status.reason
        assert backend.env()["ASIRLOADPATH"].split(os.pathsep)[0] == str(tmp_path)
        assert _same_ideal(backend.restriction_ideal(RELU, RELU), RELU_IDEAL)
        monkeypatch.setenv("FAKE_ASIR_CRASH_ON", "restriction")
        backend.close()
        with pytest.raises(CASError):
            backend.restriction_ideal(RELU, RELU)
        monkeypatch.delenv("FAKE_ASIR_CRASH_ON")
        monkeypatch.setenv("FAKE_ASIR_HANG_ON", "restriction")
        backend.close()
        with pytest.raises(CASError, match="1 s"):
            backend.restriction_ideal(RELU, RELU, timeout=1)
        monkeypatch.delenv("FAKE_ASIR_HANG_ON")
        backend.close()
        assert _same_ideal(backend.restriction_ideal(RELU, RELU), RELU_IDEAL)
    finally:
        backend.close()


def test_asir_backend_found_on_path_and_missing_library(monkeypatch):
    monkeypatch.delenv("HGMNTK_ASIR", raising=False)
    monkeypatch.setenv("PATH", f"{FAKE_ASIR.parent}{os.pathsep}{os.environ['PATH']}")
    assert resolve_command("asir", name="asir")[0] == str(FAKE_ASIR)
    assert AsirBackend().probe().usable
    monkeypatch.setenv("FAKE_ASIR_NO_CONTRIB", "1")  # the real Asir's words, recorded
    status = AsirBackend().probe()
    assert not status.usable and "nk_restriction.rr" in status.reason
    assert "not found in the search path" in status.reason


def test_script_text_is_built_from_operators_only():
    """The CAS input is our own normally ordered printout of I1 (true Weyl products)."""
    code = AsirBackend().restriction_code(RELU, RELU)
    assert code.startswith("hgmntk_restriction([") and "[1,1,0,0,0]" in code
    script = SingularBackend().restriction_script(RELU, RELU)
    assert 'LIB "nctools.lib"' in script and "Weyl()" in script
    assert "restrictionIdeal(hgmntk_I, intvec(1,1,0,0,0))" in script
    m2 = Macaulay2Backend().restriction_script(RELU, RELU)
    assert "DrestrictionIdeal(hgmntkI, {1,1,0,0,0})" in m2
    with pytest.raises(CASError, match="Operators of Q\\[u\\]<d>"):
        SingularBackend().restriction_ideal(RELU_IDEAL, RELU)


def test_parse_answer():
    text = "noise\nHGMNTK_BEGIN\n2*x11*d11+\nx12*d12+2\nHGMNTK_SEP\n0\nHGMNTK_SEP\nHGMNTK_DONE\n"
    assert parse_answer(text) == [RELU_IDEAL[0]]
    with pytest.raises(CASError, match="markers missing"):
        parse_answer("HGMNTK_BEGIN\nx11\n")
    with pytest.raises(CASError, match="cannot read"):
        parse_answer("HGMNTK_BEGIN\nd11*x11\nHGMNTK_SEP\nHGMNTK_DONE\n")


def test_asir_records():
    """Asir's answers are term records; its own messages may share their lines."""
    text = (
        "0\n-- nd_weyl_gr :-- restriction_ideal_internal :HGMNTK_T 0 2 1 0 0 1 0 0 ;\n"
        "redeclaration of find_base_dataHGMNTK_T 0 1 0 1 0 0 1 0 ;\n"
        "HGMNTK_T 0 2 0 0 0 0 0 0 ;\nHGMNTK_T 1 -3/7 0 0 0 0 0 0 ;\n"
        "HGMNTK_T 2 0 0 0 0 0 0 0 ;\nHGMNTK_END terms 5 ;0.02sec\n"
    )
    ops = parse_operators(text, XD)
    assert ops == [RELU_IDEAL[0], XD.const(Fraction(-3, 7))]
    assert records("HGMNTK_X 1 2 ;HGMNTK_Y a ;") == [("X", ["1", "2"]), ("Y", ["a"])]
    with pytest.raises(CASError, match="announced 5 terms but printed 4"):
        parse_operators(text.replace("HGMNTK_T 1 -3/7 0 0 0 0 0 0 ;", ""), XD)
    with pytest.raises(CASError, match="no complete answer"):
        parse_operators(text.split("HGMNTK_END")[0], XD)
    with pytest.raises(CASError, match="not a rational number"):
        parse_operators("HGMNTK_T 0 x 1 0 0 0 0 0 ;\nHGMNTK_END terms 1 ;", XD)
    with pytest.raises(CASError, match="expected 6 numbers"):
        parse_operators("HGMNTK_T 0 1 1 0 0 ;\nHGMNTK_END terms 1 ;", XD)


def test_asir_pfaffian_records():
    """Exponents and matrix numbers are put back from yang's variable order (x11, x22, x12)."""
    text = (
        "HGMNTK_S 0 0 0 0 ;\nHGMNTK_S 1 0 0 1 ;\n"
        "HGMNTK_N 1 0 1 1/2 0 0 1 ;\nHGMNTK_D 1 0 1 3 1 2 0 ;\n"  # P_x22[0][1] = x12/(6 x11 x22^2)
        "HGMNTK_END pfaffian 2 2 ;\n"
    )
    monos, entries = parse_pfaffian(text, (0, 2, 1))
    assert monos == [(0, 0, 0), (0, 1, 0)]
    x11, x12, x22 = XCTX.gens()
    assert entries[2][0][1] == RatFun(x12, 6 * x11 * x22**2)
    assert entries[1][0][1].is_zero() and entries[0][0][1].is_zero()
    with pytest.raises(CASError, match="incomplete"):
        parse_pfaffian(text.replace("HGMNTK_S 1 0 0 1 ;", ""), (0, 2, 1))


# --------------------------------------------------------------------------- real Singular


@pytest.mark.singular
def test_singular_session_faults():
    require_backend("singular")
    session = CASSession(singular_dialect(), timeout=30)
    try:
        assert session.eval("ring r = 0,(x,y),dp; short = 0; poly f = (x+y)^2; f;") == (
            "x^2+2*x*y+y^2"
        )
        ref = session.set("g", "f^2")
        with pytest.raises(CASError, match=r"reported an error: \? "):
            session.eval("foo(;")
        assert session.eval(f"{ref} == f^2;") == "1"  # same session: the error was harmless
        with pytest.raises(CASError, match="no answer within 1 s"):
            session.eval("int i; while (1) { i++; }", timeout=1)
        with pytest.raises(CASError, match="restarted"):
            str(ref)
        assert session.eval("1+3;") == "4"
        threading.Timer(0.5, os.kill, (session.pid, signal.SIGKILL)).start()
        with pytest.raises(CASError, match="died during the computation"):
            session.eval("int j; while (1) { j++; }", timeout=30)
        assert session.eval("2+3;") == "5"
    finally:
        session.close()


@pytest.mark.singular
def test_singular_batch_error_detection():
    backend = require_backend("singular")
    with pytest.raises(CASError, match=r"reported an error: \? "):
        backend.run("ring r = 0,(x),dp; foo(;")


# --------------------------------------------------------------------------- contract


class _Toy(bk.CASBackend):
    def __init__(self, name, preference, usable, caps=("restriction",)):
        super().__init__()
        self.name, self.preference, self.usable = name, preference, usable
        self.capabilities = frozenset(caps)
        self.calls = 0

    def _probe(self):
        self.calls += 1
        return bk.BackendStatus(self.usable, "ok" if self.usable else "missing", "1.0")

    def restriction_ideal(self, ann1, ann2, *, timeout=None):
        return []


def test_auto_backend_is_the_engine_unless_the_environment_names_one(monkeypatch):
    """`derive --backend auto` runs the pure-Python engine; HGMNTK_CAS_BACKEND=name makes
    'auto' mean that backend, an error (no fallback) when it is unknown or unusable."""
    from hgmntk.cas_bridge.derive import derive_system, resolve_backend_name

    monkeypatch.delenv("HGMNTK_CAS_BACKEND", raising=False)
    assert resolve_backend_name("auto") == "python"
    assert resolve_backend_name("singular") == "singular"
    relu = RELU
    system, engine = derive_system(relu, relu)
    assert engine == "python" and len(system.standard_monomials) == 2
    monkeypatch.setenv("HGMNTK_CAS_BACKEND", "nosuch")
    assert resolve_backend_name("auto") == "nosuch"
    assert resolve_backend_name("sympy") == "sympy"  # a named backend wins
    with pytest.raises(CASError, match="unknown CAS backend 'nosuch'"):
        derive_system(relu, relu)


def test_pick_backend_order_and_errors(monkeypatch):
    monkeypatch.delenv("HGMNTK_CAS_BACKEND", raising=False)
    monkeypatch.delenv("HGMNTK_HIDE_CAS", raising=False)
    toys = {
        "a": _Toy("a", 40, False),
        "b": _Toy("b", 30, True),
        "c": _Toy("c", 20, True, ("restriction", "groebner")),
        "py": _Toy("py", 0, True),
    }
    assert bk.pick_backend("restriction", backends=toys).name == "b"
    assert bk.pick_backend("groebner", backends=toys).name == "c"
    assert bk.pick_backend("restriction", "py", backends=toys).name == "py"
    monkeypatch.setenv("HGMNTK_HIDE_CAS", "b,c")
    assert bk.pick_backend("restriction", backends=toys).name == "py"
    with pytest.raises(CASError, match="c: hidden by HGMNTK_HIDE_CAS"):
        bk.pick_backend("groebner", backends=toys)
    with pytest.raises(CASError, match="not usable: missing"):
        bk.pick_backend("restriction", "a", backends=toys)
    with pytest.raises(CASError, match="cannot do the 'groebner'"):
        bk.pick_backend("groebner", "py", backends=toys)
    with pytest.raises(CASError, match="unknown CAS backend 'zz'"):
        bk.get_backend("zz", backends=toys)
    monkeypatch.delenv("HGMNTK_HIDE_CAS")
    infos = bk.list_backends(backends=toys)
    assert [i.name for i in infos] == ["a", "b", "c", "py"]
    assert infos[2].capabilities == ("restriction", "groebner")
    assert set(infos[0].as_dict()) == {
        "name",
        "usable",
        "reason",
        "version",
        "capabilities",
        "preference",
    }
    assert toys["b"].calls == 1  # the probe is cached


def test_builtin_backends_records():
    names = [b.name for b in BUILTIN_BACKENDS]
    assert names == ["asir", "singular", "macaulay2", "sympy"]
    prefs = [b.preference for b in BUILTIN_BACKENDS]
    assert prefs == sorted(prefs, reverse=True) and prefs[-1] == min(prefs)
    for backend in BUILTIN_BACKENDS:
        assert isinstance(backend, bk.BackendProtocol)
        info = backend.info()
        assert info.name == backend.name and isinstance(info.usable, bool) and info.reason
        assert set(info.capabilities) <= set(bk.STEPS) and "restriction" in info.capabilities


def test_registry_lists_builtin_backends():
    infos = bk.list_backends()
    assert {"asir", "singular", "macaulay2", "sympy"} <= {i.name for i in infos}
    assert [i.preference for i in infos] == sorted((i.preference for i in infos), reverse=True)
    assert bk.get_backend("sympy").preference == 0
    chosen = bk.pick_backend("restriction")
    assert chosen.probe().usable and "restriction" in chosen.capabilities


def test_sympy_backend_status():
    status = SympyBackend().probe()
    assert status.reason
    if not status.usable:
        assert "not available yet" in status.reason


def test_required_cas(monkeypatch):
    monkeypatch.setenv("HGMNTK_REQUIRE_CAS", "1")
    monkeypatch.delenv("CI", raising=False)
    assert required_cas() == {"singular", "macaulay2"}
    monkeypatch.setenv("CI", "true")  # CI has Risa/Asir from ../shared/tools
    assert required_cas() == {"singular", "macaulay2", "asir"}
    monkeypatch.setenv("HGMNTK_REQUIRE_CAS", "all")
    assert "asir" in required_cas()
    monkeypatch.setenv("HGMNTK_REQUIRE_CAS", "0")
    assert required_cas() == set()


def test_block_standard_monomials():
    gb = [
        parse_operator(XD, t)
        for t in (
            "x12*d12 + 2*x22*d22 + 2",
            "x11*d11 - x22*d22",
            "x11*d12^2 - 4*x22*d22^2 - 4*d22",
            "4*d11*d22 - d12^2",
            "2*x11*x22*d12*d22 + 4*x12*x22*d22^2 + 3*x11*d12 + 4*x12*d22",
            "-2*x11*x22^2*d22^2 + 2*x12^2*x22*d22^2 - 7*x11*x22*d22 + 2*x12^2*d22 - 3*x11",
        )
    ]
    assert bk.block_standard_monomials(gb) == [(0, 0, 0), (0, 0, 1)]
    with pytest.raises(CASError, match="not finite"):
        bk.block_standard_monomials(gb[:2])
