"""Plans as data: what would change in a tenant, field by field.

The text, JSON and markdown renderers, the ``apply`` executor and the Pulumi ``DiffResult`` all read one
immutable :class:`Plan`. Computing it (``compute_plan``) lives below the data model in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, Sequence

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


# --------------------------------------------------------------------------------------------------------------
# Computing a plan: desired (stack) x live (snapshot) [x baseline] -> Plan
# --------------------------------------------------------------------------------------------------------------

# Writes go in this order (creates and updates); deletes go in the reverse order. Accepted domains first because
# inbound connectors may name them (AssociatedAcceptedDomains); inbound before outbound because centralized
# transport (RouteAllMessagesViaOnPremises) needs a tenant-scoped OnPremises inbound connector to exist.
TYPE_ORDER: tuple[str, ...] = ("AcceptedDomain", "InboundConnector", "OutboundConnector")

__all__ += ["TYPE_ORDER", "diff_object", "compute_plan", "desired_state"]


def _is_unset(value: Any) -> bool:
    from . import specs

    unset = getattr(specs, "UNSET", None)
    return unset is not None and value is unset


def diff_object(
    spec: Any,
    desired: Mapping[str, Any],
    live: Any | None,
    *,
    baseline: Mapping[str, Any] | None = None,
) -> tuple[FieldChange, ...]:
    """Per-field changes of the *declared* fields of one object, in spec-table order.

    ``desired`` holds normalised declared values (a stack's ``DesiredObject.fields`` or Pulumi inputs);
    ``live`` is a :class:`~o365_mailflow.snapshot.LiveObject` (or ``None`` for a create, where every
    declared field is a change from ``None``). Values are compared with plain ``==``: normalisation (sets
    sorted, domains lower-cased, ``smtp:x;1`` unwrapped) already happened on both sides. A field the stack
    does not declare is never compared. With ``baseline`` (the declared fields as last merged), a change
    whose desired value equals the baseline value is drift: the tenant moved, not the stack.
    """
    live_fields: Mapping[str, Any] | None = getattr(live, "fields", live) if live is not None else None
    out: list[FieldChange] = []
    for f in spec.fields:
        if f.name not in desired:
            continue
        after = desired[f.name]
        if live_fields is None:
            before = None
        else:
            before = live_fields.get(f.name)
            if before == after:
                continue
        drift = bool(
            live_fields is not None
            and baseline is not None
            and f.name in baseline
            and baseline[f.name] == after
        )
        out.append(
            FieldChange(
                field=f.name,
                param=f.param,
                before=before,
                after=after,
                risky=bool(getattr(f, "risky", False)),
                drift=drift,
                sensitive=bool(getattr(f, "sensitive", False)),
            )
        )
    return tuple(out)


def _located(diags: list[Diagnostic], obj: Any) -> list[Diagnostic]:
    """Give rule diagnostics the stack file and the line of the field they name (else the object's line)."""
    import dataclasses

    out = []
    for d in diags:
        if d.file:
            out.append(d)
            continue
        line = obj.line
        for part in reversed(d.path):
            if isinstance(part, str) and part in obj.field_lines:
                line = obj.field_lines[part]
                break
        out.append(dataclasses.replace(d, file=obj.file, line=line))
    return out


def _created_fields(spec: Any, declared: Mapping[str, Any]) -> dict[str, Any]:
    """What a new object will look like: declared values over the service defaults."""
    from . import specs

    if hasattr(specs, "effective"):
        return dict(specs.effective(spec, declared))
    merged = {f.name: f.default for f in spec.fields if not _is_unset(f.default)}
    merged.update(declared)
    return merged


def desired_state(
    stack: Any, snapshot: Any, plan_changes: Sequence[ResourceChange]
) -> dict[str, list[dict[str, Any]]]:
    """The tenant as it will be after the plan: every kept object's fields (declared over live)."""
    from .specs import SPECS

    deleted = {(c.type_name, (c.identity or c.name).casefold()) for c in plan_changes if c.action is Action.DELETE}
    restored = {(c.type_name, c.name.casefold()): c for c in plan_changes if c.action is Action.RESTORE}
    result: dict[str, list[dict[str, Any]]] = {t: [] for t in TYPE_ORDER}
    for type_name in TYPE_ORDER:
        spec = SPECS[type_name]
        declared = {o.name.casefold(): o for o in stack.of_type(type_name)}
        seen: set[str] = set()
        for live in snapshot.of_type(type_name):
            key = live.name.casefold()
            if (type_name, live.identity.casefold()) in deleted or (type_name, key) in deleted:
                continue
            fields = dict(live.fields)
            if key in declared:
                fields.update(declared[key].fields)
                seen.add(key)
            if (type_name, key) in restored:
                fields.update({c.field: c.after for c in restored[(type_name, key)].changes})
            result[type_name].append(fields)
        for key, obj in declared.items():
            if key not in seen:
                result[type_name].append(_created_fields(spec, obj.fields))
    return result


def compute_plan(stack: Any, snapshot: Any, *, baseline: Any | None = None) -> Plan:
    """Compare a loaded stack with a snapshot of the tenant and decide, per object, what ``apply`` does.

    Raises :class:`~o365_mailflow.errors.PlanError` when the stack names an accepted domain the tenant lacks
    (Exchange Online cannot create one), and :class:`~o365_mailflow.errors.StackError` when any object,
    merged with what the tenant holds, breaks a service rule: in both cases nothing may be written.
    """
    from . import specs as specs_mod
    from .errors import PlanError, Severity, StackError
    from .specs import SPECS

    changes: list[ResourceChange] = []
    unmanaged: list[Unmanaged] = []
    errors: list[Diagnostic] = []
    missing_domains: list[str] = []

    def baseline_fields(type_name: str, name: str) -> Mapping[str, Any] | None:
        if baseline is None:
            return None
        for obj in baseline.of_type(type_name):
            if obj.name.casefold() == name.casefold():
                return dict(obj.fields)
        return None

    for type_name in TYPE_ORDER:
        spec = SPECS[type_name]
        for index, obj in enumerate(stack.of_type(type_name)):
            live = snapshot.find(type_name, obj.name)
            base = baseline_fields(type_name, obj.name)
            if live is None:
                if not spec.creatable:
                    missing_domains.append(f"{obj.file}:{obj.line}: {obj.name}")
                    continue
                field_changes = diff_object(spec, obj.fields, None)
                merged = _created_fields(spec, obj.fields)
                action = Action.CREATE
                reason = "not in the tenant"
                identity = None
            else:
                field_changes = diff_object(spec, obj.fields, live, baseline=base)
                merged = dict(live.fields)
                merged.update(obj.fields)
                identity = live.identity
                newly_managed = (baseline is not None and base is None) or (baseline is None and obj.adopt)
                if newly_managed and (field_changes or baseline is not None):
                    action = Action.ADOPT
                    reason = "exists in the tenant and is not yet managed: the stack takes it over"
                elif field_changes:
                    action = Action.UPDATE
                    reason = (
                        "changed in the tenant outside the stack (drift)"
                        if all(c.drift for c in field_changes)
                        else "the stack declares different values"
                    )
                else:
                    action = Action.NOOP
                    reason = "matches the stack"
            warnings: list[Diagnostic] = []
            if action is not Action.NOOP:
                create_only = [
                    c.field
                    for c in field_changes
                    if live is not None and getattr(getattr(spec.field(c.field), "mode", None), "name", "") == "CREATE_ONLY"
                ]
                for name in create_only:
                    errors.append(
                        Diagnostic(
                            Severity.ERROR,
                            (spec.stack_key, index, name),
                            f"{name} can only be set when the {type_name} is created.",
                            detail=f"Its value in the tenant is {live.fields.get(name)!r}; remove the connector "
                            "(or give it a new name) so that it is created again, or declare the current value.",
                            file=obj.file,
                            line=obj.field_lines.get(name, obj.line),
                        )
                    )
                diags = _located(list(specs_mod.check_rules(spec, merged, (spec.stack_key, index))), obj)
                errors.extend(d for d in diags if d.severity is Severity.ERROR)
                warnings.extend(d for d in diags if d.severity is not Severity.ERROR)
            changes.append(
                ResourceChange(
                    action=action,
                    type_name=type_name,
                    name=obj.name,
                    identity=identity,
                    changes=field_changes,
                    warnings=tuple(warnings),
                    reason=reason,
                )
            )

    if missing_domains:
        raise PlanError(
            "The stack declares accepted domains the tenant does not have: "
            + "; ".join(missing_domains)
            + ". Exchange Online cannot create accepted domains: add the domain and verify it in the "
            "Microsoft 365 admin center (Settings > Domains), then run the plan again."
        )
    if errors:
        raise StackError(errors)

    # Objects in the tenant that the stack does not declare.
    deletes: list[ResourceChange] = []
    for type_name in TYPE_ORDER:
        spec = SPECS[type_name]
        declared = {o.name.casefold() for o in stack.of_type(type_name)}
        extra = sorted(
            (o for o in snapshot.of_type(type_name) if o.name.casefold() not in declared),
            key=lambda o: o.name.casefold(),
        )
        for live in extra:
            if stack.prune and spec.deletable:
                deletes.append(
                    ResourceChange(
                        action=Action.DELETE,
                        type_name=type_name,
                        name=live.name,
                        identity=live.identity,
                        reason="in the tenant, not in the stack, and the stack sets prune: true",
                    )
                )
                continue
            base = baseline_fields(type_name, live.name)
            if stack.prune and not spec.deletable and base is not None:
                restore: list[FieldChange] = []
                for f in spec.fields:
                    if f.name not in base or f.name == spec.identity_field or _is_unset(f.default):
                        continue
                    if live.fields.get(f.name) != f.default:
                        restore.append(
                            FieldChange(f.name, f.param, live.fields.get(f.name), f.default, risky=bool(f.risky))
                        )
                if restore:
                    changes.append(
                        ResourceChange(
                            action=Action.RESTORE,
                            type_name=type_name,
                            name=live.name,
                            identity=live.identity,
                            changes=tuple(restore),
                            reason="left the stack under prune: true; accepted domains are never deleted, "
                            "so their routing fields go back to the service defaults",
                        )
                    )
                    continue
            unmanaged.append(Unmanaged(type_name=type_name, name=live.name, identity=live.identity))
    # Deletes run outbound first, then inbound (the reverse of the creation order).
    deletes.sort(key=lambda c: -TYPE_ORDER.index(c.type_name))
    changes.extend(deletes)

    plan_warnings: list[Diagnostic] = []
    guidance = Guidance()
    try:
        from . import routing
    except ImportError:  # routing lands separately; a plan is still useful without its checks
        routing = None  # type: ignore[assignment]
    if routing is not None and (hasattr(routing, "check_objects") or hasattr(routing, "guidance")):
        state = desired_state(stack, snapshot, changes)
        args = (state["AcceptedDomain"], state["InboundConnector"], state["OutboundConnector"])
        if hasattr(routing, "check_objects"):
            plan_warnings.extend(routing.check_objects(*args))
        if hasattr(routing, "guidance"):
            guidance = routing.guidance(*args)

    return Plan(
        stack=stack.name,
        tenant=stack.tenant.label,
        changes=tuple(changes),
        unmanaged=tuple(unmanaged),
        warnings=tuple(plan_warnings),
        guidance=guidance,
        prune=bool(stack.prune),
    )
