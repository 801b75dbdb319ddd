"""The pull-request preview of a Pulumi deployment, computed by the engine that deploys, with its state.

Why: the comment a reviewer approves must say what ``pulumi up`` will do. ``mailflow plan`` compares the stack
file with the tenant and knows nothing of Pulumi's state, so it could not see a delete of a resource removed
from the file (Pulumi deletes it; ``prune: false`` said "no changes"), and with ``prune: true`` it showed deletes
that Pulumi never performs. Here the *set of actions* comes from ``pulumi preview --json`` (the real engine, the
stack's real state, ``--save-plan`` so that the deploy can run exactly that plan), and each action gets the
field-level detail only we can give: the declared value against what the tenant holds now (one list call per
type), drift (the tenant differs from what the state recorded), risky fields from the spec tables.

The result is an ordinary :class:`~o365_mailflow.plan.Plan`, rendered by the same text, markdown and JSON
renderers as ``mailflow plan``. :func:`signature` reduces a plan to what it would do (actions and written
values), which the deploy compares with the reviewed one before ``pulumi up --plan``.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TypeAlias, TypedDict

from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN  # the SDK's marker for a value not known yet (preview)

from .errors import Diagnostic, MailflowError, Severity
from .plan import Action, FieldChange, Guidance, Plan, ResourceChange, Unmanaged, diff_object
from .snapshot import LiveObject, Snapshot
from .specs import SPECS, ResourceSpec

__all__ = [
    "PulumiError",
    "PulumiRun",
    "Preview",
    "TYPE_PREFIX",
    "run_preview",
    "plan_from_preview",
    "signature",
    "SignatureEntry",
    "Step",
    "ResourceState",
    "Props",
    "compare_signatures",
    "NULLS_KEY",
    "IGNORE_KEY",
    "REPLACE_KEY",
    "OPTION_KEYS",
    "is_unknown",
    "declared_fields",
    "declared_nulls",
    "ignored_fields",
]

TYPE_PREFIX = "pulumi-python:dynamic/exo:"
# Steps of a replacement that the engine also lists on their own; the "replace" step stands for them.
_REPLACE_PARTS = ("create-replacement", "delete-replaced", "discard-replaced")
_ACTIONS = {"create": Action.CREATE, "update": Action.UPDATE, "delete": Action.DELETE, "replace": Action.REPLACE,
            "same": Action.NOOP}


class PulumiError(MailflowError):
    """``pulumi`` could not run or failed; the message carries the engine's own diagnostics."""


@dataclass(frozen=True)
class PulumiRun:
    """Where and how to run the Pulumi CLI for one stack."""

    cwd: Path
    stack: str
    env: Mapping[str, str] | None = None
    binary: str = "pulumi"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
        env["PULUMI_EXPERIMENTAL"] = "true"  # update plans (--save-plan / up --plan) are experimental in 3.x
        cmd = [self.binary, args[0], "--non-interactive", "--stack", self.stack, *args[1:]]
        try:
            result = subprocess.run(cmd, cwd=self.cwd, env=env, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise PulumiError(f"the Pulumi CLI ({self.binary}) is not installed or not on PATH") from exc
        if check and result.returncode != 0:
            raise PulumiError(f"pulumi {args[0]} failed (exit {result.returncode}):\n" + _engine_errors(result))
        return result


def _engine_errors(result: subprocess.CompletedProcess[str]) -> str:
    """The engine's error diagnostics from ``--json`` output, else its stderr/stdout (no parser wording)."""
    try:
        data = json.loads(result.stdout)
        errors = [str(d.get("message", "")).strip() for d in data.get("diagnostics") or []
                  if d.get("severity") == "error"]
        if errors:
            return "\n".join(errors)
    except ValueError:
        pass
    return (result.stderr.strip() or result.stdout.strip())[-4000:]


# A resource's properties as the engine hands them over (inputs or outputs): JSON whose values our Args classes
# declared, but not checked by anyone yet, hence read with ``.get`` and through the spec kinds.
Props: TypeAlias = dict[str, Any]


class ResourceState(TypedDict, total=False):
    """One resource in ``pulumi stack export`` or a preview step's old/new state (the keys read here)."""

    urn: str
    type: str
    id: str
    inputs: Props
    outputs: Props


class Step(TypedDict, total=False):
    """One step of ``pulumi preview --json`` (the keys read here)."""

    op: str
    urn: str
    oldState: ResourceState
    newState: ResourceState


class EngineDiagnostic(TypedDict, total=False):
    severity: str
    message: str


@dataclass(frozen=True)
class Preview:
    """``pulumi preview --json`` of one stack, with the state it was computed against."""

    steps: tuple[Step, ...]
    diagnostics: tuple[EngineDiagnostic, ...]
    state: tuple[ResourceState, ...]  # resources of the stack's state before the preview
    config: Mapping[str, object]  # the stack's config (secrets included: never rendered)
    project: str
    root: str = ""  # the project directory: warnings name files relative to it, as the repository does


def run_preview(run: PulumiRun, *, save_plan: Path | None = None, extra: Sequence[str] = ()) -> Preview:
    """Run ``pulumi preview --json`` (``--save-plan`` when asked) and read the state and the config it used."""
    args = ["preview", "--json", *extra]
    if save_plan is not None:
        args += ["--save-plan", str(save_plan)]
    result = run.run(*args, check=False)
    try:
        data = json.loads(result.stdout)
    except ValueError as exc:
        raise PulumiError("pulumi preview did not print JSON:\n" + _engine_errors(result)) from exc
    if result.returncode != 0:
        raise PulumiError("pulumi preview failed:\n" + _engine_errors(result))
    exported = json.loads(run.run("stack", "export", "--show-secrets").stdout or "{}")
    config = json.loads(run.run("config", "--json", "--show-secrets").stdout or "{}")
    project = ""
    for line in (run.cwd / "Pulumi.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("name:"):
            project = line.split(":", 1)[1].strip().strip("'\"")
    return Preview(
        steps=tuple(data.get("steps") or ()),
        diagnostics=tuple(data.get("diagnostics") or ()),
        state=tuple((exported.get("deployment") or {}).get("resources") or ()),
        config={k: (v.get("value") if isinstance(v, Mapping) else v) for k, v in config.items()},
        project=project,
        root=str(run.cwd.resolve()),
    )


# ------------------------------------------------------------------- the resources' properties (both sides)

# Pulumi drops a property whose value is None, so a declared null (``tlsSettings: null``, opportunistic TLS)
# travels as the name of the field in this list, in inputs and outputs alike.
NULLS_KEY = "declaredNulls"
# Fields the program's ``ignoreChanges`` option names: never compared, never written (see module docstring).
IGNORE_KEY = "ignoreChanges"
# Fields the program's ``replaceOnChanges`` option names: a change replaces the object (see module docstring).
REPLACE_KEY = "replaceOnChanges"
OPTION_KEYS = (IGNORE_KEY, REPLACE_KEY)

def ignored_fields(spec: ResourceSpec, props: Mapping[str, object], key: str = IGNORE_KEY) -> frozenset[str]:
    """The spec fields named by the ``ignoreChanges`` (or ``replaceOnChanges``) input, from the program's options."""
    value = props.get(key)
    if not isinstance(value, (list, tuple)):
        return frozenset()
    return frozenset(str(v) for v in value if spec.has_field(str(v)))


def is_unknown(value: object) -> bool:
    """A value not known yet: the host hands these over as ``pulumi.output.Unknown`` (or the raw marker)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    return False


def declared_fields(spec: ResourceSpec, props: Mapping[str, object]) -> Props:
    """The spec fields present in ``props`` (inputs or outputs), without meta keys, outputs and unknowns."""
    out = {k: v for k, v in props.items() if spec.has_field(k) and not is_unknown(v)}
    out.update({k: None for k in declared_nulls(props) if spec.has_field(k)})
    return out


def declared_nulls(props: Mapping[str, object]) -> list[str]:
    value = props.get(NULLS_KEY)
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []



# ------------------------------------------------------------------------------------------------- planning


def _spec_of(type_token: str) -> ResourceSpec | None:
    if not type_token.startswith(TYPE_PREFIX):
        return None
    return SPECS.get(type_token[len(TYPE_PREFIX):])


def _type_of(step: Step) -> str:
    state = step.get("newState") or step.get("oldState") or {}
    return str(state.get("type") or str(step.get("urn", "")).split("::")[-2])


def _declared(spec: ResourceSpec, props: Props | None) -> Props:
    props = props or {}
    ignored = ignored_fields(spec, props)
    return {k: v for k, v in declared_fields(spec, props).items() if k not in ignored}


def _name(spec: ResourceSpec, state: ResourceState) -> str:
    for props in (state.get("inputs"), state.get("outputs")):
        if props and props.get(spec.identity_field):
            return str(props[spec.identity_field])
    return str(state.get("urn", "")).rsplit("::", 1)[-1]


class _Planner:
    def __init__(self, preview: Preview, snapshot: Snapshot) -> None:
        self.preview = preview
        self.snapshot = snapshot
        self.changes: list[ResourceChange] = []

    def step(self, step: Step) -> None:
        op = str(step.get("op"))
        spec = _spec_of(_type_of(step))
        if spec is None or op in _REPLACE_PARTS or op not in _ACTIONS:
            return
        old = step.get("oldState") or {}
        new = step.get("newState") or {}
        if op == "create":
            self.changes.append(self._create(spec, new))
        elif op == "delete":
            self.changes.append(self._delete(spec, old))
        else:
            self.changes.append(self._existing(spec, _ACTIONS[op], old, new))

    def _create(self, spec: ResourceSpec, new: ResourceState) -> ResourceChange:
        desired = _declared(spec, new.get("inputs"))
        name = _name(spec, new)
        live = self.snapshot.find(spec.type_name, name)
        adopt = bool((new.get("inputs") or {}).get("adopt"))
        if live is None:
            return ResourceChange(Action.CREATE, spec.type_name, name, None, diff_object(spec, desired, None),
                                  reason="not in the tenant")
        changes = diff_object(spec, desired, live)
        if not spec.creatable or adopt:
            return ResourceChange(Action.ADOPT, spec.type_name, name, live.identity, changes,
                                  reason="exists in the tenant: the stack takes it over")
        warning = Diagnostic(
            Severity.ERROR, (spec.stack_key,),
            f"{spec.type_name} '{name}' already exists in the tenant and this stack does not manage it: "
            "`pulumi up` will stop at this resource without changing it.",
            "Set adopt: true on it to take it over, or give it another name (another stack may own it).",
            code="pulumi.exists-not-adopted",
        )
        return ResourceChange(Action.CREATE, spec.type_name, name, live.identity, changes, (warning,),
                              reason="a connector with this name already exists")

    def _delete(self, spec: ResourceSpec, old: ResourceState) -> ResourceChange:
        name = _name(spec, old)
        identity = str(old.get("id") or name)
        live = self.snapshot.find_identity(spec.type_name, identity)
        if spec.deletable:
            reason = ("removed from the stack file: Pulumi deletes what it manages" if live is not None
                      else "removed from the stack file; already gone from the tenant")
            return ResourceChange(Action.DELETE, spec.type_name, name, identity, reason=reason)
        found = dict((old.get("outputs") or {}).get("restoreValues") or {})
        changes = diff_object(spec, {k: v for k, v in found.items() if spec.has_field(k)}, live) if live else ()
        return ResourceChange(Action.RESTORE, spec.type_name, name, identity, changes,
                              reason="removed from the stack file: accepted domains are never deleted, the values "
                              "found before the stack managed it are put back")

    def _existing(self, spec: ResourceSpec, action: Action, old: ResourceState,
                  new: ResourceState) -> ResourceChange:
        identity = str(old.get("id") or "")
        name = _name(spec, new or old)
        desired = _declared(spec, new.get("inputs") or old.get("inputs"))
        recorded = _declared(spec, old.get("outputs"))
        live = self.snapshot.find_identity(spec.type_name, identity) if identity else None
        changes = diff_object(spec, desired, live, baseline=recorded) if live is not None else \
            diff_object(spec, desired, None)
        changes += self._restored(spec, old, desired, live)
        if action is Action.REPLACE:
            reason = self._replace_reason(spec, changes, live)
        elif changes and all(c.drift for c in changes):
            reason = "changed in the tenant outside the stack (drift)"
        elif action is Action.NOOP:
            reason = "matches the stack"
        else:
            reason = "the stack declares different values"
        return ResourceChange(action, spec.type_name, name, identity or None, changes, reason=reason)

    def _restored(self, spec: ResourceSpec, old: ResourceState, desired: Mapping[str, object],
                  live: LiveObject | None) -> tuple[FieldChange, ...]:
        """Accepted domains: a field no longer declared goes back to the value found (restoreValues)."""
        found = (old.get("outputs") or {}).get("restoreValues") or {}
        back = {k: v for k, v in found.items() if k not in desired and spec.has_field(k)}
        return diff_object(spec, back, live) if back and live is not None else ()

    @staticmethod
    def _replace_reason(spec: ResourceSpec, changes: Iterable[FieldChange], live: LiveObject | None) -> str:
        if live is None:
            return "deleted in the tenant outside Pulumi: it is created again"
        forced = [c.field for c in changes if c.field in spec.force_new]
        if forced:
            return f"{', '.join(forced)} can only be set on creation: deleted first, then created (a new Guid)"
        return "replacement requested (replaceOnChanges or --target-replace): deleted first, then created"

    def unmanaged(self) -> list[Unmanaged]:
        """Objects in the tenant that this stack's state does not hold: Pulumi never touches them."""
        managed = {(str(r.get("type", "")), str(r.get("id", "")).casefold()) for r in self.preview.state}
        managed |= {(TYPE_PREFIX + c.type_name, (c.identity or "").casefold()) for c in self.changes}
        out = []
        for spec in SPECS.values():
            for obj in self.snapshot.of_type(spec.type_name):
                if (TYPE_PREFIX + spec.type_name, obj.identity.casefold()) not in managed:
                    out.append(Unmanaged(spec.type_name, obj.name, obj.identity))
        return out

    def unchanged(self) -> list[ResourceChange]:
        """State resources the preview does not list: the engine found nothing to do."""
        stepped = {str(s.get("urn")) for s in self.preview.steps}
        # A rename through an alias steps on the new URN; the state still holds the old one, the same object.
        stepped |= {str((s.get("oldState") or {}).get("urn")) for s in self.preview.steps}
        out = []
        for res in self.preview.state:
            spec = _spec_of(str(res.get("type", "")))
            if spec is None or str(res.get("urn")) in stepped:
                continue
            out.append(ResourceChange(Action.NOOP, spec.type_name, _name(spec, res), str(res.get("id") or "") or None,
                                      reason="matches the stack"))
        return out


def _warnings(preview: Preview) -> tuple[Diagnostic, ...]:
    """The program's warnings (routing checks), as the engine printed them."""
    out = []
    for diag in preview.diagnostics:
        if diag.get("severity") != "warning":
            continue
        text = str(diag.get("message", "")).strip()
        text = text.removeprefix("warning:").strip()
        if preview.root:
            # The program names the stack file by its absolute path; a reviewer knows it as stacks/<stack>.yaml.
            text = text.replace(preview.root.rstrip(os.sep) + os.sep, "")
        out.append(Diagnostic(Severity.WARNING, (), text, code="pulumi.warning"))
    return tuple(out)


def plan_from_preview(preview: Preview, snapshot: Snapshot, *, stack: str, tenant: str,
                      guidance: Guidance | None = None) -> Plan:
    """The engine's steps with our field-level detail, as a :class:`Plan` (``engine="pulumi"``)."""
    planner = _Planner(preview, snapshot)
    for step in preview.steps:
        planner.step(step)
    order = {name: i for i, name in enumerate(SPECS)}
    changes = sorted(planner.changes + planner.unchanged(), key=lambda c: (order.get(c.type_name, 99), c.name.lower()))
    return Plan(stack=stack, tenant=tenant, changes=tuple(changes), unmanaged=tuple(planner.unmanaged()),
                warnings=_warnings(preview), guidance=guidance or Guidance(), prune=False, engine="pulumi")


# --------------------------------------------------------------------------------------------- comparison


# What one changed object would do: action, type, identity (or the name of a create), and the values it writes
# as (field, JSON of the new value) pairs, sorted.
SignatureEntry: TypeAlias = tuple[str, str, str, list[tuple[str, str]]]


def _json_objects(value: object) -> list[Mapping[str, object]]:
    """The JSON objects of a list in a plan document; anything else in it (a hand-edited file) is skipped."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def signature(plan_dict: Mapping[str, object]) -> list[SignatureEntry]:
    """What a plan would do: per changed object its action, type, identity and the values it writes.

    Works on ``Plan.to_dict()`` output, so that a reviewed JSON plan (an artifact of the pull request) and a
    fresh one compare the same way. ``before`` values are left out on purpose: they are what the tenant holds,
    and only a change in what would be *done* matters; drift shows up as a new or different update anyway.
    """
    out: list[SignatureEntry] = []
    for change in _json_objects(plan_dict.get("changes")):
        action = str(change.get("action"))
        if action == Action.NOOP.value:
            continue
        writes = sorted((str(c.get("field")), json.dumps(c.get("after"), sort_keys=True))
                        for c in _json_objects(change.get("changes")))
        ident = str(change.get("identity") or change.get("name") or "").casefold()
        out.append((action, str(change.get("type")), ident if action != "create" else
                    str(change.get("name", "")).casefold(), writes))
    return sorted(out)


def compare_signatures(reviewed: Mapping[str, object], fresh: Mapping[str, object]) -> list[str]:
    """Human-readable differences between the reviewed plan and the one the deploy would run (empty: same)."""
    before = {json.dumps(s): s for s in signature(reviewed)}
    after = {json.dumps(s): s for s in signature(fresh)}
    lines = []
    for key in sorted(before.keys() - after.keys()):
        action, type_name, ident, writes = before[key]
        lines.append(f"reviewed but no longer planned: {action} {type_name} {ident} {_fields(writes)}")
    for key in sorted(after.keys() - before.keys()):
        action, type_name, ident, writes = after[key]
        lines.append(f"planned now but never reviewed: {action} {type_name} {ident} {_fields(writes)}")
    return lines


def _fields(writes: Sequence[Sequence[str]]) -> str:
    return "(" + ", ".join(f"{f}={v}" for f, v in writes) + ")" if writes else ""
