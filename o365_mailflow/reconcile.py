"""The one reconcile core: every write that ``mailflow apply`` and the Pulumi providers make goes through here.

Why one core (DESIGN, "One reconcile core"): the two front ends used to create, adopt, update, rename, restore,
delete and read back each in their own way, with three read-after-write retry policies between them, so a fix
in one never reached the other. Each operation is written once here, with one rule per question:

* Adopt only when asked. A create that finds an object of the declared name (in the caller's listing, or as
  AlreadyExists because it appeared since) takes it over only when the caller says the declaration adopts it,
  and then writes only what differs; otherwise :class:`AdoptionRequired`, and nothing is written.
* Minimal writes. Set-* carries only the fields that differ; a rename is that same Set-* (``-Name`` on the
  Guid, which stays). A field that forces replacement (:attr:`~o365_mailflow.specs.ResourceSpec.force_new`) is
  never sent to Set-*: :class:`ReplacementRequired`. The CLI's plan refuses such a change and Pulumi's diff replaces the
  object, both from the same field list.
* Create is all or nothing. When the follow-up Set-* of a create (the SET_ONLY fields) fails, the new object is
  removed again: a half-made connector would carry mail with settings nobody declared (and Pulumi could not
  even record it).
* One lag policy (:class:`LagPolicy`). Exchange Online replicates for seconds to minutes after a write
  (exo-admin-api.md §3.5). A write whose answer came back is trusted; a NotFound right after a create is waited
  out; verification re-reads what does not show yet, pausing 1, 2, 4, 8, 15, 30, 30... s within one budget
  (5 minutes, ``MAILFLOW_VERIFY_BUDGET`` to change it). What still does not show is reported as not yet
  visible, never as failed or "not done": the write was accepted.

What stays in the front ends: apply orders the writes, runs a few at a time, prints progress, stops on Ctrl-C,
records accepted domains' found values in its state file and verifies all its writes at the end with one
listing per type; the providers answer the engine's check/diff/create/read/update/delete, keep their per-process
listing current, build outputs, and verify each write by itself (a provider call is the only chance it gets).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Protocol, Sequence, TypeVar

from .errors import AlreadyExists, ExoError, MailflowError, NotFound, PlanError
from .plan import FieldChange, diff_object
from .snapshot import LiveObject, live_object
from .specs import ResourceSpec, split_create, to_parameters

__all__ = [
    "Answer",
    "Client",
    "LagPolicy",
    "Written",
    "Verification",
    "AdoptionRequired",
    "ReplacementRequired",
    "ReadBackError",
    "create",
    "update",
    "restore_changes",
    "delete",
    "verify",
    "as_written",
    "replacements",
    "BUDGET_ENV",
    "VERIFY_BUDGET",
    "VERIFY_DELAYS",
    "PER_OBJECT_READS",
]

# How long verification waits for writes to show (seconds), and the pauses between its rounds. Lag is seconds
# to minutes (§3.5, [LIVE]); what is still not visible after this is reported, not failed.
VERIFY_BUDGET = 300.0
VERIFY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# Objects still lagging per type at or under which a round reads them one by one instead of listing the type.
PER_OBJECT_READS = 5
# The budget in seconds, for both front ends (a tenant known to lag longer, or a test that must not wait).
BUDGET_ENV = "MAILFLOW_VERIFY_BUDGET"

T = TypeVar("T")


class Answer(Protocol):
    """What a cmdlet answered (``client.InvokeResult``): the objects it returned and its warnings."""

    @property
    def values(self) -> list[dict[str, Any]]: ...

    @property
    def warnings(self) -> list[str]: ...


class Client(Protocol):
    """The admin-API calls the core makes (``client.ExoClient``)."""

    def list(self, noun: str) -> list[dict[str, Any]]: ...
    def get(self, noun: str, identity: str) -> dict[str, Any]: ...
    def new(self, noun: str, parameters: Mapping[str, Any]) -> Answer: ...
    def set(self, noun: str, identity: str, parameters: Mapping[str, Any]) -> Answer: ...
    def remove(self, noun: str, identity: str) -> Answer: ...


class AdoptionRequired(AlreadyExists):
    """An object with the declared name exists and the declaration does not adopt it: nothing was written."""

    def __init__(self, spec: ResourceSpec, name: str, differs: Sequence[str], how_to_adopt: str) -> None:
        what = f"{spec.what} {name!r}"
        state = f"differs from the declaration ({', '.join(differs)})" if differs else "matches the declaration"
        super().__init__(f"An {what} already exists in the tenant and {state}; it is not managed by this "
                         f"declaration, so it was left alone. {how_to_adopt}".rstrip())
        self.name = name
        self.differs = tuple(differs)


class ReplacementRequired(PlanError):
    """A change of a field the service sets only on New-*: the object must be replaced, Set-* cannot do it."""

    def __init__(self, spec: ResourceSpec, identity: str, fields: Sequence[str]) -> None:
        super().__init__(f"{spec.what} {identity!r}: {', '.join(fields)} can only be set when it is created, so it "
                         "cannot be changed in place; declare the value the tenant holds, or replace the object.")
        self.fields = tuple(fields)


class ReadBackError(MailflowError):
    """An object a write needs (to finish creating it, or to adopt it) could not be read within the budget."""


@dataclass(frozen=True)
class LagPolicy:
    """The one read-after-write policy: pauses and a budget for replication lag (clock and sleep injectable)."""

    budget: float = VERIFY_BUDGET
    delays: tuple[float, ...] = VERIFY_DELAYS
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, budget: float | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
                 ) -> LagPolicy:
        """The default policy; the budget, unless given, from ``MAILFLOW_VERIFY_BUDGET`` when it is set."""
        raw = (os.environ if env is None else env).get(BUDGET_ENV, "").strip()
        if budget is None and raw:
            try:
                budget = max(0.0, float(raw))
            except ValueError:
                raise MailflowError(f"{BUDGET_ENV} is {raw!r}; give a number of seconds, e.g. 300") from None
        return cls(budget=VERIFY_BUDGET if budget is None else budget, sleep=sleep, clock=clock)

    def waits(self) -> list[float]:
        """The pauses before each re-read, adding up to the budget."""
        waits: list[float] = []
        total = 0.0
        while total < self.budget:
            delay = self.delays[min(len(waits), len(self.delays) - 1)]
            waits.append(delay)
            total += delay
        return waits

    def until_found(self, call: Callable[[], T], what: str) -> T:
        """``call()``, again after each pause while it answers NotFound (an object that has not replicated)."""
        for delay in (*self.waits(), None):
            try:
                return call()
            except NotFound:
                if delay is None:
                    break
                self.sleep(delay)
        raise ReadBackError(f"{what} was written but could still not be found after {self.budget:g} s; "
                            "run plan (or pulumi refresh) to see the current state")


@dataclass(frozen=True)
class Written:
    """What one operation did: where the object is now and what the tenant should show once replicated."""

    spec: ResourceSpec
    name: str  # as declared (or as listed, for a delete)
    identity: str  # Guid of a connector, domain name of an accepted domain
    writes: int  # write requests sent (0: nothing differed, or already gone)
    expected: Mapping[str, Any] | None  # values the tenant should show; None: the object should be gone
    warnings: tuple[str, ...] = ()
    adopted: bool = False  # a create that took over an existing object
    answer: LiveObject | None = None  # the object New-* answered with


# --------------------------------------------------------------------------------------------------- writes


def replacements(spec: ResourceSpec, changes: Sequence[FieldChange], also: Sequence[str] = ()) -> list[str]:
    """The changed fields that force replacing the object: the spec's force-new ones, plus ``also``."""
    forced = set(spec.force_new) | set(also)
    return sorted(c.field for c in changes if c.field in forced)


def create(
    client: Client,
    spec: ResourceSpec,
    desired: Mapping[str, Any],
    *,
    existing: LiveObject | None,
    adopt: bool,
    how_to_adopt: str,
    lag: LagPolicy,
) -> Written:
    """Create the declared object, or adopt the one of that name when ``adopt`` (see the module docstring).

    ``existing`` is the object of that name in the caller's listing (None: not listed). A New-* that meets
    AlreadyExists all the same (the object appeared since the listing) is handled like a listed one.
    """
    name = str(desired[spec.identity_field])
    if existing is not None:
        return _adopt(client, spec, desired, existing, adopt=adopt, how_to_adopt=how_to_adopt)
    # A field declared null where the service default is null is what New-* does without it: leave it out, so the
    # create is the same few parameters whichever front end declared it (Pulumi carries declared nulls by name).
    sent = {k: v for k, v in desired.items()
            if v is not None or not spec.has_field(k) or spec.field(k).default is not None}
    new_params, followup = split_create(spec, sent)
    try:
        answer = client.new(spec.noun, new_params)
    except AlreadyExists:
        current = lag.until_found(lambda: live_object(spec, client.get(spec.noun, name)), f"{spec.what} {name!r}")
        return _adopt(client, spec, desired, current, adopt=adopt, how_to_adopt=how_to_adopt)
    # The object New-* answered with carries the Guid: no read is needed to know where it is.
    made = live_object(spec, answer.values[0]) if answer.values else None
    identity = made.identity if made is not None else name
    warnings = list(answer.warnings)
    writes = 1
    if followup:
        # Set-only fields (e.g. ValidationRecipients) need the object, which may not have replicated yet.
        try:
            done = lag.until_found(lambda: client.set(spec.noun, identity, followup), f"{spec.what} {name!r}")
        except (ExoError, ReadBackError):
            _undo_create(client, spec, identity)
            raise
        warnings.extend(done.warnings)
        writes += 1
    return Written(spec, name, identity, writes, dict(desired), tuple(warnings), answer=made)


def _undo_create(client: Client, spec: ResourceSpec, identity: str) -> None:
    try:
        client.remove(spec.noun, identity)
    except ExoError:
        pass  # the follow-up's error is the one to report; a plan (or refresh) shows what is left


def _adopt(client: Client, spec: ResourceSpec, desired: Mapping[str, Any], existing: LiveObject, *, adopt: bool,
           how_to_adopt: str) -> Written:
    changes = diff_object(spec, desired, existing)
    if not adopt:
        differs = [c.field for c in changes if not (
            c.field == spec.identity_field and str(c.before).casefold() == str(c.after).casefold())]
        raise AdoptionRequired(spec, existing.name, differs, how_to_adopt)
    written = update(client, spec, existing.identity, changes, name=str(desired[spec.identity_field]))
    return replace(written, expected=dict(desired), adopted=True)


def update(client: Client, spec: ResourceSpec, identity: str, changes: Sequence[FieldChange], *,
           name: str | None = None) -> Written:
    """One Set-* with exactly ``changes`` (minimal: computed by :func:`~o365_mailflow.plan.diff_object`).

    Updates, renames (``name`` among the changes; the Guid stays), adoptions and restores all come here.
    """
    forced = replacements(spec, changes)
    if forced:
        raise ReplacementRequired(spec, name or identity, forced)
    values = {c.field: c.after for c in changes}
    params = to_parameters(spec, values, create=False)
    if not params:
        return Written(spec, name or identity, identity, 0, values)
    answer = client.set(spec.noun, identity, params)
    return Written(spec, name or identity, identity, 1, values, tuple(answer.warnings))


def restore_changes(spec: ResourceSpec, recorded: Mapping[str, Any], live: LiveObject | Mapping[str, Any], *,
                    declared: Sequence[str] = ()) -> tuple[FieldChange, ...]:
    """The changes that put back values recorded before a takeover (accepted domains), for the fields no longer
    ``declared`` that differ now; :func:`update` writes them."""
    known = {k: v for k, v in recorded.items()
             if spec.has_field(k) and k != spec.identity_field and k not in declared}
    return diff_object(spec, known, live)


def delete(client: Client, spec: ResourceSpec, identity: str, *, name: str | None = None) -> Written:
    """Remove-*; an object already gone is what delete wanted (0 writes)."""
    try:
        answer = client.remove(spec.noun, identity)
    except NotFound:
        return Written(spec, name or identity, identity, 0, None)
    return Written(spec, name or identity, identity, 1, None, tuple(answer.warnings))


# --------------------------------------------------------------------------------------------------- read-back


@dataclass
class Verification:
    """What a verification read: per write (same order), the object as last read, and what did not show."""

    seen: list[LiveObject | None]
    unverified: list[tuple[Written, str]] = field(default_factory=list)
    seconds: float = 0.0


def _shows(written: Written, live: LiveObject | None) -> bool:
    if written.expected is None:  # a delete: gone is verified
        return live is None
    return live is not None and not diff_object(written.spec, written.expected, live)


def _why_not(written: Written, budget: float) -> str:
    if written.expected is None:
        return f"still listed {budget:g} s after Remove-*"
    return f"not yet showing the new values {budget:g} s after the write"


def verify(client: Client, written: Sequence[Written], lag: LagPolicy, *, list_first: bool,
           say: Callable[[str], None] | None = None) -> Verification:
    """Re-read until the tenant shows every write, within ``lag``'s budget.

    A round lists a type when ``list_first`` (the first round: one listing checks any number of writes) or when
    more than :data:`PER_OBJECT_READS` of its writes still lag; otherwise it reads the laggards one by one. A
    failed read is not a verdict: it is tried again in the next round.
    """
    started = lag.clock()
    result = Verification(seen=[None] * len(written))
    pending: dict[str, list[int]] = {}
    for index, w in enumerate(written):
        pending.setdefault(w.spec.type_name, []).append(index)
    waits = iter(lag.waits())
    first = True
    while pending:
        for type_name in list(pending):
            still = _verify_type(client, written, pending[type_name], result, say,
                                 listing=(first and list_first) or len(pending[type_name]) > PER_OBJECT_READS)
            if still:
                pending[type_name] = still
            else:
                del pending[type_name]
        first = False
        if not pending:
            break
        elapsed = lag.clock() - started
        delay = next(waits, None)
        if delay is None or elapsed + delay > lag.budget:
            break
        if say is not None:
            lagging = [written[i].name for v in pending.values() for i in v]
            names = ", ".join(f"'{n}'" for n in lagging[:3]) + (", ..." if len(lagging) > 3 else "")
            say(f"{len(lagging)} write(s) not yet visible ({names}): replication lag; checking again in "
                f"{delay:g} s ({elapsed:.0f} s of {lag.budget:g} s)")
        lag.sleep(delay)
    result.unverified = [(written[i], _why_not(written[i], lag.budget)) for v in pending.values() for i in v]
    result.seconds = lag.clock() - started
    return result


def _verify_type(client: Client, written: Sequence[Written], indexes: list[int], result: Verification,
                 say: Callable[[str], None] | None, *, listing: bool) -> list[int]:
    spec = written[indexes[0]].spec
    try:
        if listing:
            by_key: dict[str, LiveObject] = {}
            for record in client.list(spec.noun):
                obj = live_object(spec, record)
                by_key.setdefault(obj.identity.casefold(), obj)
                by_key.setdefault(obj.name.casefold(), obj)
            found = {i: by_key.get(written[i].identity.casefold()) for i in indexes}
        else:
            found = {i: _get_or_none(client, spec, written[i].identity) for i in indexes}
    except ExoError as exc:
        if say is not None:
            say(f"could not read {spec.type_name} objects to verify ({exc}); trying again")
        return indexes
    for i, latest in found.items():
        result.seen[i] = latest
    return [i for i in indexes if not _shows(written[i], found[i])]


def _get_or_none(client: Client, spec: ResourceSpec, identity: str) -> LiveObject | None:
    try:
        return live_object(spec, client.get(spec.noun, identity))
    except NotFound:
        return None


def as_written(written: Written, seen: LiveObject | None) -> LiveObject:
    """The object after ``written``: as read when it shows the write, else as read (or as New-* answered) with the
    written values over it. A write whose answer came back is trusted while the tenant replicates."""
    if seen is not None and _shows(written, seen):
        return seen
    base: LiveObject | None = seen or written.answer
    fields = {**(base.fields if base is not None else {}), **(written.expected or {})}
    name = str(fields.get(written.spec.identity_field) or written.name)
    raw = base.raw if base is not None else {}
    return LiveObject(spec=written.spec, name=name, identity=written.identity, fields=fields, raw=raw)
