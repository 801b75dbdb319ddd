"""Execute a plan against the tenant: minimal writes, in dependency order, each one read back.

Why it is careful rather than clever: Exchange Online has no transactions, so a failure half-way must leave a
tenant that the *next* plan can finish. Every step therefore writes only what the plan says (Set-* carries
only the changed fields), reads the object back with a bounded retry (the service is eventually consistent),
and on the first failure the run stops and reports what was done and what was not. A re-run plans again
from a fresh snapshot and converges; nothing here keeps state between runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from .errors import AlreadyExists, ExoError, MailflowError, NotFound
from .plan import TYPE_ORDER, Action, Plan, ResourceChange, diff_object
from .snapshot import LiveObject, live_object

__all__ = ["ApplyReport", "StepResult", "Progress", "apply_plan", "ordered_steps", "ReadBackError"]

# Read-back after a write: attempts and the pause before each retry (seconds). About 6 s in the worst case;
# the client's own get(retry_not_found=True) covers a just-created object that is not yet visible.
READ_BACK_DELAYS: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.5, 3.0)


class ReadBackError(MailflowError):
    """The write was accepted but the tenant did not show the new values within the retry budget."""


class Progress(Protocol):
    def begin(self, change: ResourceChange) -> None: ...
    def end(self, change: ResourceChange, outcome: str) -> None: ...
    def fail(self, change: ResourceChange, error: Exception) -> None: ...
    def warning(self, change: ResourceChange, text: str) -> None: ...


@dataclass(frozen=True)
class StepResult:
    change: ResourceChange
    outcome: str  # "done (guid)", "already existed, matched"...
    writes: int = 0


@dataclass
class ApplyReport:
    done: list[StepResult] = field(default_factory=list)
    failed: tuple[ResourceChange, Exception] | None = None
    not_done: list[ResourceChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # service warnings, e.g. an InternalRelay domain no connector routes

    @property
    def ok(self) -> bool:
        return self.failed is None

    @property
    def writes(self) -> int:
        return sum(s.writes for s in self.done)


def ordered_steps(plan: Plan) -> list[ResourceChange]:
    """Creates/updates/adopts/restores by type (accepted domains, inbound, outbound), then deletes in reverse."""
    writes = [c for c in plan.changes if c.action not in (Action.NOOP, Action.DELETE)]
    writes.sort(key=lambda c: TYPE_ORDER.index(c.type_name))  # stable: keeps the stack's order inside a type
    deletes = [c for c in plan.changes if c.action is Action.DELETE]
    deletes.sort(key=lambda c: -TYPE_ORDER.index(c.type_name))
    return writes + deletes


class _Client(Protocol):
    def get(self, noun: str, identity: str, *, retry_not_found: bool = False) -> dict[str, Any]: ...
    def new(self, noun: str, parameters: Mapping[str, Any]) -> Any: ...
    def set(self, noun: str, identity: str, parameters: Mapping[str, Any]) -> Any: ...
    def remove(self, noun: str, identity: str) -> Any: ...


def _split_create(spec: Any, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fields New-* accepts, and set-only fields (ValidationRecipients...) that need a follow-up Set-*."""
    from . import specs

    if hasattr(specs, "split_create"):
        first, second = specs.split_create(spec, values)
        return dict(first), dict(second)
    create: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for name, value in values.items():
        mode = getattr(getattr(spec.field(name), "mode", None), "name", "")
        (later if mode == "SET_ONLY" else create)[name] = value
    return create, later


def _params(spec: Any, values: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    from .specs import to_parameters

    return dict(to_parameters(spec, values, create=create))


def _warnings(result: Any) -> list[str]:
    return [str(w) for w in (getattr(result, "warnings", None) or [])]


class _Runner:
    def __init__(self, client: _Client, stack: Any, progress: Progress | None, sleep: Callable[[float], None]):
        self.client = client
        self.stack = stack
        self.progress = progress
        self.sleep = sleep
        self.report = ApplyReport()

    def _warn(self, change: ResourceChange, texts: Sequence[str]) -> None:
        for text in texts:
            self.report.warnings.append(f"{change.type_name} '{change.name}': {text}")
            if self.progress:
                self.progress.warning(change, text)

    def _desired(self, change: ResourceChange) -> Any:
        for obj in self.stack.of_type(change.type_name):
            if obj.name.casefold() == change.name.casefold():
                return obj
        return None

    def _read_back(self, spec: Any, identity: str, expected: Mapping[str, Any]) -> LiveObject:
        """Get the object until the expected declared values show (bounded); raise ReadBackError otherwise."""
        last: LiveObject | None = None
        for delay in (0.0, *READ_BACK_DELAYS):
            if delay:
                self.sleep(delay)
            try:
                last = live_object(spec, self.client.get(spec.noun, identity, retry_not_found=True))
            except NotFound:
                last = None
                continue
            if not diff_object(spec, expected, last):
                return last
        if last is None:
            raise ReadBackError(f"the tenant accepted the write but {spec.type_name} '{identity}' cannot be read back")
        fields = ", ".join(c.field for c in diff_object(spec, expected, last))
        raise ReadBackError(
            f"the tenant accepted the write but still shows other values for {fields} after "
            f"{len(READ_BACK_DELAYS) + 1} reads; run plan again to see the current state"
        )

    def _create(self, change: ResourceChange, spec: Any) -> StepResult:
        obj = self._desired(change)
        if obj is None:
            raise MailflowError(f"{change.type_name} '{change.name}' is not in the stack any more")
        create_values, later = _split_create(spec, obj.fields)
        writes = 0
        recovered = False
        try:
            result = self.client.new(spec.noun, _params(spec, create_values, create=True))
            writes += 1
            self._warn(change, _warnings(result))
        except AlreadyExists:
            # A connector with this name appeared since the snapshot (e.g. a retried New whose first attempt
            # went through): treat it as ours and converge it to the declared values instead of failing.
            recovered = True
            later = dict(obj.fields)
        identity = change.name
        if later:
            current = live_object(spec, self.client.get(spec.noun, identity, retry_not_found=True))
            identity = current.identity
            todo = {c.field: c.after for c in diff_object(spec, later, current)}
            if todo:
                result = self.client.set(spec.noun, identity, _params(spec, todo, create=False))
                writes += 1
                self._warn(change, _warnings(result))
        live = self._read_back(spec, identity, obj.fields)
        prefix = "already existed, converged" if recovered else "done"
        return StepResult(change, f"{prefix} ({live.identity})", writes)

    def _update(self, change: ResourceChange, spec: Any) -> StepResult:
        values = {c.field: c.after for c in change.changes}
        identity = change.identity or change.name
        if not values:
            return StepResult(change, "done (no field to change)", 0)
        result = self.client.set(spec.noun, identity, _params(spec, values, create=False))
        self._warn(change, _warnings(result))
        self._read_back(spec, identity, values)
        fields = ", ".join(values)
        return StepResult(change, f"done ({fields})", 1)

    def _delete(self, change: ResourceChange, spec: Any) -> StepResult:
        identity = change.identity or change.name
        try:
            result = self.client.remove(spec.noun, identity)
            self._warn(change, _warnings(result))
        except NotFound:
            return StepResult(change, "already gone", 0)
        for delay in (0.0, *READ_BACK_DELAYS):
            if delay:
                self.sleep(delay)
            try:
                self.client.get(spec.noun, identity)
            except NotFound:
                return StepResult(change, "done", 1)
        raise ReadBackError(f"the tenant accepted Remove-{spec.noun} but '{change.name}' can still be read")

    def run(self, steps: Sequence[ResourceChange]) -> ApplyReport:
        from .specs import SPECS

        for index, change in enumerate(steps):
            spec = SPECS[change.type_name]
            if self.progress:
                self.progress.begin(change)
            try:
                if change.action is Action.CREATE:
                    step = self._create(change, spec)
                elif change.action is Action.DELETE:
                    step = self._delete(change, spec)
                else:  # UPDATE, ADOPT, RESTORE: a Set-* of the changed fields only
                    step = self._update(change, spec)
            except (ExoError, MailflowError) as exc:
                self.report.failed = (change, exc)
                self.report.not_done = list(steps[index + 1 :])
                if self.progress:
                    self.progress.fail(change, exc)
                return self.report
            self.report.done.append(step)
            if self.progress:
                self.progress.end(change, step.outcome)
        return self.report


def apply_plan(
    plan: Plan,
    stack: Any,
    snapshot: Any,
    client: _Client,
    *,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ApplyReport:
    """Run every non-no-op change of ``plan``; stop at the first failure (see :class:`ApplyReport`)."""
    del snapshot  # the plan already carries live identities; kept in the signature for the contract
    return _Runner(client, stack, progress, sleep).run(ordered_steps(plan))
