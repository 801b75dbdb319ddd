"""Execute a plan against the tenant: minimal writes, a few at a time in dependency order, verified at the end.

Why it is shaped this way: Exchange Online has no transactions and replicates for seconds to minutes after a
write (exo-admin-api.md §3.5). So every step writes only what the plan says (Set-* carries only the changed
fields) and trusts the answer: a write whose answer came back is done, and the run goes on with the rest of
the plan while new objects replicate. All writes are then verified together with one listing per type (the
same reads a plan makes), falling back to per-object reads only for the few objects not yet visible, within
a budget that matches the service (minutes). On the first failed write no new write starts; the writes
already in flight finish, and the report says what was done, what failed and what was not started. A re-run
plans again from a fresh snapshot and converges. The one thing kept between runs is what an accepted domain
held before its first change (``FoundValues``), because it cannot be read back from the tenant afterwards.

Concurrency: Exchange Online limits concurrent requests per tenant and answers the excess with "You have
reached the maximum number of concurrent requests per tenant" (exo-admin-api.md §5, retried by the client).
No number is published for the admin API (§5: "No published request-rate number exists"); Exchange Online
PowerShell has long allowed 3 concurrent sessions per admin (Microsoft365DSC issue #135, "there can only be 3
connections made"). :data:`DEFAULT_PARALLELISM` stays at that, well under any tenant-wide limit.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from .errors import AlreadyExists, ExoError, MailflowError, NotFound
from .plan import Action, Plan, ResourceChange, diff_object
from .snapshot import FoundValues, LiveObject, live_object
from .specs import SPECS, Mode, is_late, split_create, to_parameters, write_order, write_phases

__all__ = [
    "ApplyReport",
    "StepResult",
    "Progress",
    "apply_plan",
    "ordered_steps",
    "phases",
    "ReadBackError",
    "StopSignal",
    "DEFAULT_PARALLELISM",
    "MAX_PARALLELISM",
    "VERIFY_BUDGET",
]

# Writes in flight at once (see the module docstring for the source); ``--parallelism`` changes it.
DEFAULT_PARALLELISM = 3
# requests keeps 10 connections per host: more writes in flight would each open (and drop) a TLS connection, and
# the tenant's concurrency limit answers the excess with a retry anyway.
MAX_PARALLELISM = 10
# How long the final verification waits for writes to show (seconds), and the pauses between its rounds. Lag
# is seconds to minutes (§3.5, [LIVE]); what is still not visible after this is reported, not failed.
VERIFY_BUDGET = 300.0
VERIFY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# Objects still lagging per type at or under which a round reads them one by one instead of listing the type.
PER_OBJECT_READS = 5


class ReadBackError(MailflowError):
    """An object this apply needs to read (to converge it or to finish creating it) could not be read in time."""


class StopSignal:
    """Set by the caller (the CLI's first Ctrl-C) to start no new write; writes in flight finish."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class Progress(Protocol):
    def started(self, change: ResourceChange) -> None: ...
    def finished(self, step: StepResult, number: int, total: int) -> None: ...
    def failed(self, change: ResourceChange, error: Exception, number: int, total: int) -> None: ...
    def warning(self, change: ResourceChange, text: str) -> None: ...
    def verifying(self, text: str) -> None: ...


@dataclass(frozen=True)
class StepResult:
    change: ResourceChange
    outcome: str  # "done (guid)", "already existed, converged (guid)", "already gone"...
    writes: int = 0
    seconds: float = 0.0
    identity: str | None = None  # where the object is now (Guid of a new connector), for the verification
    expected: Mapping[str, Any] | None = None  # values the tenant should show; None: nothing to verify
    warnings: tuple[str, ...] = ()


@dataclass
class ApplyReport:
    done: list[StepResult] = field(default_factory=list)
    failed: tuple[ResourceChange, Exception] | None = None  # the first failure
    failures: list[tuple[ResourceChange, Exception]] = field(default_factory=list)  # every failure, first first
    not_done: list[ResourceChange] = field(default_factory=list)  # never started
    stopped: bool = False  # a StopSignal ended the run early (Ctrl-C)
    # service warnings, e.g. an InternalRelay domain no connector routes
    warnings: list[str] = field(default_factory=list)
    unverified: list[tuple[StepResult, str]] = field(default_factory=list)  # done, but not yet shown by the tenant
    verify_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed is None

    @property
    def writes(self) -> int:
        return sum(s.writes for s in self.done)


def _late(change: ResourceChange) -> bool:
    """A change that makes its object wait for a type written after its own (the spec's late dependencies: an
    accepted domain made InternalRelay waits for the outbound connectors that route its mail)."""
    return is_late(SPECS[change.type_name], {c.field: c.after for c in change.changes})


def phases(plan: Plan) -> list[list[ResourceChange]]:
    """The plan's writes in groups that run one after the other; the writes inside a group are independent.

    Creates, updates, adoptions and restores by type in the specs' write order (accepted domains, inbound,
    outbound; an accepted domain that becomes InternalRelay after the outbound connectors), then deletes in the
    reverse type order. Inside a group the stack's order is kept.
    """
    writes = [c for c in plan.changes if c.action not in (Action.NOOP, Action.DELETE)]
    deletes = [c for c in plan.changes if c.action is Action.DELETE]
    groups: list[list[ResourceChange]] = []
    for phase in write_phases():
        groups.append([c for c in writes if c.type_name == phase.spec.type_name and _late(c) is phase.late])
    for spec in reversed(write_order()):
        groups.append([c for c in deletes if c.type_name == spec.type_name])
    return [g for g in groups if g]


def ordered_steps(plan: Plan) -> list[ResourceChange]:
    """Every write of the plan in the order they are started (see :func:`phases`)."""
    return [change for group in phases(plan) for change in group]


class _Client(Protocol):
    def list(self, noun: str) -> list[dict[str, Any]]: ...
    def get(self, noun: str, identity: str, *, retry_not_found: bool = False) -> dict[str, Any]: ...
    def new(self, noun: str, parameters: Mapping[str, Any]) -> Any: ...
    def set(self, noun: str, identity: str, parameters: Mapping[str, Any]) -> Any: ...
    def remove(self, noun: str, identity: str) -> Any: ...


def _warnings(result: Any) -> list[str]:
    return [str(w) for w in (getattr(result, "warnings", None) or [])]


def _spec(type_name: str) -> Any:
    return SPECS[type_name]


class _Writer:
    """One write step: the cmdlet calls for one change. Runs on a worker thread; shares nothing mutable but
    the FoundValues file (locked)."""

    def __init__(self, runner: _Runner, change: ResourceChange) -> None:
        self.runner = runner
        self.client = runner.client
        self.change = change
        self.spec = _spec(change.type_name)
        self.warnings: list[str] = []

    def _warn(self, result: Any) -> Any:
        self.warnings.extend(_warnings(result))
        return result

    def run(self) -> StepResult:
        started = time.monotonic()
        if self.change.action is Action.CREATE:
            step = self._create()
        elif self.change.action is Action.DELETE:
            step = self._delete()
        else:
            step = self._update()
        return StepResult(step.change, step.outcome, step.writes, time.monotonic() - started, step.identity,
                          step.expected, tuple(self.warnings))

    def _set(self, identity: str, values: Mapping[str, Any]) -> int:
        if not values:
            return 0
        self._warn(self.client.set(self.spec.noun, identity, to_parameters(self.spec, values, create=False)))
        return 1

    def _create(self) -> StepResult:
        spec, change = self.spec, self.change
        obj = self.runner.desired(change)
        new_params, followup = split_create(spec, obj.fields)
        try:
            result = self._warn(self.client.new(spec.noun, new_params))
        except AlreadyExists:
            # A connector with this name appeared since the snapshot (for instance a New whose answer was lost
            # but which went through): converge it to the declared values instead of failing or duplicating.
            current = self.runner.read_existing(spec, change.name)
            settable = {k: v for k, v in obj.fields.items()
                        if spec.field(k).mode not in (Mode.READ_ONLY, Mode.CREATE_ONLY)}
            writes = self._set(current.identity, {c.field: c.after for c in diff_object(spec, settable, current)})
            return StepResult(change, f"already existed, converged ({current.identity})", writes,
                              identity=current.identity, expected=obj.fields)
        # The object New-* answered with carries the Guid: no read is needed to know where it is.
        values = getattr(result, "values", None) or []
        identity = live_object(spec, values[0]).identity if values else change.name
        writes = 1
        if followup:
            # Set-only fields (e.g. ValidationRecipients) need the object, which may not have replicated yet.
            self.runner.retry_lag(lambda: self._warn(self.client.set(spec.noun, identity, followup)),
                                  f"{spec.type_name} '{change.name}'")
            writes += 1
        return StepResult(change, f"done ({identity})", writes, identity=identity, expected=obj.fields)

    def _update(self) -> StepResult:
        """UPDATE, ADOPT and RESTORE: one Set-* carrying only the changed fields."""
        spec, change, found = self.spec, self.change, self.runner.found
        values = {c.field: c.after for c in change.changes}
        if not values:
            return StepResult(change, "done (nothing to write)", 0)
        identity = change.identity or change.name
        if found is not None and not spec.deletable and change.action is not Action.RESTORE:
            # Keep what the tenant held before the first change, so a prune can put it back (accepted domains).
            with self.runner.found_lock:
                found.record(change.type_name, change.name, {c.field: c.before for c in change.changes})
        writes = self._set(identity, values)
        if found is not None and change.action is Action.RESTORE:
            with self.runner.found_lock:
                found.forget(change.type_name, change.name)
        return StepResult(change, f"done ({', '.join(values)})", writes, identity=identity, expected=values)

    def _delete(self) -> StepResult:
        identity = self.change.identity or self.change.name
        try:
            self._warn(self.client.remove(self.spec.noun, identity))
        except NotFound:
            return StepResult(self.change, "already gone", 0)
        return StepResult(self.change, "done", 1, identity=identity, expected=None)


class _Runner:
    def __init__(
        self,
        client: _Client,
        stack: Any,
        progress: Progress | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        found: FoundValues | None,
        parallelism: int,
        verify_budget: float,
        stop: StopSignal | None,
    ) -> None:
        self.client = client
        self.stack = stack
        self.progress = progress
        self.sleep = sleep
        self.clock = clock
        self.found = found
        self.found_lock = threading.Lock()
        self.parallelism = max(1, min(int(parallelism), MAX_PARALLELISM))
        self.verify_budget = verify_budget
        self.stop = stop or StopSignal()
        self.report = ApplyReport()
        self._index: dict[tuple[str, str], Any] = {
            (o.spec.type_name, o.name.casefold()): o for o in getattr(stack, "objects", ())}

    # ------------------------------------------------------------------ helpers for the writers

    def desired(self, change: ResourceChange) -> Any:
        obj = self._index.get((change.type_name, change.name.casefold()))
        if obj is not None:
            return obj
        raise MailflowError(f"{change.type_name} '{change.name}' is not in the stack any more")

    def _lag_waits(self) -> list[float]:
        """Pauses before each retry of a read that meets replication lag, within the verification budget."""
        waits, total, i = [], 0.0, 0
        while total < self.verify_budget:
            delay = VERIFY_DELAYS[min(i, len(VERIFY_DELAYS) - 1)]
            waits.append(delay)
            total += delay
            i += 1
        return waits

    def retry_lag(self, call: Callable[[], Any], what: str) -> Any:
        """``call()``, retried while it answers NotFound because a new object has not replicated yet."""
        for delay in (*self._lag_waits(), None):
            try:
                return call()
            except NotFound:
                if delay is None:
                    break
                self.sleep(delay)
        raise ReadBackError(f"{what} was created but could still not be found after {self.verify_budget:g} s; "
                            "run plan again to see the current state")

    def read_existing(self, spec: Any, identity: str) -> LiveObject:
        """The object as it is now, waiting out the 404 that can follow a create."""
        return self.retry_lag(lambda: live_object(spec, self.client.get(spec.noun, identity)),
                              f"{spec.type_name} '{identity}'")

    # ------------------------------------------------------------------ the writes

    def run(self, groups: Sequence[Sequence[ResourceChange]]) -> ApplyReport:
        total = sum(len(g) for g in groups)
        results: queue.Queue[tuple[ResourceChange, StepResult | None, BaseException | None]] = queue.Queue()
        finished = 0
        for position, group in enumerate(groups):
            if self.stop.is_set() or self.report.failed is not None:
                self.report.not_done.extend(c for g in groups[position:] for c in g)
                break
            finished = self._run_group(group, results, finished, total)
        if self.stop.is_set():
            self.report.stopped = True
        return self.report

    def _run_group(self, group: Sequence[ResourceChange], results: queue.Queue[Any], finished: int,
                   total: int) -> int:
        pending = list(group)
        in_flight = 0
        while pending or in_flight:
            while pending and in_flight < self.parallelism and not self._stopping():
                change = pending.pop(0)
                in_flight += 1
                if self.progress:
                    self.progress.started(change)
                # Daemon threads: a second Ctrl-C ends the process at once, without waiting for them.
                threading.Thread(target=self._work, args=(change, results), daemon=True,
                                 name=f"mailflow-write-{finished + in_flight}").start()
            if self._stopping() and pending:
                self.report.not_done.extend(pending)
                pending = []
            if not in_flight:
                break
            change, step, error = self._next_result(results)
            in_flight -= 1
            finished += 1
            self._record(change, step, error, finished, total)
        return finished

    def _next_result(self, results: queue.Queue[Any]) -> Any:
        while True:
            try:
                return results.get(timeout=0.2)  # a timeout keeps the main thread responsive to signals
            except queue.Empty:
                continue

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.report.failed is not None

    def _work(self, change: ResourceChange, results: queue.Queue[Any]) -> None:
        try:
            results.put((change, _Writer(self, change).run(), None))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which decides
            results.put((change, None, exc))

    def _record(self, change: ResourceChange, step: StepResult | None, error: BaseException | None,
                number: int, total: int) -> None:
        if error is not None:
            if not isinstance(error, (ExoError, MailflowError, ValueError)):
                raise error  # a bug or a local error: the CLI reports it as such
            self.report.failures.append((change, error))
            if self.report.failed is None:
                self.report.failed = (change, error)
            if self.progress:
                self.progress.failed(change, error, number, total)
            return
        assert step is not None
        self.report.done.append(step)
        if self.progress:
            self.progress.finished(step, number, total)
        for text in step.warnings:
            self.report.warnings.append(f"{change.type_name} '{change.name}': {text}")
            if self.progress:
                self.progress.warning(change, text)

    # ------------------------------------------------------------------ the verification

    def verify(self) -> None:
        """Check every write against one listing per type; re-read only what lags, within the budget."""
        started = self.clock()
        pending: dict[str, list[StepResult]] = {}
        for step in self.report.done:
            if step.writes and step.identity:
                pending.setdefault(step.change.type_name, []).append(step)
        if not pending:
            return
        count = sum(len(v) for v in pending.values())
        self._say(f"Verifying {count} write(s) with one listing per type...")
        waits = iter(self._lag_waits())
        first = True
        while pending:
            for type_name in list(pending):
                still = self._verify_type(type_name, pending[type_name], listing=first or len(
                    pending[type_name]) > PER_OBJECT_READS)
                if still:
                    pending[type_name] = still
                else:
                    del pending[type_name]
            first = False
            if not pending:
                break
            elapsed = self.clock() - started
            delay = next(waits, None)
            if delay is None or elapsed + delay > self.verify_budget:
                break
            lagging = sum(len(v) for v in pending.values())
            names = ", ".join(f"'{s.change.name}'" for v in pending.values() for s in v[:3])
            self._say(f"{lagging} write(s) not yet visible ({names}{', ...' if lagging > 3 else ''}): replication "
                      f"lag; checking again in {delay:g} s ({elapsed:.0f} s of {self.verify_budget:g} s)")
            self.sleep(delay)
        for steps in pending.values():
            for step in steps:
                self.report.unverified.append((step, self._why_unverified(step)))
        self.report.verify_seconds = self.clock() - started
        if not self.report.unverified:
            self._say(f"Verified: the tenant shows all {count} write(s).")

    def _why_unverified(self, step: StepResult) -> str:
        if step.expected is None:
            return f"still listed {self.verify_budget:g} s after Remove-*"
        return f"not yet showing the new values {self.verify_budget:g} s after the write"

    def _say(self, text: str) -> None:
        if self.progress:
            self.progress.verifying(text)

    def _verify_type(self, type_name: str, steps: list[StepResult], *, listing: bool) -> list[StepResult]:
        spec = _spec(type_name)
        try:
            if listing:
                live = [live_object(spec, r) for r in self.client.list(spec.noun)]
                by_key: dict[str, LiveObject] = {}
                for obj in live:
                    by_key.setdefault(obj.identity.casefold(), obj)
                    by_key.setdefault(obj.name.casefold(), obj)
                found = {id(s): by_key.get(str(s.identity).casefold()) for s in steps}
            else:
                found = {id(s): self._get_or_none(spec, str(s.identity)) for s in steps}
        except ExoError as exc:
            self._say(f"could not read {type_name} objects to verify ({exc}); trying again")
            return steps
        return [s for s in steps if not self._shows(spec, s, found[id(s)])]

    def _get_or_none(self, spec: Any, identity: str) -> LiveObject | None:
        try:
            return live_object(spec, self.client.get(spec.noun, identity))
        except NotFound:
            return None

    @staticmethod
    def _shows(spec: Any, step: StepResult, live: LiveObject | None) -> bool:
        if step.expected is None:  # a delete: gone is verified
            return live is None
        return live is not None and not diff_object(spec, step.expected, live)


def apply_plan(
    plan: Plan,
    stack: Any,
    snapshot: Any,
    client: _Client,
    *,
    progress: Progress | None = None,
    found: FoundValues | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    parallelism: int = DEFAULT_PARALLELISM,
    verify_budget: float = VERIFY_BUDGET,
    stop: StopSignal | None = None,
) -> ApplyReport:
    """Run every non-no-op change of ``plan`` (see :func:`phases`), then verify (see :class:`ApplyReport`).

    At most ``parallelism`` writes are in flight. The first failure, or ``stop`` being set, starts no new write;
    the writes in flight finish. ``found`` records what accepted domains held before their first change (and
    forgets it once restored). ``sleep`` and ``clock`` drive the verification's waits (a fake clock in tests).
    """
    del snapshot  # the plan already carries live identities; kept in the signature for the contract
    runner = _Runner(client, stack, progress, sleep, clock, found, parallelism, verify_budget, stop)
    report = runner.run(phases(plan))
    if not report.stopped:
        runner.verify()
    return report
