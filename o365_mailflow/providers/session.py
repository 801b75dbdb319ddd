"""One client and one tenant snapshot per host process, shared by every resource of a deployment.

The engine calls ``Diff`` (and ``Read`` on refresh) once per resource, from up to four threads of the
dynamic-provider host. Listing the tenant for each call would make a preview of N resources cost N list calls
(and trip Exchange Online's throttling). Instead each resource type is listed once per process, through
:func:`o365_mailflow.snapshot.take_snapshot`, and the result is shared; a write by any provider invalidates the
type it wrote, so the next read sees the tenant as it is now. A failed list raises: it never means "absent".

Nothing here is reachable from a provider object, so nothing here is pickled into state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import ProviderSettings, current_settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..client import ExoClient
    from ..snapshot import LiveObject, Snapshot
    from ..specs import ResourceSpec

__all__ = ["TenantSession", "session_for"]


@dataclass
class _TypeCache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    snapshot: Snapshot | None = None


class TenantSession:
    """A lazily built client and a per-type cache of live objects for one tenant."""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self._client: ExoClient | None = None
        self._client_lock = threading.Lock()
        self._types: dict[str, _TypeCache] = {}
        self._types_lock = threading.Lock()

    @property
    def client(self) -> ExoClient:
        with self._client_lock:
            if self._client is None:
                from ..tenant import open_client  # imported late: the HTTP stack is only needed at call time

                self._client = open_client(
                    self.settings.tenant,
                    env=self.settings.client_env(),
                    state_dir=self.settings.state_dir,
                )
            return self._client

    def _cache(self, type_name: str) -> _TypeCache:
        with self._types_lock:
            return self._types.setdefault(type_name, _TypeCache())

    def _snapshot(self, spec: ResourceSpec) -> Snapshot:
        """``spec``'s type as listed by one call, shared until the next write of that type."""
        cache = self._cache(spec.type_name)
        with cache.lock:  # concurrent callers wait for the one list call instead of making their own
            if cache.snapshot is None:
                from ..snapshot import take_snapshot

                cache.snapshot = take_snapshot(self.client, specs=[spec])
            return cache.snapshot

    def find_by_name(self, spec: ResourceSpec, name: str) -> LiveObject | None:
        return self._snapshot(spec).find(spec.type_name, name)

    def find_by_identity(self, spec: ResourceSpec, identity: str) -> LiveObject | None:
        return self._snapshot(spec).find_identity(spec.type_name, identity)

    def invalidate(self, spec: ResourceSpec) -> None:
        """Forget what was read for ``spec``'s type: called after every write of that type."""
        cache = self._cache(spec.type_name)
        with cache.lock:
            cache.snapshot = None


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

