"""Execute a plan against the tenant: minimal writes, in dependency order, each one read back.

Why it is careful rather than clever: Exchange Online has no transactions, so a failure half-way must leave a
tenant that the *next* plan can finish. Every step therefore writes only what the plan says (Set-* carries
only the changed fields), reads the object back with a bounded retry (the service is eventually consistent),
and on the first failure the run stops and reports what was done and what was not. A re-run plans again
from a fresh snapshot and converges. The one thing kept between runs is what an accepted domain held before
its first change (``FoundValues``), because it cannot be read back from the tenant afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from .errors import AlreadyExists, ExoError, MailflowError, NotFound
from .plan import TYPE_ORDER, Action, Plan, ResourceChange, diff_object
from .snapshot import FoundValues, LiveObject, live_object
from .specs import Mode, split_create, to_parameters

__all__ = ["ApplyReport", "StepResult", "Progress", "apply_plan", "ordered_steps", "ReadBackError"]

# Read-back after a write: the pause before each retry (seconds), about 12 s in all. The service's replication lag
# is seconds to minutes (exo-admin-api.md §3.5, [LIVE]); past this budget apply stops and says so, and a re-run
# plans from what the tenant then shows. How long real lag lasts is not well known: easy to change here.
READ_BACK_DELAYS: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 6.0)


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


def _warnings(result: Any) -> list[str]:
    return [str(w) for w in (getattr(result, "warnings", None) or [])]


class _Runner:
    def __init__(
        self,
        client: _Client,
        stack: Any,
        progress: Progress | None,
        sleep: Callable[[float], None],
        found: FoundValues | None,
    ) -> None:
        self.client = client
        self.stack = stack
        self.progress = progress
        self.sleep = sleep
        self.found = found
        self.report = ApplyReport()
        self._step_warnings: list[str] = []
        self._index: dict[tuple[str, str], Any] | None = None

    def _warn(self, result: Any) -> None:
        self._step_warnings.extend(_warnings(result))

    def _desired(self, change: ResourceChange) -> Any:
        if self._index is None:
            self._index = {(o.spec.type_name, o.name.casefold()): o for o in self.stack.objects}
        obj = self._index.get((change.type_name, change.name.casefold()))
        if obj is not None:
            return obj
        raise MailflowError(f"{change.type_name} '{change.name}' is not in the stack any more")

    def _attempts(self) -> Iterator[None]:
        """The read-back schedule shared by every wait: one attempt now, one after each of READ_BACK_DELAYS."""
        for delay in (0.0, *READ_BACK_DELAYS):
            if delay:
                self.sleep(delay)
            yield

    def _get(self, spec: Any, identity: str) -> LiveObject:
        return live_object(spec, self.client.get(spec.noun, identity))

    def _read_back(self, spec: Any, identity: str, expected: Mapping[str, Any]) -> LiveObject:
        """Get the object until the expected values show (bounded); raise ReadBackError otherwise.

        Exchange Online is eventually consistent: a Get right after a New can answer 404 and a Get right after
        a Set can show the old values for a while, so neither is an error until the retry budget is spent.
        """
        last: LiveObject | None = None
        for _ in self._attempts():
            try:
                last = self._get(spec, identity)
            except NotFound:
                last = None
                continue
            if not diff_object(spec, expected, last):
                return last
        if last is None:
            raise ReadBackError(
                f"the tenant accepted the write but {spec.type_name} '{identity}' could not be read back after "
                f"{len(READ_BACK_DELAYS) + 1} attempts; run plan again to see the current state"
            )
        fields = ", ".join(c.field for c in diff_object(spec, expected, last))
        raise ReadBackError(
            f"the tenant accepted the write but still shows other values for {fields} after "
            f"{len(READ_BACK_DELAYS) + 1} reads; run plan again to see the current state"
        )

    def _set(self, spec: Any, identity: str, values: Mapping[str, Any]) -> int:
        if not values:
            return 0
        self._warn(self.client.set(spec.noun, identity, to_parameters(spec, values, create=False)))
        return 1

    def _create(self, change: ResourceChange, spec: Any) -> StepResult:
        obj = self._desired(change)
        new_params, followup = split_create(spec, obj.fields)
        try:
            self._warn(self.client.new(spec.noun, new_params))
        except AlreadyExists:
            # A connector with this name appeared since the snapshot (for instance a New whose answer was lost
            # but which went through): converge it to the declared values instead of failing or duplicating.
            current = self._read_back_existing(spec, change.name)
            settable = {k: v for k, v in obj.fields.items() if spec.field(k).mode not in (Mode.READ_ONLY, Mode.CREATE_ONLY)}
            writes = self._set(spec, current.identity, {c.field: c.after for c in diff_object(spec, settable, current)})
            live = self._read_back(spec, current.identity, obj.fields)
            return StepResult(change, f"already existed, converged ({live.identity})", writes)
        writes = 1
        identity = change.name
        if followup:
            # Set-only fields (e.g. ValidationRecipients) need the object to exist first.
            current = self._read_back_existing(spec, change.name)
            identity = current.identity
            self._warn(self.client.set(spec.noun, identity, followup))
            writes += 1
        live = self._read_back(spec, identity, obj.fields)
        return StepResult(change, f"done ({live.identity})", writes)

    def _read_back_existing(self, spec: Any, identity: str) -> LiveObject:
        """The object as it is now, waiting out the 404 that can follow a create."""
        for _ in self._attempts():
            try:
                return self._get(spec, identity)
            except NotFound:
                continue
        raise ReadBackError(f"{spec.type_name} '{identity}' exists according to the tenant but cannot be read")

    def _update(self, change: ResourceChange, spec: Any) -> StepResult:
        """UPDATE, ADOPT and RESTORE: one Set-* carrying only the changed fields, then a read-back."""
        values = {c.field: c.after for c in change.changes}
        if not values:
            return StepResult(change, "done (nothing to write)", 0)
        identity = change.identity or change.name
        if self.found is not None and not spec.deletable and change.action is not Action.RESTORE:
            # Keep what the tenant held before the first change, so a prune can put it back (accepted domains).
            self.found.record(change.type_name, change.name, {c.field: c.before for c in change.changes})
        writes = self._set(spec, identity, values)
        self._read_back(spec, identity, values)
        if self.found is not None and change.action is Action.RESTORE:
            self.found.forget(change.type_name, change.name)
        return StepResult(change, f"done ({', '.join(values)})", writes)

    def _delete(self, change: ResourceChange, spec: Any) -> StepResult:
        identity = change.identity or change.name
        try:
            self._warn(self.client.remove(spec.noun, identity))
        except NotFound:
            return StepResult(change, "already gone", 0)
        for _ in self._attempts():
            try:
                self.client.get(spec.noun, identity)
            except NotFound:
                return StepResult(change, "done", 1)
        raise ReadBackError(f"the tenant accepted Remove-{spec.noun} but '{change.name}' can still be read")

    def run(self, steps: Sequence[ResourceChange]) -> ApplyReport:
        from .specs import SPECS

        for index, change in enumerate(steps):
            spec = SPECS[change.type_name]
            self._step_warnings = []
            if self.progress:
                self.progress.begin(change)
            try:
                if change.action is Action.CREATE:
                    step = self._create(change, spec)
                elif change.action is Action.DELETE:
                    step = self._delete(change, spec)
                else:
                    step = self._update(change, spec)
            except (ExoError, MailflowError, ValueError) as exc:
                self.report.failed = (change, exc)
                self.report.not_done = list(steps[index + 1 :])
                if self.progress:
                    self.progress.fail(change, exc)
                self._flush_warnings(change)
                return self.report
            self.report.done.append(step)
            if self.progress:
                self.progress.end(change, step.outcome)
            self._flush_warnings(change)
        return self.report

    def _flush_warnings(self, change: ResourceChange) -> None:
        for text in self._step_warnings:
            self.report.warnings.append(f"{change.type_name} '{change.name}': {text}")
            if self.progress:
                self.progress.warning(change, text)
        self._step_warnings = []


def apply_plan(
    plan: Plan,
    stack: Any,
    snapshot: Any,
    client: _Client,
    *,
    progress: Progress | None = None,
    found: FoundValues | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ApplyReport:
    """Run every non-no-op change of ``plan``; stop at the first failure (see :class:`ApplyReport`).

    ``found`` records what accepted domains held before their first change (and forgets it once restored).
    """
    del snapshot  # the plan already carries live identities; kept in the signature for the contract
    return _Runner(client, stack, progress, sleep, found).run(ordered_steps(plan))
