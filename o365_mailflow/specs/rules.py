"""Cross-field rules: a small condition language over one object's fields, read two ways (a test on a merged,
normalised object and a JSON Schema on a stack file's raw values), and the rule record that the tables hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .. import patterns as rx
from .kinds import UNSET, Kind, ListOf

if TYPE_CHECKING:
    from .tables import ResourceSpec

__all__ = ["Cond", "Is", "IsSet", "Has", "StartsWith", "Not", "AllOf", "AnyOf", "Rule"]


# ---------------------------------------------------------------------------------------------------------------------
# Cross-field rules (on a merged object, as the service validates the merged state, §2.2 / §4.2)
# ---------------------------------------------------------------------------------------------------------------------


class Cond:
    """A condition on one object's fields, declared once and read two ways: :meth:`test` on a merged, normalised
    object (what ``mailflow validate``, plan and the Pulumi providers check) and :meth:`json_schema` on the raw
    values of a stack file (the editor schema, built by docgen). Keeping both readings in one class is what keeps
    the editor and the CLI from disagreeing about a rule."""

    def fields(self) -> tuple[str, ...]:
        raise NotImplementedError

    def test(self, obj: Mapping[str, Any]) -> bool:
        return self.compiled(obj)

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        """:meth:`test` as one closure, built once per condition: every object of a stack is tested against every
        rule, and nested closures skip the method calls and attribute look-ups of walking the condition tree."""
        if type(self).test is Cond.test:
            raise NotImplementedError
        return self.test  # a condition that defines test() itself

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        """JSON Schema that a raw object meets exactly when :meth:`test` holds for it, an undeclared field reading as
        its service default (the caller makes sure every field is declared or has one, see :func:`rule_schemas`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class _FieldCond(Cond):
    """A condition on one field of the object."""

    field: str

    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        raise NotImplementedError

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        fld = spec.field(self.field)
        schema: dict[str, Any] = {"properties": {self.field: self.value_schema(fld.kind)}}
        # "properties" holds when the key is absent, which is right exactly when the default meets the condition.
        if fld.default is UNSET or not self.test({self.field: fld.default}):
            schema["required"] = [self.field]
        return schema


@dataclass(frozen=True)
class Is(_FieldCond):
    """The field's normalised value is ``value`` (True, False, None or an enumeration's canonical name)."""

    value: Any

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        name, want, want_type = self.field, self.value, type(self.value)

        def test(obj: Mapping[str, Any]) -> bool:
            value = obj[name]
            return bool(value == want) and type(value) is want_type
        return test

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        return kind.matching(self.value)


@dataclass(frozen=True)
class IsSet(_FieldCond):
    """The field is true, a non-empty list, or a domain or text that is set."""

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        name = self.field
        return lambda obj: bool(obj[name])

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        return kind.truthy()


@dataclass(frozen=True)
class Has(_FieldCond):
    """The list field holds ``item`` (normalised, e.g. ``*``)."""

    item: Any

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        name, item = self.field, self.item
        return lambda obj: item in obj[name]

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        if not isinstance(kind, ListOf):
            raise TypeError(f"Has({self.field!r}) needs a list field")
        return kind.containing(self.item)


@dataclass(frozen=True)
class StartsWith(_FieldCond):
    """The field's normalised text starts with ``prefix`` (which has no letters, so case does not matter)."""

    prefix: str

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        name, prefix = self.field, self.prefix
        return lambda obj: str(obj[name]).startswith(prefix)

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        return {"type": "string", "pattern": rf"^\s*{rx.literal(self.prefix)}"}


@dataclass(frozen=True)
class Not(Cond):
    """Holds when ``cond`` does not."""

    cond: Cond

    def fields(self) -> tuple[str, ...]:
        return self.cond.fields()

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        inner = self.cond.compiled
        return lambda obj: not inner(obj)

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        return {"not": self.cond.json_schema(spec)}


class AllOf(Cond):
    def __init__(self, *conds: Cond) -> None:
        self.conds = conds

    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for cond in self.conds for name in cond.fields()))

    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        tests = tuple(cond.compiled for cond in self.conds)

        def test(obj: Mapping[str, Any]) -> bool:
            for each in tests:  # a loop, not all() over a generator: every object is tested against every rule
                if not each(obj):
                    return False
            return True
        return test

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        return {"allOf": [cond.json_schema(spec) for cond in self.conds]}


class AnyOf(AllOf):
    @cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], bool]:
        tests = tuple(cond.compiled for cond in self.conds)

        def test(obj: Mapping[str, Any]) -> bool:
            for each in tests:
                if each(obj):
                    return True
            return False
        return test

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        return {"anyOf": [cond.json_schema(spec) for cond in self.conds]}


@dataclass(frozen=True)
class Rule:
    """A cross-field rule of a resource type: where to point and what to say when an object breaks it."""

    code: str
    broken: Cond  # holds when the object breaks the rule; its fields are the ones the rule reads
    at: tuple[str, ...]  # where to point, in preference order (the first one the stack declared)
    message: str
    allowed: str | None = None

    @cached_property
    def needs(self) -> tuple[str, ...]:
        """Fields the rule reads; a rule whose fields are not all known is skipped (worked out once per rule:
        every object of a stack is checked against every rule)."""
        return self.broken.fields()

    @cached_property
    def needs_set(self) -> frozenset[str]:
        """:attr:`needs` as a set: ``needs_set <= obj.keys()`` tells in one step whether all of them are known."""
        return frozenset(self.needs)

