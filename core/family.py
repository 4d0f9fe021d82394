"""Activation families with parameters: the machinery (built-in families live in
:mod:`hgmntk.plugins.families`; plugins register theirs through the
``hgmntk_register_families`` hook).

A :class:`Family` turns parameter values into an :class:`~hgmntk.Activation`:

* its expression and derivative in u, with every parameter as the exact decimal number it
  is written as (0.2 is 1/5: the shortest ``repr`` of the float, see :func:`exact`);
* its closed forms where the family has them, evaluated with the float parameters;
* its Pfaffian systems (for the ``hgm`` method): the shipped ones where the parameters
  name a shipped activation (``Erf()`` is ``erf``), otherwise derived for that parameter
  value when first needed and cached on disk (:func:`hgmntk.cas_bridge.derive.derive_cached`;
  one to three seconds for the built-in families); a closed form never waits for it.

Users write ``hgmntk.act.LeakyRelu(alpha=0.2)`` or the text ``"leaky_relu(alpha=0.2)"``
(``"LeakyRelu(alpha=0.2)"`` too) wherever an activation is expected, the CLI included:
:func:`parse_family_call` reads only literals (numbers, True/False, lists of numbers).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .activation import Activation, CollinearData
from .covariance import VARIANCE_RANGE
from .errors import InvalidInputError

REQUIRED = object()


#: Magnitudes a real parameter may take (besides 0): the variances' own range
#: (:data:`hgmntk.covariance.VARIANCE_RANGE`), so that squares and products stay finite.
PARAMETER_RANGE = VARIANCE_RANGE


@dataclass(frozen=True)
class Parameter:
    """One parameter of a family: name, default (``REQUIRED`` if none) and kind
    ("float", "int", "bool" or "floats")."""

    name: str
    default: Any = REQUIRED
    kind: str = "float"
    doc: str = ""
    #: False for a parameter kept only for neural-tangents' signature (no effect here):
    #: left out of the activation's name
    shown: bool = True

    def convert(self, value: Any, family: str) -> Any:
        """The value checked and converted to the parameter's kind."""
        where = f"{family}: parameter {self.name!r}"
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise InvalidInputError(f"{where} must be True or False, not {value!r}")
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(f"{where} must be a non-negative integer, not {value!r}")
            if value > 40:
                raise InvalidInputError(f"{where} = {value} is too large (at most 40)")
            return int(value)
        if self.kind == "floats":
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise InvalidInputError(f"{where} must be a list of numbers, not {value!r}")
            values = tuple(_finite(v, where) for v in value)
            if not values or len(values) > 41:
                raise InvalidInputError(f"{where} must hold 1 to 41 coefficients")
            return values
        return _finite(value, where)


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            raise InvalidInputError(f"{where} must be a number, not {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInputError(f"{where} must be finite, not {value!r}")
    if value and not PARAMETER_RANGE[0] <= abs(value) <= PARAMETER_RANGE[1]:
        raise InvalidInputError(
            f"{where} = {value!r} is out of range: parameters are 0 or of magnitude "
            f"{PARAMETER_RANGE[0]:g} to {PARAMETER_RANGE[1]:g} (their squares and their "
            "products with the variances must stay within float64)")
    return value


@dataclass(frozen=True)
class Member:
    """What a family makes of its parameter values (see :meth:`Family.activation`)."""

    expression: str
    derivative: str
    description: str
    forms: Mapping[str, Callable] = field(default_factory=dict)
    homogeneity: Mapping[str, float | None] = field(default_factory=dict)
    collinear: Mapping[str, CollinearData] = field(default_factory=dict)
    holonomic: bool = True
    shipped: str | None = None  # a registered activation equal to this member
    #: for s growing like exp(k u^2): the variance 1/(4k) from which E[s(U)^2] diverges
    variance_limit: float | None = None


@dataclass(frozen=True)
class Family:
    """A family of activations with parameters (see the module docstring)."""

    name: str
    stax: str | None
    parameters: tuple[Parameter, ...]
    make: Callable[..., Member]
    description: str
    systems: str = "derived per parameter value on first use, cached on disk"

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Parameter values from positional and keyword arguments, checked, defaults
        filled in (in the order of ``parameters``)."""
        names = [p.name for p in self.parameters]
        if len(args) > len(names):
            raise InvalidInputError(
                f"{self.name} takes {len(names)} parameter(s) ({self.signature()}), "
                f"got {len(args)} positional")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise InvalidInputError(
                    f"{self.name} has no parameter {key!r}; its parameters: {self.signature()}")
            if key in values:
                raise InvalidInputError(f"{self.name}: parameter {key!r} given twice")
            values[key] = value
        out = {}
        for p in self.parameters:
            if p.name not in values:
                if p.default is REQUIRED:
                    raise InvalidInputError(
                        f"{self.name} needs the parameter {p.name!r}: {self.signature()}")
                out[p.name] = p.default
            else:
                out[p.name] = p.convert(values[p.name], self.name)
        return out

    def signature(self) -> str:
        """``name(p1=default, p2, ...)`` as a user writes it."""
        parts = [p.name if p.default is REQUIRED else f"{p.name}={p.default!r}"
                 for p in self.parameters]
        return f"{self.name}({', '.join(parts)})"

    def spelling(self, values: Mapping[str, Any]) -> str:
        """The activation's name: the family with every parameter, e.g.
        ``leaky_relu(alpha=0.2)``."""
        if not any(p.shown for p in self.parameters):
            return self.name
        parts = [f"{p.name}={_show(values[p.name])}" for p in self.parameters if p.shown]
        return f"{self.name}({', '.join(parts)})"

    def activation(self, *args: Any, **kwargs: Any) -> Activation:
        """The activation for these parameter values (a shipped one where they name it).
        Equal values give the same object (remembered per process), so the evaluators and
        the derived system made for it serve every later call."""
        values = self.bind(*args, **kwargs)
        key = (self.name, self.spelling(values))  # the name omits only unused switches
        remembered = _MEMBERS.get(key)
        if remembered is not None:
            return remembered
        act = self._make_activation(values)
        if act.provenance.get("family") == self.name:  # not a shipped one (the registry's)
            if len(_MEMBERS) >= MAX_MEMBERS:
                _MEMBERS.clear()
            _MEMBERS[key] = act
        return act

    def _make_activation(self, values: dict[str, Any]) -> Activation:
        member = self.make(**values)
        if member.shipped is not None:
            from hgmntk.plugin_manager import get_registry

            shipped = get_registry().activations.get(member.shipped)
            if shipped is not None:
                return shipped
        name = self.spelling(values)
        derived = _Derivation(member.expression, name) if member.holonomic else None
        return Activation(
            name=name,
            expression=member.expression,
            derivative=member.derivative,
            description=member.description,
            annihilators=_DerivedField(derived, "annihilators") if derived else {},
            homogeneity=dict(member.homogeneity),
            duals=_DerivedField(derived, "duals") if derived else {},
            collinear=dict(member.collinear) or _QUADRATURE,
            closed_forms=dict(member.forms),
            provenance={"family": self.name, "parameters": dict(values),
                        "systems": self.systems if derived else "none (not holonomic)",
                        **({"variance_limit": member.variance_limit}
                           if member.variance_limit is not None else {})},
            holonomic=member.holonomic,
        )


#: Family members made in this process (at most ``MAX_MEMBERS``, then forgotten at once).
_MEMBERS: dict[tuple, Activation] = {}
MAX_MEMBERS = 256


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value)


_QUADRATURE = {"ss": CollinearData("quadrature"), "dsds": CollinearData("quadrature")}


class _Derivation:
    """The derived activation of an expression, made on first use (disk-cached)."""

    def __init__(self, expression: str, name: str) -> None:
        self.expression, self.name = expression, name
        self._activation: Activation | None = None

    @property
    def activation(self) -> Activation:
        if self._activation is None:
            from hgmntk.cas_bridge.derive import derive_cached
            from hgmntk.dual_activation import no_system_hint

            with no_system_hint():
                self._activation = derive_cached(self.expression, name=self.name)
        return self._activation


class _DerivedField(Mapping):
    """A field (``duals``, ``annihilators``) of the derived activation, derived when first
    looked into: a closed form never needs it."""

    def __init__(self, derivation: _Derivation, field_name: str) -> None:
        self._derivation, self._field = derivation, field_name

    def _data(self) -> Mapping:
        return getattr(self._derivation.activation, self._field)

    def __getitem__(self, key: str):
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        state = "derived" if self._derivation._activation is not None else "not derived yet"
        return f"<{self._field} of {self._derivation.expression!r}: {state}>"


# ------------------------------------------------------------------------- expressions
def exact(x: float) -> str:
    """A float as the exact decimal it is written as, in SymPy syntax (0.2 -> '1/5')."""
    import sympy

    return sympy.sstr(sympy.Rational(repr(float(x))))



# --------------------------------------------------------------- "name(k=v, ...)" text
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z_0-9]*)\s*(\(.*\))?\s*$", re.DOTALL)


def find_family(name: str, families: Mapping[str, Family]) -> Family | None:
    """The family called ``name`` (hgmntk's spelling or neural-tangents')."""
    if name in families:
        return families[name]
    for family in families.values():
        if family.stax == name:
            return family
    return None


def parse_family_call(text: str, families: Mapping[str, Family]) -> Activation | None:
    """The activation written as ``family(k=v, ...)`` (or a bare family name), or None
    when ``text`` does not name a family.  Values must be literals: numbers, True/False,
    lists of numbers."""
    if len(text) > 2000:
        return None
    match = _CALL.match(text)
    if not match:
        return None
    family = find_family(match.group(1), families)
    if family is None:
        return None
    if match.group(2) is None:
        return family.activation()
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if not isinstance(call, ast.Call):
        return None
    try:
        args = [ast.literal_eval(a) for a in call.args]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None  # e.g. sin(u): an expression, not parameters
    kwargs = {}
    for k in call.keywords:
        if k.arg is None:
            raise InvalidInputError(f"{text!r}: write the parameters as name=value")
        try:
            kwargs[k.arg] = ast.literal_eval(k.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            # name=value is never an expression in u: say what is wrong with the value
            raise InvalidInputError(
                f"{family.name}: parameter {k.arg!r} must be a literal number, True/False "
                f"or a list of numbers (e.g. {k.arg}=0.5), not {ast.unparse(k.value)!r}"
            ) from None
    return family.activation(*args, **kwargs)
