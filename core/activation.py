"""Activations as data: expression, annihilators and the Pfaffian systems of their duals.

An activation file (JSON, one per activation, ``format_version`` 1) holds

- ``name``, ``description``, ``expression`` and ``derivative`` (SymPy syntax in ``u``);
- ``annihilators``: for ``"s"`` and ``"ds"``, generators of a left ideal in Q<u, d> (d = d/du)
  that annihilates the function as a distribution, written normally ordered ("u*d - 1");
- ``homogeneity``: the degree k of positive homogeneity s(l u) = l^k s(u) (l > 0), or null;
- ``duals``: for each dual key (``"ss"`` = E[s(u)s(v)], ``"dsds"`` = E[s'(u)s'(v)]) a
  :class:`~hgmntk.system.PfaffianSystem`;
- ``collinear``: for each dual key, how to evaluate it on a singular covariance (rho = +-1):
  ``{"kind": "homogeneous", "same": E[s(U)s(U)], "opposite": E[s(U)s(-U)]}`` (U ~ N(0,1),
  decimal strings or "inf") or ``{"kind": "quadrature"}`` (1-D quadrature of the
  expression);
- ``provenance``: how the file was made (engine, version, date).

Closed forms are code, attached by the plugin that registers the activation.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from .errors import ActivationFileError
from .system import PfaffianSystem, parse_number

FORMAT_NAME = "hgmntk-activation"
FORMAT_VERSION = 1

#: The dual keys hgmntk knows: value of E[s(u)s(v)] and of E[s'(u)s'(v)].
DUAL_KEYS = {False: "ss", True: "dsds"}
#: The function on each side of a dual: s for "ss", s' ("ds") for "dsds".
SIDE_OF = {"ss": "s", "dsds": "ds"}

ClosedForm = Callable[..., object]


@dataclass(frozen=True)
class CollinearData:
    """How a dual is evaluated at rho = +-1 (see module docstring)."""

    kind: str
    same: float = math.nan
    opposite: float = math.nan

    @classmethod
    def from_json(cls, data: Mapping) -> CollinearData:
        kind = data.get("kind", "quadrature")
        if kind == "homogeneous":
            return cls(
                kind, float(parse_number(data["same"])), float(parse_number(data["opposite"]))
            )
        if kind == "quadrature":
            return cls(kind)
        raise ValueError(f"unknown collinear kind {kind!r}")

    def to_json(self) -> dict:
        if self.kind == "homogeneous":
            return {"kind": self.kind, "same": _num(self.same), "opposite": _num(self.opposite)}
        return {"kind": self.kind}


def _num(v: float) -> str:
    return "inf" if math.isinf(v) else repr(float(v))


class LazySystems(MutableMapping[str, PfaffianSystem]):
    """The Pfaffian systems of an activation file, parsed on first use.

    Parsing a system turns thousands of decimal fractions into exact ones (gelu's take about
    a second), and most calls need none of them (a closed form, a listing), or only one
    dual's.  The JSON of each system is checked for its shape when the file is read and
    parsed into a :class:`~hgmntk.system.PfaffianSystem` the first time it is looked up; a
    corrupt system then raises :class:`~hgmntk.ActivationFileError` naming the file.
    """

    def __init__(self, raw: Mapping[str, Mapping], source: str = "") -> None:
        for key, data in raw.items():
            if not isinstance(data, Mapping):
                raise TypeError(f"dual {key!r} is not a JSON object")
            monomials, matrices = data["standard_monomials"], data["pfaffian"]
            if len(matrices) != len(data["variables"]):
                raise ValueError(f"dual {key!r}: one Pfaffian matrix per variable expected")
            if int(data.get("rank", len(monomials))) != len(monomials):
                raise ValueError(f"dual {key!r}: stored rank differs from the standard monomials")
        self._raw = dict(raw)
        self._parsed: dict[str, PfaffianSystem] = {}
        self._source = source
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> PfaffianSystem:
        system = self._parsed.get(key)
        if system is not None:
            return system
        data = self._raw[key]  # KeyError for an unknown dual, as a dict
        with self._lock:
            if key not in self._parsed:
                try:
                    self._parsed[key] = PfaffianSystem.from_json(data)
                except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
                    raise ActivationFileError(
                        f"{self._source or 'activation data'}: corrupt Pfaffian system of dual "
                        f"{key!r} ({type(exc).__name__}: {exc}); delete the file and re-derive, "
                        "or reinstall the plugin that ships it"
                    ) from exc
            return self._parsed[key]

    def __setitem__(self, key: str, system: PfaffianSystem) -> None:
        """Replace (or add) a dual's system, as in a dict (e.g. a test substituting one)."""
        with self._lock:
            self._raw[key] = None  # the parsed system is authoritative from now on
            self._parsed[key] = system

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._raw[key]
            self._parsed.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def rank(self, key: str) -> int:
        """The holonomic rank of dual ``key`` without parsing its system."""
        if key in self._parsed:
            return self._parsed[key].rank
        return len(self._raw[key]["standard_monomials"])

    def to_json(self, key: str) -> dict:
        """The JSON of dual ``key``: as read if it was never parsed."""
        if key in self._parsed:
            return self._parsed[key].to_json()
        return json.loads(json.dumps(self._raw[key]))

    def __getstate__(self) -> dict:
        return {"_raw": self._raw, "_parsed": self._parsed, "_source": self._source}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LazySystems({sorted(self._raw)}, parsed={sorted(self._parsed)})"


@dataclass(frozen=True)
class Activation:
    """One activation function and everything hgmntk needs to compute its kernels."""

    name: str
    expression: str
    derivative: str | None = None
    description: str = ""
    annihilators: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    homogeneity: Mapping[str, float | None] = field(default_factory=dict)
    duals: Mapping[str, PfaffianSystem] = field(default_factory=dict)
    collinear: Mapping[str, CollinearData] = field(default_factory=dict)
    closed_forms: Mapping[str, ClosedForm] = field(default_factory=dict)
    provenance: Mapping[str, object] = field(default_factory=dict)
    holonomic: bool = True
    source: str = ""

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_json(cls, data: Mapping, source: str = "") -> Activation:
        """Build from the parsed JSON of an activation file (validating it)."""
        if data.get("format") != FORMAT_NAME:
            raise ActivationFileError(f"{source or 'data'}: not an hgmntk activation file")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ActivationFileError(
                f"{source}: activation file format version {version!r} is not supported "
                f"(this hgmntk reads version {FORMAT_VERSION}); re-derive it with "
                "'hgmntk derive' or upgrade hgmntk"
            )
        try:
            return cls(
                name=str(data["name"]),
                expression=str(data["expression"]),
                derivative=data.get("derivative"),
                description=str(data.get("description", "")),
                annihilators={k: tuple(v) for k, v in data.get("annihilators", {}).items()},
                homogeneity=dict(data.get("homogeneity", {})),
                duals=LazySystems(data.get("duals", {}), source),
                collinear={
                    k: CollinearData.from_json(v) for k, v in data.get("collinear", {}).items()
                },
                provenance=dict(data.get("provenance", {})),
                holonomic=bool(data.get("holonomic", True)),
                source=source,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ActivationFileError(
                f"{source or 'activation data'}: corrupt activation file ({type(exc).__name__}: "
                f"{exc}); delete it and re-derive, or reinstall the plugin that ships it"
            ) from exc

    @classmethod
    def load(cls, path: str | Path) -> Activation:
        """Read an activation file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ActivationFileError(f"activation file {path} does not exist") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ActivationFileError(
                f"{path}: unreadable activation file ({exc}); delete it and re-derive"
            ) from exc
        return cls.from_json(data, source=str(path))

    def to_json(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "description": self.description,
            "expression": self.expression,
            "derivative": self.derivative,
            "holonomic": self.holonomic,
            "annihilators": {k: list(v) for k, v in self.annihilators.items()},
            "homogeneity": dict(self.homogeneity),
            "duals": {k: self.dual_json(k) for k in self.duals},
            "collinear": {k: v.to_json() for k, v in self.collinear.items()},
            "provenance": dict(self.provenance),
        }

    def save(self, path: str | Path) -> None:
        """Write the activation file atomically (temporary file, then rename)."""
        import os
        import tempfile

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_json(), fh, indent=1)
                fh.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def with_closed_forms(self, **forms: ClosedForm) -> Activation:
        """A copy with closed forms attached (keys are dual keys, e.g. ss=..., dsds=...)."""
        return replace(self, closed_forms={**self.closed_forms, **forms})

    # -------------------------------------------------------------- queries
    def pair_homogeneity(self, key: str) -> tuple[float, float] | None:
        """Degrees (k1, k2) with E(a,b,c) = a^(k1/2) b^(k2/2) e(rho), or None."""
        side = SIDE_OF.get(key)
        k = self.homogeneity.get(side) if side else None
        return None if k is None else (float(k), float(k))

    def dual_rank(self, key: str) -> int:
        """Holonomic rank of the Pfaffian system of dual ``key`` (parses nothing)."""
        if isinstance(self.duals, LazySystems):
            return self.duals.rank(key)
        return self.duals[key].rank

    def dual_json(self, key: str) -> dict:
        """The JSON of the Pfaffian system of dual ``key`` (parses nothing if not yet parsed)."""
        if isinstance(self.duals, LazySystems):
            return self.duals.to_json(key)
        return self.duals[key].to_json()

    def function_expression(self, key: str) -> str | None:
        """The SymPy expression of the function on each side of dual ``key``."""
        return {"ss": self.expression, "dsds": self.derivative}.get(key)

    @cached_property
    def numeric_functions(self) -> dict[str, Callable]:
        """NumPy callables of s and s' (for quadrature), built from the expressions."""
        from .expressions import lambdify_activation

        out = {}
        for side, expr in (("s", self.expression), ("ds", self.derivative)):
            if expr:
                fn = lambdify_activation(expr)
                if fn is not None:
                    out[side] = fn
        return out
