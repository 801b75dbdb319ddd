"""One client and one tenant snapshot per host process, shared by every resource of a deployment.

The engine calls ``Diff`` (and ``Read`` on refresh) once per resource, from up to four threads of the
dynamic-provider host. Listing the tenant for each call would make a preview of N resources cost N list calls
(and trip Exchange Online's throttling). Instead each resource type is listed once per process, through
:func:`o365_mailflow.snapshot.take_snapshot`, and the result is shared. A write by any provider updates the
cached listing in place with the object as read back after it (or drops it after a delete), so ``pulumi up``
of N resources still lists each type once: dropping the listing after every write made a 200-resource create
re-list each type about 25 times. A failed list raises: it never means "absent".

Nothing here is reachable from a provider object, so nothing here is pickled into state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..snapshot import take_snapshot
from .config import ProviderSettings, current_settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..client import ExoClient
    from ..snapshot import LiveObject, Snapshot
    from ..specs import ResourceSpec

__all__ = ["TenantSession", "session_for"]


@dataclass
class _TypeCache:
    """One type's live objects, indexed like :class:`Snapshot` (case-insensitive name and identity)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    loaded: bool = False
    by_identity: dict[str, LiveObject] = field(default_factory=dict)
    by_name: dict[str, LiveObject] = field(default_factory=dict)

    def load(self, snapshot: Snapshot, type_name: str) -> None:
        for obj in snapshot.of_type(type_name):
            self.by_identity.setdefault(obj.identity.casefold(), obj)
            self.by_name.setdefault(obj.name.casefold(), obj)
        self.loaded = True

    def put(self, obj: LiveObject) -> None:
        old = self.by_identity.get(obj.identity.casefold())
        if old is not None and self.by_name.get(old.name.casefold()) is old:
            del self.by_name[old.name.casefold()]  # a rename: the old name no longer finds it
        self.by_identity[obj.identity.casefold()] = obj
        self.by_name[obj.name.casefold()] = obj

    def drop(self, identity: str) -> None:
        old = self.by_identity.pop(identity.casefold(), None)
        if old is not None and self.by_name.get(old.name.casefold()) is old:
            del self.by_name[old.name.casefold()]


class TenantSession:
    """A lazily built client and a per-type cache of live objects for one tenant."""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self._client: ExoClient | None = None
        self._client_lock = threading.Lock()
        self._types: dict[str, _TypeCache] = {}
        self._types_lock = threading.Lock()
        # Objects created or adopted by a resource in this process (one deployment): a second resource that
        # asks to adopt one of them is refused instead of sharing it.
        self._claimed: set[tuple[str, str]] = set()

    @property
    def client(self) -> ExoClient:
        with self._client_lock:
            if self._client is None:
                from ..connect import open_client  # late: requests/msal load only when a provider calls the tenant, not in the program

                self._client = open_client(
                    self.settings.tenant,
                    env=self.settings.client_env(),
                    state_dir=self.settings.state_dir,
                )
            return self._client

    def _cache(self, type_name: str) -> _TypeCache:
        with self._types_lock:
            return self._types.setdefault(type_name, _TypeCache())

    def _loaded(self, spec: ResourceSpec) -> _TypeCache:
        """``spec``'s type as listed by one call per process, kept current by :meth:`record`/:meth:`forget`."""
        cache = self._cache(spec.type_name)
        with cache.lock:  # concurrent callers wait for the one list call instead of making their own
            if not cache.loaded:
                cache.load(take_snapshot(self.client, specs=[spec]), spec.type_name)
        return cache

    def find_by_name(self, spec: ResourceSpec, name: str) -> LiveObject | None:
        cache = self._loaded(spec)
        with cache.lock:
            return cache.by_name.get(name.casefold())

    def find_by_identity(self, spec: ResourceSpec, identity: str) -> LiveObject | None:
        cache = self._loaded(spec)
        with cache.lock:
            return cache.by_identity.get(identity.casefold())

    def record(self, spec: ResourceSpec, obj: LiveObject) -> None:
        """A write's result (the object as read back): later lookups see it without listing again."""
        cache = self._cache(spec.type_name)
        with cache.lock:
            if cache.loaded:
                cache.put(obj)

    def forget(self, spec: ResourceSpec, identity: str) -> None:
        """A delete's result: later lookups no longer find the object."""
        cache = self._cache(spec.type_name)
        with cache.lock:
            if cache.loaded:
                cache.drop(identity)

    def claim(self, spec: ResourceSpec, identity: str) -> bool:
        """Mark ``identity`` as managed by a resource of this deployment; False if it already was."""
        key = (spec.type_name, identity.casefold())
        with self._types_lock:
            if key in self._claimed:
                return False
            self._claimed.add(key)
            return True

    def release(self, spec: ResourceSpec, identity: str) -> None:
        with self._types_lock:
            self._claimed.discard((spec.type_name, identity.casefold()))

    def invalidate(self, spec: ResourceSpec) -> None:
        """Forget the whole listing of ``spec``'s type: only when a write's outcome is unknown."""
        cache = self._cache(spec.type_name)
        with cache.lock:
            cache.loaded = False
            cache.by_identity.clear()
            cache.by_name.clear()


_SESSIONS: dict[tuple[str, ...], TenantSession] = {}
_SESSIONS_LOCK = threading.Lock()


def session_for() -> TenantSession:
    """The process's session for the configured tenant (one per distinct tenant/app/endpoint)."""
    settings = current_settings()
    with _SESSIONS_LOCK:
        found = _SESSIONS.get(settings.key)
        if found is None:
            found = _SESSIONS[settings.key] = TenantSession(settings)
        return found

