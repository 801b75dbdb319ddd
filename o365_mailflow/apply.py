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

Each write, and the lag policy of the verification, is the reconcile core's (``reconcile.py``), shared with the
Pulumi providers; this module keeps what is the CLI's own: order, concurrency, progress, Ctrl-C, the found-values
file and verifying all writes at once at the end.

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
from typing import Callable, Protocol, Sequence

from . import reconcile
from .errors import ExoError, MailflowError
from .plan import Action, Plan, ResourceChange
from .reconcile import VERIFY_BUDGET, LagPolicy, ReadBackError, Written
from .snapshot import FoundValues
from .specs import SPECS, is_late, write_order, write_phases
from .stack import DesiredObject, Stack
from .tenant import DEFAULT_PARALLELISM, MAX_PARALLELISM

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

# The stack file is the CLI's declaration of ownership: it asks to adopt an object only with ``adopt: true``.
HOW_TO_ADOPT = ("Add `adopt: true` to it in the stack file to take it over (its declared fields will be set), or "
                "give the declared one another name; then run plan again.")


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
    outcome: str  # "done (guid)", "already existed, adopted (guid)", "already gone"...
    written: Written | None = None  # what the reconcile core did; None: nothing to write
    seconds: float = 0.0

    @property
    def writes(self) -> int:
        return self.written.writes if self.written is not None else 0

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.written.warnings if self.written is not None else ()


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


class _Writer:
    """One write step: the reconcile core's operation for one change. Runs on a worker thread; shares nothing
    mutable but the FoundValues file (locked)."""

    def __init__(self, runner: _Runner, change: ResourceChange) -> None:
        self.runner = runner
        self.change = change
        self.spec = SPECS[change.type_name]

    def run(self) -> StepResult:
        started = time.monotonic()
        step = self._run()
        return StepResult(step.change, step.outcome, step.written, time.monotonic() - started)

    def _run(self) -> StepResult:
        change, client = self.change, self.runner.client
        if change.action is Action.CREATE:
            obj = self.runner.desired(change)
            written = reconcile.create(client, self.spec, obj.fields, existing=None, adopt=obj.adopt,
                                       how_to_adopt=HOW_TO_ADOPT, lag=self.runner.lag)
            how = "already existed, adopted" if written.adopted else "done"
            return StepResult(change, f"{how} ({written.identity})", written)
        identity = change.identity or change.name
        if change.action is Action.DELETE:
            written = reconcile.delete(client, self.spec, identity, name=change.name)
            return StepResult(change, "done" if written.writes else "already gone", written)
        # UPDATE, ADOPT (a rename is an update of the same Guid) and RESTORE: one Set-* with the plan's changes.
        if not change.changes:
            return StepResult(change, "done (nothing to write)")
        self._record_found()
        written = reconcile.update(client, self.spec, identity, change.changes, name=change.name)
        if change.action is Action.RESTORE:
            self.runner.forget_found(change)
        return StepResult(change, f"done ({', '.join(c.field for c in change.changes)})", written)

    def _record_found(self) -> None:
        """Keep what the tenant held before the first change, so a prune can put it back (accepted domains)."""
        found, change = self.runner.found, self.change
        if found is None or self.spec.deletable or change.action is Action.RESTORE:
            return
        with self.runner.found_lock:
            found.record(change.type_name, change.name, {c.field: c.before for c in change.changes})


class _Runner:
    def __init__(
        self,
        client: reconcile.Client,
        stack: Stack,
        progress: Progress | None,
        lag: LagPolicy,
        found: FoundValues | None,
        parallelism: int,
        stop: StopSignal | None,
    ) -> None:
        self.client = client
        self.progress = progress
        self.lag = lag
        self.found = found
        self.found_lock = threading.Lock()
        self.parallelism = max(1, min(int(parallelism), MAX_PARALLELISM))
        self.stop = stop or StopSignal()
        self.report = ApplyReport()
        self._index: dict[tuple[str, str], DesiredObject] = {
            (o.spec.type_name, o.name.casefold()): o for o in stack.objects}

    def desired(self, change: ResourceChange) -> DesiredObject:
        obj = self._index.get((change.type_name, change.name.casefold()))
        if obj is not None:
            return obj
        raise MailflowError(f"{change.type_name} '{change.name}' is not in the stack any more")

    def forget_found(self, change: ResourceChange) -> None:
        if self.found is not None:
            with self.found_lock:
                self.found.forget(change.type_name, change.name)

    # ------------------------------------------------------------------ the writes

    def run(self, groups: Sequence[Sequence[ResourceChange]]) -> ApplyReport:
        total = sum(len(g) for g in groups)
        results: _Results = queue.Queue()
        finished = 0
        for position, group in enumerate(groups):
            if self.stop.is_set() or self.report.failed is not None:
                self.report.not_done.extend(c for g in groups[position:] for c in g)
                break
            finished = self._run_group(group, results, finished, total)
        if self.stop.is_set():
            self.report.stopped = True
        return self.report

    def _run_group(self, group: Sequence[ResourceChange], results: _Results, finished: int, total: int) -> int:
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

    def _next_result(self, results: _Results) -> _Result:
        while True:
            try:
                return results.get(timeout=0.2)  # a timeout keeps the main thread responsive to signals
            except queue.Empty:
                continue

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.report.failed is not None

    def _work(self, change: ResourceChange, results: _Results) -> None:
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
        """Check every write with one listing per type (the core re-reads only what lags, within the budget)."""
        steps = [s for s in self.report.done if s.written is not None and s.written.writes]
        if not steps:
            return
        self._say(f"Verifying {len(steps)} write(s) with one listing per type...")
        written = [s.written for s in steps if s.written is not None]
        check = reconcile.verify(self.client, written, self.lag, list_first=True, say=self._say)
        by_write = {id(s.written): s for s in steps}
        self.report.unverified = [(by_write[id(w)], why) for w, why in check.unverified]
        self.report.verify_seconds = check.seconds
        if not self.report.unverified:
            self._say(f"Verified: the tenant shows all {len(steps)} write(s).")

    def _say(self, text: str) -> None:
        if self.progress:
            self.progress.verifying(text)


# What a worker thread hands to the main thread: the change, and its step or the error it raised.
_Result = tuple[ResourceChange, StepResult | None, BaseException | None]
_Results = queue.Queue[_Result]


def apply_plan(
    plan: Plan,
    stack: Stack,
    client: reconcile.Client,
    *,
    progress: Progress | None = None,
    found: FoundValues | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    parallelism: int = DEFAULT_PARALLELISM,
    verify_budget: float | None = None,
    stop: StopSignal | None = None,
) -> ApplyReport:
    """Run every non-no-op change of ``plan`` (see :func:`phases`), then verify (see :class:`ApplyReport`).

    At most ``parallelism`` writes are in flight. The first failure, or ``stop`` being set, starts no new write;
    the writes in flight finish. ``found`` records what accepted domains held before their first change (and
    forgets it once restored). ``sleep`` and ``clock`` drive the lag policy's waits (a fake clock in tests);
    ``verify_budget`` defaults to the core's (``MAILFLOW_VERIFY_BUDGET``, else 5 minutes).
    """
    lag = LagPolicy.from_env(budget=verify_budget, sleep=sleep, clock=clock)
    runner = _Runner(client, stack, progress, lag, found, parallelism, stop)
    report = runner.run(phases(plan))
    if not report.stopped:
        runner.verify()
    return report
