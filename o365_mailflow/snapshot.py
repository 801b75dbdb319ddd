"""What the tenant holds now, read once per resource type and normalised like the desired state.

Why a snapshot rather than one read per object: the cost of a plan must not grow with the number of
objects (Microsoft365DSC's one Get per resource is what makes its exports take hours), and a read failure
must stop the plan instead of turning into "absent" (the incumbent's worst false-drift bug). So this module
issues exactly one list call per type (the client follows every page) and lets any error propagate as a
:class:`~o365_mailflow.errors.ExoError`; it never returns a partial snapshot.

The requests are those of a sequential read, in the same order and one at a time (nothing more against the
tenant's concurrency limit; a failure stops the read at the same request), but they are made on a thread of their
own (:func:`start_snapshot`): the caller goes on with its own work while the first answers are on the network, and
normalises each type while the next one's answer is on its way.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Protocol, Sequence

from .errors import AuthenticationError, ExoError, PermissionDenied, PlanError
from .shapes import FieldMap, Fields, Json, Record
from .specs import SPECS, ResourceSpec, effective, name_key, normalise_live

__all__ = ["LiveObject", "Snapshot", "SnapshotError", "PendingSnapshot", "take_snapshot", "start_snapshot",
           "live_object", "FoundValues"]


class _Lister(Protocol):
    def list(self, noun: str) -> Sequence[Record]: ...


class SnapshotError(PlanError):
    """Reading the tenant failed: nothing was planned (never read as "the objects are absent").

    The message follows the cause: a sign-in failure or a missing role keeps the underlying error's advice
    (credentials, app permission, role) instead of a generic "check connectivity", which would send the admin
    to look at the network when the fix is in Entra ID or the Exchange admin center.
    """

    def __init__(self, type_name: str, cause: ExoError) -> None:
        super().__init__(_snapshot_message(type_name, cause))
        self.type_name = type_name
        self.cause = cause


def _snapshot_message(type_name: str, cause: ExoError) -> str:
    detail = str(cause).rstrip(".")
    if isinstance(cause, AuthenticationError):
        return f"cannot sign in to the tenant: {detail}. Nothing was read or changed."
    if isinstance(cause, PermissionDenied):
        return (f"the app may not read the tenant's {type_name} objects: {detail}. Nothing was planned or "
                "changed; run the command again once the permission is granted.")
    return (f"Could not read the tenant's {type_name} objects ({cause}). Nothing was planned or changed: "
            "a failed read is never taken to mean the objects are absent. Check connectivity and "
            "permissions, then run the command again.")


@dataclass(frozen=True)
class LiveObject:
    """One object as the tenant holds it: every spec field normalised, plus the raw Get-* record."""

    spec: ResourceSpec
    name: str  # connector Name, or accepted domain name
    identity: str  # Guid for connectors (rename-safe), domain name for accepted domains
    fields: Fields
    raw: dict[str, Json] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def key(self) -> str:
        """The name as Exchange compares names (:func:`~o365_mailflow.specs.name_key`), worked out once: a plan
        of thousands of objects looks each one up several times."""
        return name_key(self.name)

    @cached_property
    def effective(self) -> Fields:
        """:func:`~o365_mailflow.specs.effective` of the fields, worked out once: the mail-flow impact and the
        change diagram each read the whole tenant this way. Read only (both share the one dict)."""
        return effective(self.spec, self.fields)


def live_object(spec: ResourceSpec, record: Record) -> LiveObject:
    """Normalise one Get-* record into a :class:`LiveObject` (also used to read back after a write)."""
    fields = normalise_live(spec, record)
    name = str(fields.get(spec.identity_field) or record.get("Name") or record.get("Identity") or "")
    if spec.identity_field == "name":
        identity = str(record.get("Guid") or record.get("ExchangeObjectId") or record.get("Identity") or name)
    else:
        identity = name
    return LiveObject(spec=spec, name=name, identity=identity, fields=fields, raw=dict(record))


@dataclass(frozen=True)
class Snapshot:
    """Live objects by type name, in the order the service listed them."""

    objects: dict[str, tuple[LiveObject, ...]]
    requests: int = 0  # HTTP requests the snapshot cost (for benchmarks and tests)
    _by_name: dict[tuple[str, str], LiveObject] = field(init=False, repr=False, compare=False)
    _by_identity: dict[tuple[str, str], LiveObject] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Indexes, so that planning N objects costs O(N), not O(N^2) (the benchmark plans 1,000 connectors).
        by_name: dict[tuple[str, str], LiveObject] = {}
        by_identity: dict[tuple[str, str], LiveObject] = {}
        for type_name, objects in self.objects.items():
            for obj in objects:
                by_name.setdefault((type_name, obj.key), obj)
                by_identity.setdefault((type_name, obj.identity.casefold()), obj)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_identity", by_identity)

    def of_type(self, type_name: str) -> tuple[LiveObject, ...]:
        return self.objects.get(type_name, ())

    def find(self, type_name: str, name: str) -> LiveObject | None:
        """The live object of that type whose name (or domain) matches, case-insensitively."""
        return self._by_name.get((type_name, name_key(name)))

    def find_key(self, type_name: str, key: str) -> LiveObject | None:
        """:meth:`find` by a name already turned into its :func:`~o365_mailflow.specs.name_key`."""
        return self._by_name.get((type_name, key))

    def find_identity(self, type_name: str, identity: str) -> LiveObject | None:
        return self._by_identity.get((type_name, identity.casefold()))


def take_snapshot(client: _Lister, specs: Iterable[ResourceSpec] | None = None) -> Snapshot:
    """One list call per resource type (all pages); any failure raises :class:`SnapshotError`."""
    return start_snapshot(client, specs).result()


def start_snapshot(client: _Lister, specs: Iterable[ResourceSpec] | None = None) -> PendingSnapshot:
    """Start reading the tenant and return at once; :meth:`PendingSnapshot.result` waits for it."""
    return PendingSnapshot(client, SPECS.values() if specs is None else specs)


class PendingSnapshot:
    """A snapshot being read: a thread lists the types one after the other, the caller normalises them.

    A single type is read on the caller's thread (the Pulumi providers read one type when a resource first needs
    it). The thread is a daemon: a command that stops early (Ctrl-C, an unreadable found-values file) does not
    wait for a listing whose answer nobody will read.
    """

    def __init__(self, client: _Lister, specs: Iterable[ResourceSpec]) -> None:
        self._specs = tuple(specs)
        self._stats = getattr(client, "stats", None)
        self._before = getattr(self._stats, "requests", 0)
        self._answers: queue.SimpleQueue[Sequence[Record] | BaseException] = queue.SimpleQueue()
        self._outcome: Snapshot | Exception | None = None
        if len(self._specs) > 1:
            threading.Thread(target=self._list_all, args=(client,), daemon=True, name="snapshot").start()
        else:
            self._list_all(client)

    def _list_all(self, client: _Lister) -> None:
        for spec in self._specs:
            try:
                self._answers.put(client.list(spec.noun))
            except BaseException as exc:  # handed to the caller's thread by result(), whatever it is
                self._answers.put(exc)
                return  # as a sequential read would: the types after a failed one are not read

    def result(self) -> Snapshot:
        """Every type, normalised; :class:`SnapshotError` for the first type that could not be read.

        Any other exception (a bug, a record the normaliser cannot read) is raised as it is, as a sequential read
        would have raised it. Asked again, the same snapshot or the same error."""
        if self._outcome is None:
            try:
                self._outcome = self._collect()
            except Exception as exc:  # Ctrl-C while waiting is not an outcome: it propagates, unrecorded
                self._outcome = exc
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return self._outcome

    def _collect(self) -> Snapshot:
        objects: dict[str, tuple[LiveObject, ...]] = {}
        for spec in self._specs:
            answer = self._answers.get()
            if isinstance(answer, ExoError):
                raise SnapshotError(spec.type_name, answer) from answer
            if isinstance(answer, BaseException):
                raise answer
            objects[spec.type_name] = tuple(live_object(spec, r) for r in answer)
        after = getattr(self._stats, "requests", 0)
        return Snapshot(objects=objects, requests=after - self._before)


class FoundValues:
    """What accepted domains looked like before this tool first changed them, in a small JSON file.

    Why it exists: Exchange Online cannot delete an accepted domain, so "removing" one from a stack that sets
    ``prune: true`` means putting back the values found before the stack managed it (DESIGN). The CLI keeps no
    other state, so ``apply`` records those values here (``<state dir>/found/<tenant>.json``) the first time it
    changes a field, and the plan reads them back. Without a record a domain that leaves the stack is left as
    it is. The file holds field values only (never a credential).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, Fields]] = {}
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise PlanError(f"cannot read {path} ({exc}); delete it if the tenant's accepted domains "
                                "no longer need restoring") from exc
            if isinstance(loaded, dict):
                self._data = {str(t): {str(n): dict(v) for n, v in d.items()} for t, d in loaded.items()}

    @classmethod
    def for_tenant(cls, state_dir: Path, tenant: str) -> FoundValues:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", tenant) or "tenant"
        return cls(state_dir / "found" / f"{safe}.json")

    def as_mapping(self) -> dict[str, dict[str, Fields]]:
        return {t: {n: dict(v) for n, v in d.items()} for t, d in self._data.items()}

    def record(self, type_name: str, name: str, values: FieldMap) -> None:
        """Remember the values of fields about to change; a field already recorded keeps its first value."""
        entry = self._data.setdefault(type_name, {}).setdefault(name.casefold(), {})
        added = {k: v for k, v in values.items() if k not in entry}
        if added:
            entry.update(added)
            self._save()

    def forget(self, type_name: str, name: str) -> None:
        if self._data.get(type_name, {}).pop(name.casefold(), None) is not None:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)
