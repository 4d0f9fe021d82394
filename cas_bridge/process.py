"""The one process bridge to external computer algebra systems (CAS).

Every backend talks to its CAS through this module, in one of two modes.

Batch mode (:func:`run_batch`)
    The script is written to a temporary file and run as ``Singular -q --no-warn FILE``,
    ``M2 --script FILE`` or ``asir -quiet -f FILE`` in its own process group.  The whole
    run has a wall-clock timeout; on expiry the process group gets SIGINT, then SIGTERM,
    then SIGKILL.  Output goes to a file whose size is watched (hard cap).  A non-zero exit
    status, or a line matching the CAS's error pattern (Singular prints ``? ...`` and carries
    on with exit status 0), is a :class:`~hgmntk.errors.CASError` carrying the transcript.

Session mode (:class:`CASSession`, pexpect)
    One long-lived interpreter behind a pseudo-terminal.  The protocol of one call:

    1. the code is sent (through a temporary file and the CAS's ``load`` command when it is
       longer than a terminal line may be), followed by a command that prints a *completion
       tag* ``HGMNTK_<random>_<n>``.  The tag is printed as the concatenation of two
       strings, so the terminal echo of the command never contains the tag itself;
    2. output is read until the tag line and then the CAS's prompt appear, with one
       deadline for the whole call (every call has a timeout);
    3. everything before the tag, prompts stripped, is the answer; if it matches the CAS's
       error pattern a :class:`CASError` is raised and the session stays usable.

    Faults: on timeout the interpreter is interrupted (Ctrl-C), given a moment, then killed;
    the next call starts a fresh interpreter.  End of file (the CAS died or was killed) is a
    :class:`CASError` with the transcript tail.  Output beyond ``max_output`` characters
    kills the interpreter.  Each (re)start bumps :attr:`CASSession.generation`; a
    :class:`CASRef` (a CAS-side variable) of an older generation is refused instead of
    silently naming something else in the new interpreter.  At start-up a trivial
    computation is checked (``1+1`` gives ``2``), so a wrong program on PATH is caught early.

A missing executable is a :class:`CASError` that says how to install it.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from hgmntk.errors import CASError

#: How to install the CAS that have Debian packages.
INSTALL_HINT = "install it with: apt-get install -y --no-install-recommends singular macaulay2"
#: Default wall-clock limit of one CAS call, in seconds.
DEFAULT_TIMEOUT = 600.0
#: Hard cap on the output of one call, in characters (the GeLU ideal prints ~1 MB).
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024
#: Characters of transcript quoted in error messages.
TRANSCRIPT_TAIL = 3000
#: Inputs longer than this are sent through a temporary file (terminal lines are limited).
LONG_INPUT = 1000


def _tail(text: str, n: int = TRANSCRIPT_TAIL) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) <= n:
        return text.strip()
    return "[...]" + text[-n:].strip()


def resolve_command(
    command: str | Sequence[str], *, name: str, hint: str = INSTALL_HINT
) -> list[str]:
    """Split a configured command (``"asir"``, ``"python3 fake.py"``) and find its program.

    Raises :class:`CASError` naming the program and ``hint`` when it is not executable.
    """
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise CASError(f"{name}: empty command")
    exe = shutil.which(argv[0])
    if exe is None:
        raise CASError(f"{name}: executable {argv[0]!r} not found (not on PATH); {hint}")
    return [exe, *argv[1:]]


def find_errors(output: str, pattern: str | re.Pattern[str] | None) -> list[str]:
    """The lines of ``output`` matching the CAS's error pattern (searched per line)."""
    if pattern is None:
        return []
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    lines = output.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [ln.strip() for ln in lines if rx.search(ln)]


# --------------------------------------------------------------------------- batch mode


@dataclass(frozen=True)
class BatchResult:
    """Output, exit status and wall time of a batch run.

    ``output`` is stdout and stderr merged, unless the run kept stderr apart: then
    ``output`` is stdout alone and ``stderr`` the rest.
    """

    output: str
    returncode: int
    seconds: float
    stderr: str = ""


def _kill_group(proc: subprocess.Popen, grace: float = 1.0) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to the process group of ``proc``."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # reap; also kill stragglers of the group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_batch(
    argv: Sequence[str],
    script: str,
    *,
    name: str,
    suffix: str = ".txt",
    timeout: float = DEFAULT_TIMEOUT,
    error_pattern: str | re.Pattern[str] | None = None,
    max_output: int = DEFAULT_MAX_OUTPUT,
    env: Mapping[str, str] | None = None,
    hint: str = INSTALL_HINT,
    stderr_apart: bool = False,
) -> BatchResult:
    """Run ``argv + [script file]`` with a timeout; return its output or raise CASError.

    ``argv`` is resolved with :func:`resolve_command` (missing program: CASError with
    ``hint``).  The script file is the last argument.  Raises :class:`CASError` on timeout
    (the process group is killed), on an output larger than ``max_output`` bytes, on a
    non-zero exit status and on lines of stdout or stderr matching ``error_pattern``;
    each message quotes the end of the transcript.  ``stderr_apart=True`` keeps stderr
    out of ``output`` (Risa/Asir writes timings to unbuffered stderr, which would land
    inside the lines of its buffered stdout).
    """
    argv = resolve_command(argv, name=name, hint=hint)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hgmntk-cas-") as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_text(script)
        out_path = Path(tmp) / "output.txt"
        err_path = Path(tmp) / "stderr.txt"
        with (
            open(out_path, "wb") as out,
            open(err_path, "wb") as err,
            open(os.devnull, "rb") as devnull,
        ):
            try:
                proc = subprocess.Popen(
                    [*argv, str(path)],
                    stdin=devnull,
                    stdout=out,
                    stderr=err if stderr_apart else subprocess.STDOUT,
                    cwd=tmp,
                    env=None if env is None else dict(env),
                    start_new_session=True,
                )
            except OSError as exc:
                raise CASError(f"{name}: cannot start {argv[0]!r}: {exc}; {hint}") from exc
            fault = None
            delay = 0.005
            try:
                while proc.poll() is None:
                    if time.monotonic() - start > timeout:
                        fault = f"{name} timed out after {timeout:g} s (process killed)"
                    elif out_path.stat().st_size + err_path.stat().st_size > max_output:
                        fault = f"{name} output exceeded {max_output} bytes (process killed)"
                    if fault:
                        _kill_group(proc)
                        break
                    time.sleep(delay)
                    delay = min(delay * 1.5, 0.1)
            except BaseException:  # KeyboardInterrupt: leave no orphan behind
                _kill_group(proc)
                raise
        seconds = time.monotonic() - start
        with open(out_path, "rb") as f:
            output = f.read(max_output + 1).decode("utf-8", errors="replace")
        with open(err_path, "rb") as f:
            stderr = f.read(max_output + 1).decode("utf-8", errors="replace")
    transcript = output + (f"\n[stderr]\n{stderr}" if stderr.strip() else "")
    if fault:
        raise CASError(f"{fault}. Transcript tail:\n{_tail(transcript)}")
    if proc.returncode != 0:
        how = (
            f"was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited with status {proc.returncode}"
        )
        raise CASError(f"{name} {how}. Transcript tail:\n{_tail(transcript)}")
    errors = find_errors(transcript, error_pattern)
    if errors:
        raise CASError(
            f"{name} reported an error: {' | '.join(errors[:5])}. "
            f"Transcript tail:\n{_tail(transcript)}"
        )
    return BatchResult(output, proc.returncode, seconds, stderr)


# --------------------------------------------------------------------------- session mode


@dataclass(frozen=True)
class Dialect:
    """What :class:`CASSession` needs to know about one interpreter.

    ``prompt`` is a regex of the input prompt; ``tag_command(a, b)`` is a command printing
    the string ``a + b`` on a line of its own; ``load_command(path)`` runs a file;
    ``assign(var, code)`` stores a value in a CAS variable; ``startup`` is (code, expected
    answer) of the start-up check; ``strip`` is a regex of line prefixes to drop (prompts);
    ``file_end`` closes a file run by ``load_command`` (Asir's ``load`` needs ``end$``).
    """

    name: str
    argv: tuple[str, ...]
    prompt: str
    tag_command: Callable[[str, str], str]
    load_command: Callable[[str], str]
    assign: Callable[[str, str], str]
    startup: tuple[str, str]
    error_pattern: str | None = None
    strip: str | None = None
    quit_command: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    hint: str = INSTALL_HINT
    file_suffix: str = ".txt"
    file_end: str = ""


class CASRef:
    """A variable in one generation of a :class:`CASSession`.

    Its text (``str(ref)``) is the variable name, but only while the interpreter that
    holds it is alive: after a restart it raises :class:`CASError` instead of silently
    naming a variable of the new interpreter.
    """

    __slots__ = ("session", "varname", "generation")

    def __init__(self, session: CASSession, varname: str, generation: int) -> None:
        self.session = session
        self.varname = varname
        self.generation = generation

    @property
    def name(self) -> str:
        self.session.check(self)
        return self.varname

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"CASRef({self.session.dialect.name}:{self.varname}, generation {self.generation})"


class CASSession:
    """A long-lived CAS interpreter driven through pexpect (protocol: module docstring)."""

    def __init__(
        self,
        dialect: Dialect,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        startup_timeout: float = 60.0,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        self.dialect = dialect
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.max_output = max_output
        self.generation = 0
        self._child = None
        self._token = secrets.token_hex(4)
        self._count = 0
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.transcript = ""  # the last call's raw output (for error messages)

    # life cycle ------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._child is not None and self._child.isalive()

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def start(self) -> None:
        """Start the interpreter (a no-op if it runs): spawn, wait for the prompt, check."""
        if self.alive:
            return
        self._discard()
        argv = resolve_command(self.dialect.argv, name=self.dialect.name, hint=self.dialect.hint)
        env = dict(os.environ)
        env.update(self.dialect.env)
        try:
            child = pexpect.spawn(
                argv[0],
                argv[1:],
                env=env,
                echo=False,
                encoding="utf-8",
                codec_errors="replace",
                timeout=None,
                dimensions=(24, 32000),  # wide: no line wrapping of long answers
            )
        except (pexpect.ExceptionPexpect, OSError) as exc:
            raise CASError(f"{self.dialect.name}: cannot start {argv[0]!r}: {exc}") from exc
        self._child = child
        self.generation += 1
        try:
            self._read_until(re.compile(self.dialect.prompt), None, self.startup_timeout)
            code, expected = self.dialect.startup
            answer = self.eval(code, timeout=self.startup_timeout)
        except CASError as exc:
            self._discard()
            raise CASError(
                f"{self.dialect.name} did not start correctly ({' '.join(argv)}): {exc}"
            ) from exc
        if expected not in answer:
            self._discard()
            raise CASError(
                f"{self.dialect.name} failed its start-up check: {code!r} gave {answer!r}, "
                f"expected {expected!r} (is {argv[0]!r} the right program?)"
            )

    def restart(self) -> None:
        """Kill the interpreter (if any) and start a fresh one; old :class:`CASRef` die."""
        self._discard()
        self.start()

    def close(self) -> None:
        """Quit politely (quit command), then make sure the process is gone."""
        if self.alive and self.dialect.quit_command:
            try:
                self._child.sendline(self.dialect.quit_command)
                self._child.expect(pexpect.EOF, timeout=2)
            except Exception:
                pass
        self._discard()

    def __enter__(self) -> CASSession:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._discard()
        except Exception:
            pass

    def _discard(self) -> None:
        """Kill the interpreter without ceremony and forget it."""
        child, self._child = self._child, None
        if child is not None:
            try:
                child.close(force=True)
            except Exception:
                try:
                    os.kill(child.pid, signal.SIGKILL)
                except (ProcessLookupError, TypeError):
                    pass
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # references -----------------------------------------------------------------
    def check(self, ref: CASRef) -> None:
        """Raise CASError if ``ref`` belongs to another session or a dead interpreter."""
        if ref.session is not self:
            raise CASError(f"{ref!r} belongs to another {self.dialect.name} session")
        if ref.generation != self.generation or not self.alive:
            raise CASError(
                f"{ref!r} belongs to a {self.dialect.name} interpreter that has died or been "
                "restarted; recompute it"
            )

    def set(self, varname: str, code: str, *, timeout: float | None = None) -> CASRef:
        """Evaluate ``code`` into the CAS variable ``varname``; return a reference to it."""
        self.eval(self.dialect.assign(varname, code), timeout=timeout)
        return CASRef(self, varname, self.generation)

    # evaluation -----------------------------------------------------------------
    def eval(self, code: str, *, timeout: float | None = None) -> str:
        """Run ``code``; return its printed output (prompts stripped, ``\\n`` line ends).

        Raises :class:`CASError` on timeout (interpreter interrupted and killed; the next
        call starts a fresh one), on death of the interpreter, on too much output and when
        the output matches the dialect's error pattern (the interpreter stays usable).
        """
        timeout = self.timeout if timeout is None else timeout
        if not self.alive:
            self.start()
        d = self.dialect
        self._count += 1
        head, tail = "HGMNTK", f"_{self._token}_{self._count}"
        if len(code) > LONG_INPUT or "\n" in code.strip():
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="hgmntk-session-")
            path = Path(self._tmp.name) / f"in{self._count}{d.file_suffix}"
            path.write_text(code + "\n" + d.file_end)
            code = d.load_command(str(path))
        self._child.send(code + "\n" + d.tag_command(head, tail) + "\n")
        tag = re.compile(re.escape(head + tail) + r"[ \t]*\r?\n")
        raw = self._read_until(tag, re.compile(d.prompt), timeout)
        out = raw.replace("\r\n", "\n").replace("\r", "\n")
        if d.strip:
            strip = re.compile(rf"^(?:{d.strip})+", re.MULTILINE)
            out = strip.sub("", out)
        out = out.strip("\n")
        errors = find_errors(out, d.error_pattern)
        if errors:
            raise CASError(
                f"{d.name} reported an error: {' | '.join(errors[:5])}. Output:\n{_tail(out)}"
            )
        return out

    def _read_until(
        self, first: re.Pattern[str], then: re.Pattern[str] | None, timeout: float
    ) -> str:
        """Read until ``first`` matches (and ``then`` after it); return text before ``first``."""
        child = self._child
        deadline = time.monotonic() + timeout
        buf = ""
        found: re.Match[str] | None = None
        scanned = 0
        while True:
            if found is None:
                found = first.search(buf, max(0, scanned - 200))
                scanned = len(buf)
            if found is not None and (then is None or then.search(buf, found.end())):
                self.transcript = buf
                return buf[: found.start()]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.transcript = buf
                self._on_timeout(timeout)
            try:
                buf += child.read_nonblocking(65536, timeout=min(remaining, 1.0))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                self.transcript = buf
                child.close()
                status = (
                    child.exitstatus
                    if child.signalstatus is None
                    else (f"killed by signal {child.signalstatus}")
                )
                self._discard()
                raise CASError(
                    f"{self.dialect.name} died during the computation (exit status: {status}); "
                    f"the next call starts a fresh interpreter. Transcript tail:\n{_tail(buf)}"
                ) from None
            if len(buf) > self.max_output:
                self.transcript = buf[-TRANSCRIPT_TAIL:]
                self._discard()
                raise CASError(
                    f"{self.dialect.name} printed more than {self.max_output} characters; "
                    "interpreter killed"
                )

    def _on_timeout(self, timeout: float) -> None:
        """Interrupt, give the CAS a moment, then kill; always raises CASError."""
        child = self._child
        try:
            child.sendintr()
            time.sleep(0.3)
        except Exception:
            pass
        self._discard()
        raise CASError(
            f"{self.dialect.name} gave no answer within {timeout:g} s; interrupted and killed "
            "(the next call starts a fresh interpreter). Transcript tail:\n"
            f"{_tail(self.transcript)}"
        )


# --------------------------------------------------------------------------- dialects


def _q(text: str) -> str:
    """A double-quoted string literal (paths only; never user text)."""
    if '"' in text or "\\" in text or "\n" in text:
        raise CASError(f"unsupported character in {text!r}")
    return f'"{text}"'


SINGULAR_ERROR = r"^\s*\?\s"
MACAULAY2_ERROR = r"(?:^|\s)stdio:\d+:\d+:\(\d+\):.*error:|\berror:\s"
ASIR_ERROR = (
    r"syntax error|undefined|return to toplevel|\berror\b|not found in the search path"
    r"|division by 0"
)


def singular_dialect(command: str | Sequence[str] = "Singular") -> Dialect:
    """Singular without readline (``-t``), Ctrl-C aborts (``--cntrlc=a``), ``TERM=dumb``."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    return Dialect(
        name="Singular",
        argv=(*argv, "-q", "-t", "--no-warn", "--cntrlc=a"),
        prompt=r"> ",
        tag_command=lambda a, b: f"print({_q(a)} + {_q(b)});",
        load_command=lambda p: f"execute(read({_q(p)}));",
        assign=lambda v, c: f"def {v} = {c};",
        startup=("1+1;", "2"),
        error_pattern=SINGULAR_ERROR,
        strip=r"> |\. ",
        quit_command="quit;",
        env={"TERM": "dumb"},
        file_suffix=".sing",
    )


def macaulay2_dialect(command: str | Sequence[str] = "M2") -> Dialect:
    """Macaulay2 without readline; prompts ``iN : `` stripped; values printed explicitly."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    return Dialect(
        name="Macaulay2",
        argv=(*argv, "--no-readline", "--silent"),
        prompt=r"i\d+ : ",
        tag_command=lambda a, b: f"<< {_q(a)} | {_q(b)} << endl;",
        load_command=lambda p: f"load {_q(p)}",
        assign=lambda v, c: f"{v} = {c};",
        startup=("<< toString(1+1) << endl;", "2"),
        error_pattern=MACAULAY2_ERROR,
        strip=r"i\d+ : ",
        quit_command="exit 0",
        env={"TERM": "dumb"},
        file_suffix=".m2",
    )


def asir_dialect(command: str | Sequence[str] = "asir") -> Dialect:
    """Risa/Asir started without ``-quiet`` (prompt ``[N] ``); ``$`` ends silent statements."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    return Dialect(
        name="Risa/Asir",
        argv=tuple(argv),
        prompt=r"\[\d+\] ",
        tag_command=lambda a, b: f"print({_q(a)} + {_q(b)})$",
        load_command=lambda p: f"load({_q(p)})$",
        assign=lambda v, c: f"{v} = {c}$",
        startup=("print(1+1)$", "2"),
        error_pattern=ASIR_ERROR,
        strip=r"\[\d+\] ",
        quit_command="quit$",
        hint=(
            "Risa/Asir is not packaged; install OpenXM (asir and asir-contrib) and put "
            "'asir' on PATH or set HGMNTK_ASIR to its command"
        ),
        file_suffix=".rr",
        file_end="end$\n",
    )
