"""Plans as data: what would change in a tenant, field by field.

The text, JSON and markdown renderers, the ``apply`` executor and the Pulumi ``DiffResult`` all read one
immutable :class:`Plan`. Computing it (``compute_plan``) lives below the data model in this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping, Sequence

from .errors import Diagnostic, PlanError, Severity, StackError
from .routing import Guidance, review_effective
from .shapes import FieldChangeJson, FieldMap, Fields, PlanJson, ResourceChangeJson, UnmanagedJson, Value
from .snapshot import LiveObject, Snapshot
from .specs import SPECS, ResourceSpec, check_rules, effective, name_key, spec_for_stack_key, write_order
from .stack import DesiredObject, Stack

__all__ = [
    "Action",
    "FieldChange",
    "ResourceChange",
    "Unmanaged",
    "Guidance",  # defined in routing, which makes it; re-exported as part of the plan data
    "Plan",
]


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ADOPT = "adopt"  # take over an existing object (and update its declared fields if they differ)
    RESTORE = "restore"  # accepted domain left the stack under prune: put back the values found
    REPLACE = "replace"  # Pulumi only: deleted first, then created again (a new Guid)
    NOOP = "no-op"


@dataclass(frozen=True)
class FieldChange:
    """One field a change sets: its value in the tenant before and in the stack after."""

    field: str  # camelCase stack name, e.g. "smartHosts"
    param: str  # Exchange parameter, e.g. "SmartHosts"
    before: Value  # normalised live value (None when absent / on create)
    after: Value  # normalised desired value (None on delete)
    risky: bool = False  # from the spec table: SmartHosts, SenderIPAddresses, TlsSettings, ...
    drift: bool = False  # the tenant differs from the baseline stack while the stack did not change this field

    def to_dict(self) -> FieldChangeJson:
        return {
            "field": self.field,
            "param": self.param,
            "before": self.before,
            "after": self.after,
            "risky": self.risky,
            "drift": self.drift,
        }


@dataclass(frozen=True)
class ResourceChange:
    """What the plan does to one object (create, update, delete, ... or nothing) and why."""

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

    def to_dict(self) -> ResourceChangeJson:
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

    def to_dict(self) -> UnmanagedJson:
        return {"type": self.type_name, "name": self.name, "identity": self.identity}


PLAN_SCHEMA_VERSION = 2  # 2: the optional "impact" section (render.json)


@dataclass(frozen=True)
class Plan:
    """Everything apply would do to the tenant for one stack, as data every renderer reads."""

    stack: str
    tenant: str  # human label of the tenant
    changes: tuple[ResourceChange, ...]  # one per declared object (including no-ops), plus deletes/restores
    unmanaged: tuple[Unmanaged, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()  # stack-wide warnings (routing checks, service warnings)
    guidance: Guidance = field(default_factory=Guidance)
    prune: bool = False
    # Who decided the actions: "mailflow" (stack file x tenant, `mailflow plan`) or "pulumi" (`pulumi preview`
    # with the stack's state, see pulumi_plan.py). Their delete rules differ: prune vs Pulumi's state.
    engine: str = "mailflow"

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

    def to_dict(self) -> PlanJson:
        """The documented JSON plan (docs/plan-schema.json); bump PLAN_SCHEMA_VERSION on breaking changes."""
        return {
            "schemaVersion": PLAN_SCHEMA_VERSION,
            "stack": self.stack,
            "tenant": self.tenant,
            "prune": self.prune,
            "engine": self.engine,
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

# What an accepted domain looked like before this tool first changed it, kept by ``apply`` (see
# ``snapshot.FoundValues``): type name -> casefolded domain -> field -> value. Accepted domains cannot be deleted,
# so when one leaves a stack that sets ``prune: true`` the plan puts these values back.
Found = Mapping[str, Mapping[str, FieldMap]]

__all__ += ["Found", "diff_object", "compute_plan", "desired_state", "changed_fields", "live_of"]


def live_of(snapshot: Snapshot, obj: DesiredObject) -> tuple[LiveObject | None, bool]:
    """The live object a declared one stands for, and whether that is a rename (``renamedFrom``).

    By name first: once the new name exists, ``renamedFrom`` is ignored, so leaving it in the stack file after
    the rename is harmless. Otherwise the connector still called by its old name is the one to rename (an update
    of the same Guid, never a create plus a delete).
    """
    type_name = obj.spec.type_name
    live = snapshot.find_key(type_name, obj.key)
    old = getattr(obj, "renamed_from", None)
    if live is not None or not old:
        return live, False
    previous = snapshot.find(type_name, old)
    return previous, previous is not None


def changed_fields(before: FieldMap, after: FieldMap) -> set[str]:
    """The top-level keys whose values differ, lists compared as sets.

    The thin layer over deepdiff: both sides are normalised already (so plain equality settles the common
    no-change case without deepdiff's cost), and ``ignore_order`` keeps the comparison order- and
    duplicate-blind even for values that did not go through the spec normalisers (Pulumi inputs).
    """
    if before == after:
        return set()
    from deepdiff import DeepDiff  # late: heavy (about 0.1 s to import); most comparisons settle above

    diff = DeepDiff(dict(before), dict(after), ignore_order=True, report_repetition=False)
    return {str(key) for key in diff.affected_root_keys}


def diff_object(
    spec: ResourceSpec,
    desired: FieldMap,
    live: LiveObject | FieldMap | None,
    *,
    baseline: FieldMap | None = None,
) -> tuple[FieldChange, ...]:
    """Per-field changes of the *declared* fields of one object, in spec-table order.

    ``desired`` holds normalised declared values (a stack's ``DesiredObject.fields`` or Pulumi inputs); keys
    that are not fields of ``spec`` (meta keys such as ``adopt``) are ignored. ``live`` is a
    :class:`~o365_mailflow.snapshot.LiveObject` or a mapping of normalised live fields, or ``None`` for a
    create, where every declared field is a change from ``None``. A field the stack does not declare is never
    compared. With ``baseline`` (the declared fields as last merged), a change whose desired value equals the
    baseline value is drift: the tenant moved, not the stack.
    """
    live_fields: FieldMap | None = None
    if live is not None:
        live_fields = live.fields if hasattr(live, "fields") else live
        # Most declared objects match the tenant: then no field changes, whatever the spec-table order.
        fields = spec.by_name
        if all(live_fields.get(k) == v for k, v in desired.items() if k in fields):
            return ()
    declared = [f for f in spec.fields if f.name in desired]
    if live_fields is None:
        changed = {f.name for f in declared}
    else:
        changed = changed_fields(
            {f.name: live_fields.get(f.name) for f in declared}, {f.name: desired[f.name] for f in declared}
        )
    out: list[FieldChange] = []
    for f in declared:
        if f.name not in changed:
            continue
        after = desired[f.name]
        drift = bool(
            live_fields is not None
            and baseline is not None
            and f.name in baseline
            and not changed_fields({f.name: baseline[f.name]}, {f.name: after})
        )
        out.append(
            FieldChange(
                field=f.name,
                param=f.param,
                before=None if live_fields is None else live_fields.get(f.name),
                after=after,
                risky=bool(getattr(f, "risky", False)),
                drift=drift,
            )
        )
    return tuple(out)


def _located(diags: Sequence[Diagnostic], obj: DesiredObject) -> list[Diagnostic]:
    """Give diagnostics the stack file and the line of the field they name (else the object's line)."""
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


def desired_state(stack: Stack, snapshot: Snapshot, plan_changes: Sequence[ResourceChange]) -> dict[str, list[Fields]]:
    """The tenant as it will be after the plan: every kept object's fields (declared over live, both over the
    service defaults as :func:`~o365_mailflow.specs.effective` puts them), by type. Read only: an object the
    plan leaves alone shares its dict with the snapshot's :attr:`~o365_mailflow.snapshot.LiveObject.effective`.

    This is what the routing checks look at: the stack alone does not say what undeclared fields and
    unmanaged connectors will be, the tenant does. Declared objects come first, in stack order, so that a
    check's index into a list is the object's index in the stack file; the tenant's other objects follow.
    """
    deleted = {(c.type_name, (c.identity or c.name).casefold()) for c in plan_changes if c.action is Action.DELETE}
    restored = {(c.type_name, name_key(c.name)): c for c in plan_changes if c.action is Action.RESTORE}
    result: dict[str, list[Fields]] = {}
    for spec in write_order():
        type_name = spec.type_name
        objects: list[Fields] = []
        declared: set[str] = set()
        for obj in stack.of_type(type_name):
            declared.add(obj.key)
            live, renamed = live_of(snapshot, obj)
            if renamed and live is not None:  # live_of finds the old name only when it says renamed
                declared.add(live.key)  # the old name becomes this object: do not count it twice
            if live is not None:
                # A live object holds every field, so this is effective() of the declared fields over it.
                objects.append({**live.effective, **obj.fields})
            elif spec.creatable:
                objects.append(effective(spec, obj.fields))
        for live in snapshot.of_type(type_name):
            key = live.key
            if key in declared or (type_name, live.identity.casefold()) in deleted:
                continue
            fields = live.effective
            if (type_name, key) in restored:
                fields = {**fields, **{c.field: c.after for c in restored[(type_name, key)].changes}}
            objects.append(fields)
        result[type_name] = objects
    return result


@dataclass
class _Planner:
    """The state of one compute_plan call: collects changes and every error before raising any."""

    stack: Stack
    snapshot: Snapshot
    baseline: Stack | None
    found: Found
    changes: list[ResourceChange] = field(default_factory=list)
    unmanaged: list[Unmanaged] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    missing_domains: list[str] = field(default_factory=list)
    notes: list[Diagnostic] = field(default_factory=list)  # plan-wide warnings of the planner itself
    renamed: set[tuple[str, str]] = field(default_factory=set)  # (type, casefolded Guid) taken over by a rename
    collisions: list[str] = field(default_factory=list)  # renamedFrom where the tenant has both names

    _baseline_index: dict[tuple[str, str], FieldMap] | None = None

    def baseline_fields(self, type_name: str, name: str) -> FieldMap | None:
        if self.baseline is None:
            return None
        if self._baseline_index is None:
            self._baseline_index = {
                (obj.spec.type_name, obj.key): dict(obj.fields) for obj in self.baseline.objects
            }
        return self._baseline_index.get((type_name, name_key(name)))

    def error(self, obj: DesiredObject, path: tuple[str | int, ...], summary: str, detail: str = "",
              code: str = "") -> None:
        self.errors.extend(_located([Diagnostic(Severity.ERROR, path, summary, detail, code=code)], obj))

    # -- declared objects -------------------------------------------------------------------------------------

    def declared(self, spec: ResourceSpec, index: int, obj: DesiredObject) -> None:
        live, renamed = live_of(self.snapshot, obj)
        base = self.baseline_fields(spec.type_name, obj.name)
        path: tuple[str | int, ...] = (spec.stack_key, index)
        old = getattr(obj, "renamed_from", None)
        previous = self.snapshot.find(spec.type_name, old) if old and not renamed and live is not None else None
        if previous is not None and live is not None:  # live is set whenever previous is (see above)
            self.collisions.append(self._collision(spec, index, obj, live, previous))
            return
        if renamed and live is not None and old:
            # The stack as last merged knows the object by its old name (the rename is the change under review).
            self.renamed.add((spec.type_name, live.identity.casefold()))
            if base is None:
                base = self.baseline_fields(spec.type_name, old)
        if live is None:
            self._create(spec, path, obj, base)
        else:
            self._existing(spec, path, obj, live, base, renamed_from=live.name if renamed else None)

    def _collision(self, spec: ResourceSpec, index: int, obj: DesiredObject, new: LiveObject, old: LiveObject) -> str:
        """renamedFrom with both names in the tenant: renaming would need a name that is taken (no guessing)."""
        return (
            f"{obj.file}:{obj.field_lines.get('renamedFrom', obj.line)}: {spec.stack_key}[{index}].renamedFrom: "
            f"'{obj.name}' says renamedFrom '{old.name}', but the tenant has both {spec.type_name} "
            f"'{old.name}' ({old.identity}) and '{new.name}' ({new.identity}), so renaming one to the other is "
            f"impossible. Remove the one that must go (Remove-{spec.noun} '{old.name}' or '{new.name}' in Exchange Online PowerShell, once no mail "
            f"depends on it), or delete renamedFrom to manage '{new.name}' as it is and leave '{old.name}' "
            f"unmanaged."
        )

    def _create(self, spec: ResourceSpec, path: tuple[str | int, ...], obj: DesiredObject,
                base: FieldMap | None) -> None:
        if not spec.creatable:
            self.missing_domains.append(f"{obj.name} ({obj.file}:{obj.line})")
            return
        missing = [f.name for f in spec.fields if f.required_on_create and f.name not in obj.fields]
        if missing:
            # adopt: true lets a stack leave out what New-* requires; with nothing to adopt that cannot work.
            old = getattr(obj, "renamed_from", None)
            also = f" (nor '{old}', its renamedFrom)" if old else ""
            self.error(
                obj, path + (missing[0],),
                f"adopt: true, but the tenant has no {spec.type_name} '{obj.name}'{also} to adopt.",
                f"Check the name, or declare {', '.join(missing)} so that it can be created.",
                code="plan.adopt-missing",
            )
            return
        reason = "not in the tenant"
        if base is not None:
            reason = "deleted in the tenant outside the stack (drift): apply creates it again"
        self._rules(spec, path, obj, effective(spec, obj.fields))
        self.changes.append(
            ResourceChange(Action.CREATE, spec.type_name, obj.name, None, diff_object(spec, obj.fields, None),
                           reason=reason)
        )

    def _existing(
        self, spec: ResourceSpec, path: tuple[str | int, ...], obj: DesiredObject, live: LiveObject,
        base: FieldMap | None,
        renamed_from: str | None = None,
    ) -> None:
        field_changes = diff_object(spec, obj.fields, live, baseline=base)
        newly_declared = self.baseline is not None and base is None
        if newly_declared:
            # The change under review adds this object and the tenant already has one by that name: taking it
            # over must be explicit (DESIGN: adoption if the stack says so, or the object already matches).
            if spec.creatable and not obj.adopt and field_changes:
                self.error(
                    obj, path + (spec.identity_field,),
                    f"{spec.type_name} '{live.name}' already exists in the tenant and this stack does not manage it yet.",
                    "Set adopt: true on this object to take it over (its declared fields will be set), or "
                    "choose another name.",
                    code="plan.exists-not-adopted",
                )
                return
            action, reason = Action.ADOPT, "exists in the tenant and is not yet managed: the stack takes it over"
        elif renamed_from is not None:
            action = Action.UPDATE
            reason = f"renamed from '{renamed_from}' (renamedFrom): the same connector, its Guid is kept"
        elif obj.adopt and field_changes:
            action, reason = Action.ADOPT, "exists in the tenant (adopt: true): the stack takes it over"
        elif field_changes:
            action = Action.UPDATE
            reason = (
                "changed in the tenant outside the stack (drift)"
                if all(c.drift for c in field_changes)
                else "the stack declares different values"
            )
        else:
            action, reason = Action.NOOP, "matches the stack"
        warnings: list[Diagnostic] = []
        if action is not Action.NOOP:
            for change in field_changes:
                if change.field in spec.force_new:
                    self.error(
                        obj, path + (change.field,),
                        f"{change.field} can only be set when the {spec.type_name} is created.",
                        f"The tenant holds {change.before!r}: declare that value, or give the object a new name "
                        "so that it is created again.",
                        code="plan.create-only",
                    )
            warnings = self._rules(spec, path, obj, {**live.fields, **obj.fields})
        self.changes.append(
            ResourceChange(action, spec.type_name, obj.name, live.identity, field_changes, tuple(warnings), reason)
        )

    def _rules(self, spec: ResourceSpec, path: tuple[str | int, ...], obj: DesiredObject,
               merged: FieldMap) -> list[Diagnostic]:
        """Cross-field rules on the object as it will be; errors are kept, warnings returned."""
        diags = _located(check_rules(spec, merged, path, declared=tuple(obj.fields)), obj)
        self.errors.extend(d for d in diags if d.severity is Severity.ERROR)
        return [d for d in diags if d.severity is not Severity.ERROR]

    # -- objects the stack does not declare -------------------------------------------------------------------

    def undeclared(self, spec: ResourceSpec) -> list[ResourceChange]:
        declared = {o.key for o in self.stack.of_type(spec.type_name)}
        deletes: list[ResourceChange] = []
        extra = sorted(
            (o for o in self.snapshot.of_type(spec.type_name)
             if o.key not in declared and (spec.type_name, o.identity.casefold()) not in self.renamed),
            key=lambda o: o.key,
        )
        for live in extra:
            if self.stack.prune and spec.deletable:
                deletes.append(
                    ResourceChange(Action.DELETE, spec.type_name, live.name, live.identity,
                                   reason="in the tenant, not in the stack, and the stack sets prune: true")
                )
            elif self.stack.prune and (restore := self._restore(spec, live)) is not None:
                self.changes.append(restore)
            else:
                self.unmanaged.append(Unmanaged(spec.type_name, live.name, live.identity))
                if self.stack.prune and not spec.deletable and self._left_without_record(spec, live):
                    self.notes.append(self._unknown_found_values(spec, live))
        return deletes

    def _left_without_record(self, spec: ResourceSpec, live: LiveObject) -> bool:
        """The baseline managed it, and no values found before that are known (e.g. a fresh CI runner)."""
        return (self.baseline_fields(spec.type_name, live.name) is not None
                and not self.found.get(spec.type_name, {}).get(live.key))

    def _unknown_found_values(self, spec: ResourceSpec, live: LiveObject) -> Diagnostic:
        return Diagnostic(
            Severity.WARNING, (spec.stack_key,),
            f"{spec.type_name} '{live.name}' left the stack, but the values it had before the stack managed it "
            "are not recorded here, so it is left as it is.",
            "Accepted domains are never deleted; apply records the values it finds (under .mailflow/found) on the "
            "machine that runs it. Set the domain's fields in the Microsoft 365 admin center if they must change.",
            code="plan.found-values-unknown",
        )

    def _restore(self, spec: ResourceSpec, live: LiveObject) -> ResourceChange | None:
        """Put back the values found before this tool first changed the object (accepted domains)."""
        record = self.found.get(spec.type_name, {}).get(live.key)
        if not record:
            return None  # never changed by this tool: nothing to restore, it stays as it is
        known = {name: value for name, value in record.items() if spec.has_field(name)}
        changes = diff_object(spec, known, live)
        if not changes:
            return None
        return ResourceChange(
            Action.RESTORE, spec.type_name, live.name, live.identity, changes,
            reason="left the stack under prune: true; accepted domains are never deleted, so the values found "
            "before the stack managed it are put back",
        )


def compute_plan(stack: Stack, snapshot: Snapshot, *, baseline: Stack | None = None,
                 found: Found | None = None) -> Plan:
    """Compare a loaded stack with a snapshot of the tenant and decide, per object, what ``apply`` does.

    ``baseline`` (a Stack: the stack file as last merged) turns on drift and adoption reporting; ``found``
    (see :data:`Found`) lets a pruning stack restore accepted domains it no longer declares.

    Raises :class:`~o365_mailflow.errors.PlanError` when the stack names an accepted domain the tenant lacks
    (Exchange Online cannot create one), and :class:`~o365_mailflow.errors.StackError` with every problem
    when any object, merged with what the tenant holds, breaks a service rule: in both cases nothing may be
    written.
    """
    planner = _Planner(stack, snapshot, baseline, found or {})
    for spec in write_order():  # the specs' write order; deletes go in the reverse order
        for index, obj in enumerate(stack.of_type(spec.type_name)):
            planner.declared(spec, index, obj)
    if planner.collisions:
        raise PlanError(
            "A renamed connector's old and new names both exist in the tenant: "
            + " ".join(planner.collisions) + " Nothing was changed."
        )
    if planner.missing_domains:
        raise PlanError(
            "The stack declares accepted domains the tenant does not have: "
            + "; ".join(planner.missing_domains)
            + ". Exchange Online cannot create accepted domains: add each domain and verify it in the "
            "Microsoft 365 admin center (Settings > Domains), then run the plan again. Nothing was changed."
        )
    if planner.errors:
        raise StackError(planner.errors)

    deletes: list[ResourceChange] = []
    order = [spec.type_name for spec in write_order()]
    for type_name in order:
        deletes.extend(planner.undeclared(SPECS[type_name]))
    deletes.sort(key=lambda c: -order.index(c.type_name))  # outbound first: the reverse of creation
    changes = planner.changes + deletes

    warnings, guidance = _routing(stack, snapshot, changes)
    return Plan(
        stack=stack.name,
        tenant=stack.tenant.label,
        changes=tuple(changes),
        unmanaged=tuple(planner.unmanaged),
        warnings=tuple(planner.notes) + tuple(warnings),
        guidance=guidance,
        prune=bool(stack.prune),
    )


def _routing(stack: Stack, snapshot: Snapshot, changes: Sequence[ResourceChange]) -> tuple[list[Diagnostic], Guidance]:
    """Routing warnings and guidance on the tenant as the plan leaves it."""
    state = desired_state(stack, snapshot, changes)
    args = (state["AcceptedDomain"], state["InboundConnector"], state["OutboundConnector"])
    cloud = getattr(stack.tenant, "cloud", None) or "commercial"
    diags, guidance = review_effective(*args, cloud=cloud)
    by_type: dict[str, tuple[DesiredObject, ...]] = {}  # each type's objects listed once, not once per warning
    return [_locate_in_stack(stack, d, by_type) for d in diags], guidance


def _locate_in_stack(stack: Stack, diag: Diagnostic, by_type: dict[str, tuple[DesiredObject, ...]]) -> Diagnostic:
    """Point a routing warning about a declared object at its file and line (desired_state lists them first)."""
    if diag.file or len(diag.path) < 2 or not isinstance(diag.path[0], str) or not isinstance(diag.path[1], int):
        return diag
    spec = spec_for_stack_key(diag.path[0])
    if spec is not None and spec.type_name not in by_type:
        by_type[spec.type_name] = stack.of_type(spec.type_name)
    objects = by_type[spec.type_name] if spec is not None else ()
    if not 0 <= diag.path[1] < len(objects):
        return diag
    return _located([diag], objects[diag.path[1]])[0]
