"""The shapes of data that flows between the layers, named once so every seam says what it passes.

Why a module of its own: the normalised object, the service's Get-* record and the plan's JSON cross every layer
(specs -> snapshot -> plan -> render/apply/providers). Spelled ``dict[str, Any]`` at each seam they let any
value through unchecked; named here (at the bottom of the layers, importing nothing of ours) each module can say
which of them it takes and mypy holds them to it.
"""

from __future__ import annotations

from typing import Mapping, Sequence, TypeAlias, TypedDict

__all__ = [
    "Value",
    "Fields",
    "FieldMap",
    "Json",
    "JsonObject",
    "Record",
    "FieldChangeJson",
    "ResourceChangeJson",
    "UnmanagedJson",
    "DiagnosticJson",
    "GuidanceJson",
    "ImpactRowJson",
    "ImpactJson",
    "PlanJson",
    "texts",
]

# One normalised field value, as the spec kinds make it on both sides of a diff: text (names, domains, IP ranges,
# choices, timestamps), a flag, a list of such text (sets are sorted), or None (unset / cleared).
Value: TypeAlias = str | bool | int | list[str] | None
# A normalised object: camelCase field name -> value (a DesiredObject's or a LiveObject's ``fields``).
Fields: TypeAlias = dict[str, Value]
# The same, read-only: what a function that only looks at an object takes.
FieldMap: TypeAlias = Mapping[str, Value]

# JSON as read from the service or written for other tools. Read-only containers so that a ``list[str]`` or a
# ``dict[str, Value]`` is JSON without a copy.
Json: TypeAlias = str | int | float | bool | None | Sequence["Json"] | Mapping[str, "Json"]
JsonObject: TypeAlias = Mapping[str, Json]
# One Get-* record (a PowerShell object as the InvokeCommand endpoint serialises it): PascalCase property -> value.
Record: TypeAlias = Mapping[str, Json]


class FieldChangeJson(TypedDict):
    field: str
    param: str
    before: Value
    after: Value
    risky: bool
    drift: bool


class DiagnosticJson(TypedDict):
    severity: str
    path: str
    summary: str
    detail: str
    allowed: str | None
    file: str | None
    line: int | None
    code: str


class ResourceChangeJson(TypedDict):
    action: str
    type: str
    name: str
    identity: str | None
    risky: bool
    reason: str
    changes: list[FieldChangeJson]
    warnings: list[DiagnosticJson]


class UnmanagedJson(TypedDict):
    type: str
    name: str
    identity: str | None


class GuidanceJson(TypedDict):
    mxEndpoints: dict[str, str]
    spfRecord: str | None
    spfTxtStrings: list[str]


class ImpactRowJson(TypedDict):
    direction: str
    kind: str
    subject: str
    probe: str
    sentence: str
    before: dict[str, Json]
    after: dict[str, Json]


class ImpactJson(TypedDict):
    probes: int
    rows: list[ImpactRowJson]


class _PlanJsonRequired(TypedDict):
    schemaVersion: int
    stack: str
    tenant: str
    prune: bool
    engine: str
    summary: dict[str, int]
    hasChanges: bool
    changes: list[ResourceChangeJson]
    unmanaged: list[UnmanagedJson]
    warnings: list[DiagnosticJson]
    guidance: GuidanceJson


class PlanJson(_PlanJsonRequired, total=False):
    """The documented JSON plan (docs/plan-schema.json); ``impact`` only when the renderer was given one."""

    impact: ImpactJson


def texts(obj: FieldMap, name: str) -> list[str]:
    """The items of a list field of a normalised object; unset (None or absent) reads as no items."""
    value = obj.get(name)
    return value if isinstance(value, list) else []
