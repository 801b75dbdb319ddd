"""What the tenant holds now, read once per resource type and normalised like the desired state.

Why a snapshot rather than one read per object: the cost of a plan must not grow with the number of
objects (Microsoft365DSC's one Get per resource is what makes its exports take hours), and a read failure
must stop the plan instead of turning into "absent" (the incumbent's worst false-drift bug). So this module
issues exactly one list call per type (the client follows every page) and lets any error propagate as a
:class:`~o365_mailflow.errors.ExoError`; it never returns a partial snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

from .errors import ExoError, PlanError

__all__ = ["LiveObject", "Snapshot", "SnapshotError", "take_snapshot", "live_object"]


class _Lister(Protocol):
    def list(self, noun: str) -> list[dict[str, Any]]: ...


class SnapshotError(PlanError):
    """Reading the tenant failed: nothing was planned (never read as "the objects are absent")."""

    def __init__(self, type_name: str, cause: ExoError) -> None:
        super().__init__(
            f"Could not read the tenant's {type_name} objects ({cause}). Nothing was planned or changed: "
            "a failed read is never taken to mean the objects are absent. Check connectivity and "
            "permissions, then run the command again."
        )
        self.type_name = type_name
        self.cause = cause


@dataclass(frozen=True)
class LiveObject:
    """One object as the tenant holds it: every spec field normalised, plus the raw Get-* record."""

    spec: Any  # ResourceSpec
    name: str  # connector Name, or accepted domain name
    identity: str  # Guid for connectors (rename-safe), domain name for accepted domains
    fields: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def live_object(spec: Any, record: Mapping[str, Any]) -> LiveObject:
    """Normalise one Get-* record into a :class:`LiveObject` (also used to read back after a write)."""
    from .specs import normalise_live

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

    def of_type(self, type_name: str) -> tuple[LiveObject, ...]:
        return self.objects.get(type_name, ())

    def find(self, type_name: str, name: str) -> LiveObject | None:
        """The live object of that type whose name (or domain) matches, case-insensitively."""
        key = name.casefold()
        for obj in self.objects.get(type_name, ()):
            if obj.name.casefold() == key:
                return obj
        return None

    def find_identity(self, type_name: str, identity: str) -> LiveObject | None:
        key = identity.casefold()
        for obj in self.objects.get(type_name, ()):
            if obj.identity.casefold() == key:
                return obj
        return None


def take_snapshot(client: _Lister, specs: Iterable[Any] | None = None) -> Snapshot:
    """One list call per resource type (all pages); any failure raises :class:`SnapshotError`."""
    if specs is None:
        from .specs import SPECS

        specs = SPECS.values()
    stats = getattr(client, "stats", None)
    before = getattr(stats, "requests", 0)
    objects: dict[str, tuple[LiveObject, ...]] = {}
    for spec in specs:
        try:
            records = client.list(spec.noun)
        except ExoError as exc:
            raise SnapshotError(spec.type_name, exc) from exc
        objects[spec.type_name] = tuple(live_object(spec, r) for r in records)
    after = getattr(stats, "requests", 0)
    return Snapshot(objects=objects, requests=after - before)
