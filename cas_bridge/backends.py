"""The built-in CAS backends, registered through the plugin hook like any other.

=========== ========== ====================================================================
name        preference what it runs
=========== ========== ====================================================================
asir        40         Risa/Asir + asir-contrib ``nk_restriction.rr``, ``nd_weyl_gr``, ``yang.rr``
singular    30         Singular ``dmodapp.lib`` (``restrictionIdeal``), ``slimgb``
macaulay2   20         Macaulay2 package ``Dmodules`` (``DrestrictionIdeal``), ``gb``
sympy       0          the pure-Python engine :mod:`hgmntk.cas_bridge.pfaffian`
=========== ========== ====================================================================

All CAS input is produced here from :class:`~hgmntk.cas_bridge.weyl.Operator` objects: the
integrand ideal I1 is built in Python with true Weyl products
(:func:`~hgmntk.cas_bridge.integrand.integrand_ideal`) and printed normally ordered by
:func:`~hgmntk.cas_bridge.weyl.format_operator`; user text never reaches a CAS.  Singular and
Macaulay2 scripts print their answer as ``HGMNTK_BEGIN``, then every operator followed by a
line ``HGMNTK_SEP``, then ``HGMNTK_DONE``; operators are read back with
:func:`~hgmntk.cas_bridge.weyl.parse_operator` (tokenised, no ``sympify``).  Risa/Asir
prints polynomials recursively (parenthesised coefficients, d left of x), so its helpers
print one record per term instead (:mod:`~hgmntk.cas_bridge.asir_output`).

Singular and Macaulay2 run in batch mode (one fresh process per computation, a timeout on
each); Risa/Asir runs in batch mode too (``asir -quiet -f``) unless ``HGMNTK_ASIR_MODE=session``
asks for one persistent interpreter driven through its ``[N]`` prompt.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from hgmntk.errors import CASError
from hgmntk.hookspecs import hookimpl

from .asir_output import parse_operators, parse_pfaffian
from .backend import BLOCK_ORDER_ROWS, BackendStatus, CASBackend
from .integrand import YX, integrand_ideal
from .process import (
    ASIR_ERROR,
    DEFAULT_TIMEOUT,
    MACAULAY2_ERROR,
    SINGULAR_ERROR,
    CASSession,
    asir_dialect,
    resolve_command,
    run_batch,
)
from .weyl import UD, XD, Operator, WeylAlgebra, format_operator, parse_operator

BEGIN, SEP, DONE = "HGMNTK_BEGIN", "HGMNTK_SEP", "HGMNTK_DONE"
#: Weights of the restriction to y1 = y2 = 0 (restricted variables first).
RESTRICTION_WEIGHTS = (1, 1, 0, 0, 0)


def _timeout(timeout: float | None) -> float:
    if timeout is not None:
        return float(timeout)
    return float(os.environ.get("HGMNTK_CAS_TIMEOUT", DEFAULT_TIMEOUT))


def _check_ann(ann1: Sequence[Operator], ann2: Sequence[Operator]) -> None:
    for ann in (ann1, ann2):
        if not ann:
            raise CASError("each activation needs at least one annihilating operator")
        for p in ann:
            if not isinstance(p, Operator) or p.alg != UD:
                raise CASError(f"annihilators must be Operators of Q[u]<d>, got {p!r}")


def parse_answer(output: str, alg: WeylAlgebra = XD, *, name: str = "CAS") -> list[Operator]:
    """Operators printed between ``HGMNTK_BEGIN`` and ``HGMNTK_DONE``, split at ``HGMNTK_SEP``.

    Lines of one operator are joined without separator, so a CAS that wraps long lines is
    read correctly.  Zero operators are dropped.
    """
    lines = output.replace("\r\n", "\n").split("\n")
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == BEGIN)
        stop = next(i for i, ln in enumerate(lines) if ln.strip() == DONE and i > start)
    except StopIteration:
        raise CASError(
            f"{name} gave no complete answer (markers missing). Output tail:\n{output[-2000:]}"
        ) from None
    chunks, current = [], []
    for ln in lines[start + 1 : stop]:
        if ln.strip() == SEP:
            chunks.append("".join(current))
            current = []
        else:
            current.append(ln.strip())
    if "".join(current).strip():
        raise CASError(f"{name}: unterminated operator in the answer: {''.join(current)[:200]}")
    ops = []
    for text in chunks:
        try:
            op = parse_operator(alg, text)
        except ValueError as exc:
            raise CASError(f"{name} printed an operator hgmntk cannot read: {exc}") from exc
        if not op.is_zero():
            ops.append(op)
    return ops


def _vars_line(output: str, expected: Sequence[str], name: str) -> None:
    m = re.search(r"^HGMNTK_VARS (.*)$", output, re.MULTILINE)
    got = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1)) if m else None
    if got != list(expected):
        raise CASError(f"{name} answered in the ring {got}, expected variables {list(expected)}")


def _version(argv: list[str], pattern: str) -> str | None:
    try:
        cp = subprocess.run(
            [*argv, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, cp.stdout + cp.stderr)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- Singular


class SingularBackend(CASBackend):
    """Singular 4 (``dmodapp.lib`` restriction, Groebner bases by ``slimgb``)."""

    name = "singular"
    preference = 30
    capabilities = frozenset({"restriction", "groebner"})
    needs = "Singular (Debian package 'singular') with dmodapp.lib and nctools.lib"
    ERROR = SINGULAR_ERROR

    def __init__(self, command: str | None = None) -> None:
        super().__init__()
        self.command = command or os.environ.get("HGMNTK_SINGULAR", "Singular")

    def _argv(self) -> list[str]:
        return resolve_command(self.command, name="Singular")

    def run(self, script: str, *, timeout: float | None = None) -> str:
        """Run a Singular script in batch mode; return its output (CASError on faults)."""
        res = run_batch(
            [*self._argv(), "-q", "--no-warn"],
            script.rstrip() + "\nquit;\n",
            name="Singular",
            suffix=".sing",
            timeout=_timeout(timeout),
            error_pattern=self.ERROR,
        )
        return res.output

    def _probe(self) -> BackendStatus:
        argv = self._argv()
        version = _version(argv, r"version\s+([\d.]+)")
        out = self.run('LIB "dmodapp.lib"; LIB "nctools.lib"; print("HGMNTK_" + "OK");', timeout=60)
        if "HGMNTK_OK" not in out:
            return BackendStatus(False, f"Singular failed a test script: {out[-300:]}", version)
        return BackendStatus(True, f"{argv[0]} with dmodapp.lib", version)

    @staticmethod
    def _weyl_guard(x: str, d: str) -> str:
        """Fail loudly if the ring silently stayed commutative (Weyl() without nctools)."""
        return (
            f'if (string({d}*{x}) != "{x}*{d}+1") '
            '{ ERROR("hgmntk: the ring is not a Weyl algebra"); }\n'
        )

    @staticmethod
    def _print_ideal(var: str) -> str:
        return (
            f'print("{BEGIN}"); int hgmntk_i;\n'
            f"for (hgmntk_i = 1; hgmntk_i <= ncols({var}); hgmntk_i++) "
            f'{{ print(string({var}[hgmntk_i])); print("{SEP}"); }}\n'
            f'print("{DONE}");\n'
        )

    def restriction_script(self, ann1: Sequence[Operator], ann2: Sequence[Operator]) -> str:
        gens = integrand_ideal(ann1, ann2)
        w = ",".join(map(str, RESTRICTION_WEIGHTS))
        return (
            'LIB "dmodapp.lib"; LIB "nctools.lib";\n'
            f"ring hgmntk_r = 0,({','.join(YX.xs + YX.ds)}),dp;\n"
            "def hgmntk_W = Weyl(); setring hgmntk_W; short = 0;\n"
            + self._weyl_guard("y1", "dy1")
            + f"ideal hgmntk_I = {', '.join(format_operator(g) for g in gens)};\n"
            f"def hgmntk_J = restrictionIdeal(hgmntk_I, intvec({w}));\n"
            "setring hgmntk_J; short = 0;\n"
            'print("HGMNTK_VARS " + varstr(basering));\n' + self._print_ideal("resIdeal")
        )

    def restriction_ideal(self, ann1, ann2, *, timeout=None):
        """Restriction ideal by ``restrictionIdeal(I1, intvec(1,1,0,0,0))`` (Oaku-Takayama)."""
        _check_ann(ann1, ann2)
        self.require()
        out = self.run(self.restriction_script(ann1, ann2), timeout=timeout)
        _vars_line(out, XD.xs + XD.ds, "Singular")
        return parse_answer(out, XD, name="Singular")

    def groebner_basis(self, gens, *, order="block", reduced=False, timeout=None):
        """Groebner basis in Q[x]<d> by ``slimgb`` (``reduced=True``: then ``std``, redSB).

        ``order="block"``: :data:`~hgmntk.cas_bridge.backend.BLOCK_ORDER_ROWS` as weight
        vectors refined by ``dp``; ``order="dp"``: degree reverse lexicographic.  The
        inter-reduction is the expensive part for big ideals (GeLU: slimgb 26 s, the
        reducing ``std`` minutes), so it is optional.
        """
        self.require()
        if order == "block":
            rows = ",".join("a(" + ",".join(map(str, row)) + ")" for row in BLOCK_ORDER_ROWS[:3])
            ordering = f"({rows},dp)"
        elif order == "dp":
            ordering = "dp"
        else:
            raise ValueError(f"unknown order {order!r}; use 'block' or 'dp'")
        gens = [g for g in gens if not g.is_zero()]
        if not gens:
            return []
        script = (
            'LIB "nctools.lib";\n'
            f"ring hgmntk_r = 0,({','.join(XD.xs + XD.ds)}),{ordering};\n"
            "def hgmntk_W = Weyl(); setring hgmntk_W; short = 0;\n"
            + self._weyl_guard("x11", "d11")
            + ("option(redSB); option(redTail);\n" if reduced else "")
            + f"ideal hgmntk_I = {', '.join(format_operator(g) for g in gens)};\n"
            "ideal hgmntk_G = slimgb(hgmntk_I);\n"
            + ("hgmntk_G = std(hgmntk_G);\n" if reduced else "")
            + 'print("HGMNTK_VARS " + varstr(basering));\n'
            + self._print_ideal("hgmntk_G")
        )
        out = self.run(script, timeout=timeout)
        _vars_line(out, XD.xs + XD.ds, "Singular")
        return parse_answer(out, XD, name="Singular")

    def reduce(self, ops, gens, *, timeout=None) -> list[Operator]:
        """The non-zero normal forms of ``ops`` modulo the left ideal of ``gens`` (dp)."""
        self.require()
        script = (
            'LIB "nctools.lib";\n'
            f"ring hgmntk_r = 0,({','.join(XD.xs + XD.ds)}),dp;\n"
            "def hgmntk_W = Weyl(); setring hgmntk_W; short = 0;\n"
            + self._weyl_guard("x11", "d11")
            + f"ideal hgmntk_I = {', '.join(format_operator(g) for g in gens) or '0'};\n"
            f"ideal hgmntk_F = {', '.join(format_operator(g) for g in ops) or '0'};\n"
            "ideal hgmntk_N = reduce(hgmntk_F, slimgb(hgmntk_I));\n" + self._print_ideal("hgmntk_N")
        )
        return parse_answer(self.run(script, timeout=timeout), XD, name="Singular")

    def same_ideal(self, a, b, *, timeout=None) -> bool:
        """Do ``a`` and ``b`` generate the same left ideal?  (Mutual reduction to zero.)"""
        return not self.reduce(a, b, timeout=timeout) and not self.reduce(b, a, timeout=timeout)


# --------------------------------------------------------------------------- Macaulay2


class Macaulay2Backend(CASBackend):
    """Macaulay2 (package ``Dmodules``: ``DrestrictionIdeal``, ``gb``, ``holonomicRank``)."""

    name = "macaulay2"
    preference = 20
    capabilities = frozenset({"restriction", "groebner"})
    needs = "Macaulay2 (Debian package 'macaulay2') with its Dmodules package"
    ERROR = MACAULAY2_ERROR

    def __init__(self, command: str | None = None) -> None:
        super().__init__()
        self.command = command or os.environ.get("HGMNTK_M2", "M2")

    def _argv(self) -> list[str]:
        return resolve_command(self.command, name="Macaulay2")

    def run(self, script: str, *, timeout: float | None = None) -> str:
        """Run a Macaulay2 script with ``M2 --script``; return its output."""
        res = run_batch(
            [*self._argv(), "--script"],
            script.rstrip() + "\nexit 0\n",
            name="Macaulay2",
            suffix=".m2",
            timeout=_timeout(timeout),
            error_pattern=self.ERROR,
        )
        return res.output

    def _probe(self) -> BackendStatus:
        argv = self._argv()
        version = _version(argv, r"^\s*([\d.]+)")
        out = self.run('needsPackage "Dmodules";\n<< "HGMNTK_" | "OK" << endl;', timeout=120)
        if "HGMNTK_OK" not in out:
            return BackendStatus(False, f"M2 did not run a test script: {out[-300:]}", version)
        return BackendStatus(True, f"{argv[0]} with package Dmodules", version)

    @staticmethod
    def _ring(alg: WeylAlgebra, order: str = "") -> str:
        pairs = ",".join(f"{x}=>{d}" for x, d in zip(alg.xs, alg.ds, strict=True))
        return f"QQ[{','.join(alg.xs + alg.ds)}, WeylAlgebra => {{{pairs}}}{order}]"

    @staticmethod
    def _print_list(expr: str) -> str:
        return (
            f'<< "{BEGIN}" << endl;\n'
            f'scan({expr}, g -> (<< toString(g) << endl << "{SEP}" << endl));\n'
            f'<< "{DONE}" << endl;\n'
        )

    def restriction_script(self, ann1: Sequence[Operator], ann2: Sequence[Operator]) -> str:
        gens = integrand_ideal(ann1, ann2)
        weights = ",".join(map(str, RESTRICTION_WEIGHTS))
        return (
            'needsPackage "Dmodules";\n'
            f"hgmntkW = {self._ring(YX)};\n"
            f"hgmntkI = ideal({', '.join(format_operator(g) for g in gens)});\n"
            f"hgmntkJ = DrestrictionIdeal(hgmntkI, {{{weights}}});\n"
            '<< "HGMNTK_VARS " << toString(gens ring hgmntkJ) << endl;\n'
            + self._print_list("flatten entries gens gb hgmntkJ")
        )

    def restriction_ideal(self, ann1, ann2, *, timeout=None):
        """Restriction ideal by ``DrestrictionIdeal(I1, {1,1,0,0,0})``, returned as its gb."""
        _check_ann(ann1, ann2)
        self.require()
        out = self.run(self.restriction_script(ann1, ann2), timeout=timeout)
        _vars_line(out, XD.xs + XD.ds, "Macaulay2")
        return parse_answer(out, XD, name="Macaulay2")

    def groebner_basis(self, gens, *, order="block", reduced=True, timeout=None):
        """Reduced Groebner basis by ``gb`` (``"block"``: weight rows as in Singular).

        Macaulay2's ``gb`` always inter-reduces; ``reduced`` is accepted for symmetry.
        """
        self.require()
        if order == "block":
            # Weights rows 1-3, then GRevLex: equal to BLOCK_ORDER_ROWS (rows 4-6 are the
            # GRevLex tie-break on x once the d-part is equal).
            w = ", ".join(
                "Weights => {" + ",".join(map(str, row)) + "}" for row in BLOCK_ORDER_ROWS[:3]
            )
            mo = f", MonomialOrder => {{{w}, GRevLex}}"
        elif order == "dp":
            mo = ""
        else:
            raise ValueError(f"unknown order {order!r}; use 'block' or 'dp'")
        gens = [g for g in gens if not g.is_zero()]
        if not gens:
            return []
        script = (
            f"hgmntkW = {self._ring(XD, mo)};\n"
            f"hgmntkI = ideal({', '.join(format_operator(g) for g in gens)});\n"
            + self._print_list("flatten entries gens gb hgmntkI")
        )
        return parse_answer(self.run(script, timeout=timeout), XD, name="Macaulay2")

    def holonomic_rank(self, gens, *, timeout=None) -> int:
        """``holonomicRank`` of the left ideal generated by ``gens`` in Q[x]<d>."""
        self.require()
        script = (
            'needsPackage "Dmodules";\n'
            f"hgmntkW = {self._ring(XD)};\n"
            f"hgmntkI = ideal({', '.join(format_operator(g) for g in gens)});\n"
            '<< "HGMNTK_RANK " << toString(holonomicRank hgmntkI) << endl;\n'
        )
        out = self.run(script, timeout=timeout)
        m = re.search(r"HGMNTK_RANK (\S+)", out)
        if not m or not m.group(1).isdigit():
            raise CASError(f"Macaulay2 gave no holonomic rank: {out[-500:]}")
        return int(m.group(1))


# --------------------------------------------------------------------------- Risa/Asir


def asir_script_path(name: str = "hgmntk.rr") -> Path:
    """Path of a Risa/Asir script shipped in :mod:`hgmntk.asir_scripts`."""
    path = Path(str(resources.files("hgmntk.asir_scripts").joinpath(name)))
    if not path.is_file():
        raise CASError(f"the Risa/Asir script {name} is missing from the installation")
    return path


class AsirBackend(CASBackend):
    """Risa/Asir with asir-contrib: ``nk_restriction`` restricts, ``yang`` gives the Pfaffian.

    The command is ``HGMNTK_ASIR`` (e.g. ``"/opt/openxm/bin/asir"``), else ``asir`` on PATH.
    ``HGMNTK_ASIR_LIBDIR`` (or Asir's own ``ASIRLOADPATH``) names the directory of
    ``nk_restriction.rr`` and ``yang.rr`` when Asir does not find them by itself (Asir's
    ``ASIR_LIBDIR`` is its standard library: pointed at asir-contrib, yang.rr fails to load).
    ``HGMNTK_ASIR_MODE=session`` keeps one interpreter running (prompt protocol) instead of
    one ``asir -quiet -f`` per call.
    Answers are printed as records (:mod:`~hgmntk.cas_bridge.asir_output`), never parsed
    from Asir's polynomial print.
    """

    name = "asir"
    preference = 40
    capabilities = frozenset({"restriction", "integrability"})
    needs = (
        "Risa/Asir with asir-contrib (nk_restriction.rr, yang.rr): 'asir' on PATH or "
        "HGMNTK_ASIR; HGMNTK_ASIR_LIBDIR/ASIRLOADPATH for the library directory"
    )
    ERROR = ASIR_ERROR
    HINT = (
        "Risa/Asir is not packaged for Debian/PyPI; install OpenXM (asir and asir-contrib) "
        "and put 'asir' on PATH or set HGMNTK_ASIR to its command"
    )
    #: The order of x-variables handed to yang: its grevlex on (d11, d22, d12) is the
    #: engine's monomial order, so both find the same standard monomials.
    PFAFFIAN_ORDER = (0, 2, 1)

    def __init__(self, command: str | None = None, mode: str | None = None) -> None:
        super().__init__()
        self._command = command
        self._mode = mode
        self._session: CASSession | None = None

    @property
    def command(self) -> str:
        return self._command or os.environ.get("HGMNTK_ASIR", "asir")

    @property
    def mode(self) -> str:
        mode = self._mode or os.environ.get("HGMNTK_ASIR_MODE", "batch")
        if mode not in ("batch", "session"):
            raise CASError(f"HGMNTK_ASIR_MODE must be 'batch' or 'session', not {mode!r}")
        return mode

    def env(self) -> dict[str, str]:
        """Environment of the Asir process: ASIRLOADPATH extended by HGMNTK_ASIR_LIBDIR."""
        env = dict(os.environ)
        dirs = [d for d in env.get("HGMNTK_ASIR_LIBDIR", "").split(os.pathsep) if d]
        dirs += [d for d in env.get("ASIRLOADPATH", "").split(os.pathsep) if d]
        if dirs:
            env["ASIRLOADPATH"] = os.pathsep.join(dict.fromkeys(dirs))
        return env

    def _argv(self) -> list[str]:
        return resolve_command(self.command, name="Risa/Asir", hint=self.HINT)

    def prelude(self) -> str:
        """The statements that load asir-contrib and hgmntk's helpers (``hgmntk.rr``)."""
        lib = asir_script_path()
        return f'load("nk_restriction.rr")$\nload("yang.rr")$\nload("{lib}")$\n'

    def run(self, code: str, *, timeout: float | None = None) -> str:
        """Run Asir statements (after loading the libraries); return the printed output.

        In batch mode that is stdout alone (stderr, where Asir writes timings and error
        messages, is only scanned for errors).
        """
        if self.mode == "session":
            session = self.session()
            return session.eval(code, timeout=_timeout(timeout))
        res = run_batch(
            [*self._argv(), "-quiet", "-f"],
            self.prelude() + code.rstrip() + "\nend$\n",
            name="Risa/Asir",
            suffix=".rr",
            timeout=_timeout(timeout),
            error_pattern=self.ERROR,
            env=self.env(),
            hint=self.HINT,
            stderr_apart=True,
        )
        return res.output

    def session(self) -> CASSession:
        """The persistent interpreter (session mode), started with the libraries loaded."""
        if self._session is None:
            dialect = asir_dialect(self.command)
            dialect = type(dialect)(
                **{**dialect.__dict__, "env": {**self.env()}, "hint": self.HINT}
            )
            self._session = CASSession(dialect)
        if not self._session.alive:
            self._session.start()
            self._session.eval(self.prelude(), timeout=120)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _probe(self) -> BackendStatus:
        """Run a real (cheap) restriction, Heaviside x Heaviside: proves the libraries load."""
        argv = self._argv()
        step = [parse_operator(UD, "u*d")]
        parse_operators(self.run(self.restriction_code(step, step), timeout=120), XD)
        return BackendStatus(True, f"{' '.join(map(shlex.quote, argv))} with asir-contrib", None)

    def restriction_code(self, ann1: Sequence[Operator], ann2: Sequence[Operator]) -> str:
        """The call of ``hgmntk_restriction`` on the integrand ideal of ``ann1``, ``ann2``."""
        gens = integrand_ideal(ann1, ann2)
        return (
            f"hgmntk_restriction([{', '.join(format_operator(g) for g in gens)}], "
            f"[{','.join(YX.xs)}], [{','.join(YX.ds)}], "
            f"[{','.join(map(str, RESTRICTION_WEIGHTS))}], [{','.join(XD.xs + XD.ds)}])$"
        )

    def restriction_ideal(self, ann1, ann2, *, timeout=None):
        """Restriction ideal by ``nk_restriction.restriction_ideal`` (script hgmntk.rr)."""
        _check_ann(ann1, ann2)
        self.require()
        out = self.run(self.restriction_code(ann1, ann2), timeout=timeout)
        return parse_operators(out, XD)

    def pfaffian_code(self, gens: Sequence[Operator]) -> str:
        """The call of ``hgmntk_pfaffian`` on ``gens`` (x-variables in yang's order)."""
        order = self.PFAFFIAN_ORDER
        xs = ",".join(XD.xs[i] for i in order)
        ds = ",".join(XD.ds[i] for i in order)
        ops = ", ".join(format_operator(g) for g in gens if not g.is_zero())
        return f"hgmntk_pfaffian([{ops}], [{xs}], [{ds}])$"

    def pfaffian_system(self, gens: Sequence[Operator], *, timeout=None):
        """Pfaffian system of R gens in R = Q(x)<d> by yang (``gr``, ``stdmon``, ``pfaffian``).

        yang computes the Groebner basis of the left ideal in the rational Weyl algebra,
        its standard monomials m_1..m_r and matrices with d_i m_k = sum_l P_i[k][l] m_l;
        the result, a :class:`~hgmntk.cas_bridge.pfaffian.DerivedSystem`, lists them in
        hgmntk's variable order (P_x11, P_x12, P_x22).
        """
        if not any(not g.is_zero() for g in gens):
            raise CASError("the ideal is zero: it has no Pfaffian system")
        from .pfaffian import DerivedSystem, factor_matrices

        self.require()
        out = self.run(self.pfaffian_code(gens), timeout=timeout)
        monos, entries = parse_pfaffian(out, self.PFAFFIAN_ORDER)
        factors, matrices = factor_matrices(entries)
        return DerivedSystem(
            standard_monomials=monos,  # type: ignore[arg-type]
            factors=factors,
            matrices=matrices,
            ideal=[g for g in gens if not g.is_zero()],
            stats={"engine": "asir yang"},
        )


# --------------------------------------------------------------------------- pure Python


class SympyBackend(CASBackend):
    """The pure-Python engine (:mod:`hgmntk.cas_bridge.pfaffian`); always last in line.

    No time limit applies (it runs in this process).
    """

    name = "sympy"
    preference = 0
    capabilities = frozenset({"restriction", "integrability"})
    needs = "nothing beyond hgmntk's own dependencies"

    @staticmethod
    def _engine():
        try:
            module = importlib.import_module("hgmntk.cas_bridge.pfaffian")
        except ModuleNotFoundError as exc:
            if exc.name == "hgmntk.cas_bridge.pfaffian":
                raise CASError("the pure-Python engine is not available yet") from exc
            raise
        if not hasattr(module, "derive_pfaffian"):
            raise CASError("the pure-Python engine is not available yet (no derive_pfaffian)")
        return module

    def _probe(self) -> BackendStatus:
        import sympy

        self._engine()
        return BackendStatus(True, "built in (pure Python)", sympy.__version__)

    def derive(self, ann1, ann2, *, timeout=None):
        """The engine's ``derive_pfaffian(ann1, ann2)`` result (ideal, rank, Pfaffian)."""
        _check_ann(ann1, ann2)
        self.require()
        return self._engine().derive_pfaffian(list(ann1), list(ann2), timeout=timeout)

    def restriction_ideal(self, ann1, ann2, *, timeout=None):
        """The annihilating ideal found by ``derive_pfaffian(ann1, ann2)`` (its ``.ideal``).

        The integration-by-parts route returns generators of an annihilating ideal of Ehat
        whose Pfaffian system has the rank of the restriction ideal; the generators need not
        be those a CAS prints.
        """
        return list(self.derive(ann1, ann2, timeout=timeout).ideal)


#: The built-in backend objects (one per process).
BUILTIN_BACKENDS: tuple[CASBackend, ...] = (
    AsirBackend(),
    SingularBackend(),
    Macaulay2Backend(),
    SympyBackend(),
)


@hookimpl
def hgmntk_register_cas_backends(register):
    """Register the built-in backends (asir, singular, macaulay2, sympy)."""
    for backend in BUILTIN_BACKENDS:
        register(backend)
