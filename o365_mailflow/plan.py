"""Plans as data: what would change in a tenant, field by field.

The text, JSON and markdown renderers, the ``apply`` executor and the Pulumi ``DiffResult`` all read one
immutable :class:`Plan`. Computing it (``compute_plan``) lives below the data model in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import Diagnostic

__all__ = [
    "Action",
    "FieldChange",
    "ResourceChange",
    "Unmanaged",
    "Guidance",
    "Plan",
    "REDACTED",
]

REDACTED = "(sensitive)"


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ADOPT = "adopt"  # take over an existing object (and update its declared fields if they differ)
    RESTORE = "restore"  # accepted domain left the stack under prune: put back the values found
    NOOP = "no-op"


@dataclass(frozen=True)
class FieldChange:
    field: str  # camelCase stack name, e.g. "smartHosts"
    param: str  # Exchange parameter, e.g. "SmartHosts"
    before: Any  # normalised live value (None when absent / on create)
    after: Any  # normalised desired value (None on delete)
    risky: bool = False  # from the spec table: SmartHosts, SenderIPAddresses, TlsSettings, ...
    drift: bool = False  # the tenant differs from the baseline stack while the stack did not change this field
    sensitive: bool = False  # rendered as REDACTED

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "param": self.param,
            "before": REDACTED if self.sensitive else self.before,
            "after": REDACTED if self.sensitive else self.after,
            "risky": self.risky,
            "drift": self.drift,
        }


@dataclass(frozen=True)
class ResourceChange:
    action: Action
    type_name: str  # "InboundConnector" | "OutboundConnector" | "AcceptedDomain"
    name: str  # connector Name or accepted domain name, as declared
    identity: str | None = None  # live Guid (connectors) or domain name; None for a create
    changes: tuple[FieldChange, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()
    reason: str = ""  # why this action, one line for humans

    @property
    def risky(self) -> bool:
        return self.action is Action.DELETE or any(c.risky for c in self.changes)

    @property
    def has_drift(self) -> bool:
        return any(c.drift for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "type": self.type_name,
            "name": self.name,
            "identity": self.identity,
            "risky": self.risky,
            "reason": self.reason,
            "changes": [c.to_dict() for c in self.changes],
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass(frozen=True)
class Unmanaged:
    """An object in the tenant that the stack does not declare: reported, left alone (unless prune)."""

    type_name: str
    name: str
    identity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name, "identity": self.identity}


@dataclass(frozen=True)
class Guidance:
    """Advice derived from the stack: what devices use as smart host, and the SPF record to publish."""

    mx_endpoints: dict[str, str] = field(default_factory=dict)  # accepted domain -> <domain>.mail.protection.outlook.com
    spf_record: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"mxEndpoints": dict(self.mx_endpoints), "spfRecord": self.spf_record}


PLAN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Plan:
    stack: str
    tenant: str  # human label of the tenant
    changes: tuple[ResourceChange, ...]  # one per declared object (including no-ops), plus deletes/restores
    unmanaged: tuple[Unmanaged, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()  # stack-wide warnings (routing checks, service warnings)
    guidance: Guidance = field(default_factory=Guidance)
    prune: bool = False

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def summary(self) -> dict[str, int]:
        return {a.value: self.count(a) for a in Action}

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    @property
    def drift(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.has_drift)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON plan (docs/plan-json.md); bump PLAN_SCHEMA_VERSION on breaking changes."""
        return {
            "schemaVersion": PLAN_SCHEMA_VERSION,
            "stack": self.stack,
            "tenant": self.tenant,
            "prune": self.prune,
            "summary": self.summary,
            "hasChanges": self.has_changes,
            "changes": [c.to_dict() for c in self.changes],
            "unmanaged": [u.to_dict() for u in self.unmanaged],
            "warnings": [w.to_dict() for w in self.warnings],
            "guidance": self.guidance.to_dict(),
        }
