"""Tenant state: SQLite under the state directory, with an in-memory mirror for speed.

Why: the emulator must keep every object across restarts (issue #3, item 7) and stay correct when the
threaded HTTP server runs requests concurrently. One process owns the database; all access goes through a
single re-entrant lock, so a cmdlet reads, validates and writes its tenant atomically (the same
"validate the merged object, then save" order the service uses). Reads are served from the mirror, writes
go to SQLite immediately (write-through), so a crash never loses an acknowledged write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Store", "TenantState", "KINDS"]

KINDS = ("InboundConnector", "OutboundConnector", "AcceptedDomain")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id TEXT PRIMARY KEY,
    initial_domain TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    guid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, guid)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class TenantState:
    """One tenant: its configuration (apps, domains) and its objects by kind, in creation order."""

    tenant_id: str
    initial_domain: str
    config: dict[str, Any]
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    seqs: dict[str, int] = field(default_factory=dict)  # guid -> creation sequence (stable paging order)
    created_at: dict[str, float] = field(default_factory=dict)  # guid -> wall time (read-after-write lag)
    lag_reads: dict[str, int] = field(default_factory=dict)  # guid -> reads it stays invisible (read_lag_reads)
    # Lookups by Name, Guid or DistinguishedName (lower-cased) without scanning every object: bulk creates check
    # each new name, and a scan per New-* made them quadratic. Kept by Store.put/delete; run-time only.
    _index: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _keys: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _sorted: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def list(self, kind: str) -> list[dict[str, Any]]:
        cached = self._sorted.get(kind)
        if cached is None:
            items = self.objects[kind]
            cached = self._sorted[kind] = sorted(items.values(), key=lambda o: self.seqs[o["Guid"]])
        return list(cached)

    def lookup(self, kind: str, key: str) -> dict[str, Any] | None:
        """The object whose Name, Guid or DistinguishedName is ``key`` (lower-cased), or None."""
        guid = self._index.get(kind, {}).get(key)
        obj = self.objects[kind].get(guid) if guid else None
        # Every change goes through Store.put, which re-indexes; an object changed in place since is not
        # trusted under its old name.
        return obj if obj is not None and key in _index_keys(obj) else None

    def index(self, kind: str, obj: dict[str, Any]) -> None:
        self.unindex(kind, obj["Guid"])
        keys = _index_keys(obj)
        names = self._index.setdefault(kind, {})
        for key in keys:
            names[key] = obj["Guid"]
        self._keys[obj["Guid"]] = keys
        self._sorted.pop(kind, None)

    def unindex(self, kind: str, guid: str) -> None:
        names = self._index.get(kind, {})
        for key in self._keys.pop(guid, ()):
            if names.get(key) == guid:
                del names[key]
        self._sorted.pop(kind, None)


def name_key(name: str) -> str:
    """Names compare as .NET's StringComparer.OrdinalIgnoreCase does (exo-cmdlets.md: [X] uniqueness check):
    each character upper-cased on its own (simple case mapping), so 'ß' stays 'ß' and never equals 'SS'."""
    # Upper-case per character (simple mapping), then back to lower case so ASCII keys read naturally.
    return "".join(_simple_lower(u) if len(u := c.upper()) == 1 else c for c in name)


def _simple_lower(c: str) -> str:
    low = c.lower()
    return low if len(low) == 1 else c


def _index_keys(obj: dict[str, Any]) -> tuple[str, ...]:
    """Index keys of an object: its name as the service compares names, its Guid and DN in lower case."""
    keys = [name_key(str(obj["Name"]))] if obj.get("Name") else []
    return tuple(keys + [str(obj.get(k) or "").lower() for k in ("Guid", "DistinguishedName") if obj.get(k)])


class Store:
    """Thread-safe tenant store. Use ``with store.tenant(tid) as state:`` for an atomic read-modify-write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._tenants: dict[str, TenantState] = {}
        self._seq = 0
        self._load()

    # -- loading -----------------------------------------------------------------------------------------
    def _load(self) -> None:
        with self.lock:
            self._tenants.clear()
            for tid, domain, config in self._db.execute("SELECT tenant_id, initial_domain, config FROM tenants"):
                self._tenants[tid] = TenantState(tid, domain, json.loads(config))
            for tid, kind, guid, seq, data in self._db.execute(
                "SELECT tenant_id, kind, guid, seq, data FROM objects ORDER BY seq"
            ):
                state = self._tenants.get(tid)
                if state is None or kind not in KINDS:
                    continue
                state.objects[kind][guid] = json.loads(data)
                state.seqs[guid] = seq
                state.index(kind, state.objects[kind][guid])
                self._seq = max(self._seq, seq)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # -- meta --------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- tenants -----------------------------------------------------------------------------------------
    def wipe(self) -> None:
        with self.lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM objects")
            self._db.execute("DELETE FROM tenants")
            self._db.execute("DELETE FROM meta")
            self._db.execute("COMMIT")
            self._tenants.clear()

    def add_tenant(self, tenant_id: str, initial_domain: str, config: dict[str, Any]) -> TenantState:
        with self.lock:
            tid = tenant_id.lower()
            # (Re)creating a tenant starts it empty: drop any objects an earlier tenant of that id left behind,
            # or they would come back from SQLite at the next restart.
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM objects WHERE tenant_id = ?", (tid,))
            self._db.execute(
                "INSERT OR REPLACE INTO tenants (tenant_id, initial_domain, config) VALUES (?, ?, ?)",
                (tid, initial_domain.lower(), json.dumps(config)),
            )
            self._db.execute("COMMIT")
            state = TenantState(tid, initial_domain.lower(), config)
            self._tenants[tid] = state
            return state

    def resolve(self, segment: str) -> TenantState | None:
        """Find a tenant by GUID or by one of its domains (initial or verified), case-insensitively."""
        key = segment.lower()
        with self.lock:
            if key in self._tenants:
                return self._tenants[key]
            for state in self._tenants.values():
                if state.initial_domain == key:
                    return state
            for state in self._tenants.values():
                if key in {d.lower() for d in state.config.get("verified_domains", [])}:
                    return state
            return None

    def tenants(self) -> list[TenantState]:
        with self.lock:
            return list(self._tenants.values())

    @contextmanager
    def tenant(self, tenant_id: str) -> Iterator[TenantState]:
        with self.lock:
            yield self._tenants[tenant_id]

    # -- objects (call with the lock held, i.e. inside ``with store.tenant(...)``) ------------------------
    def put(self, state: TenantState, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            guid = obj["Guid"]
            if guid not in state.seqs:
                self._seq += 1
                state.seqs[guid] = self._seq
                state.created_at[guid] = time.time()
            self._db.execute(
                "INSERT OR REPLACE INTO objects (tenant_id, kind, guid, seq, data) VALUES (?, ?, ?, ?, ?)",
                (state.tenant_id, kind, guid, state.seqs[guid], json.dumps(obj)),
            )
            state.objects[kind][guid] = obj
            state.index(kind, obj)

    def put_many(self, state: TenantState, kind: str, objs: list[dict[str, Any]]) -> None:
        with self.lock:
            self._db.execute("BEGIN")
            try:
                for obj in objs:
                    self.put(state, kind, obj)
            except BaseException:
                self._db.execute("ROLLBACK")
                self._load()
                raise
            self._db.execute("COMMIT")

    def delete(self, state: TenantState, kind: str, guid: str) -> None:
        with self.lock:
            self._db.execute(
                "DELETE FROM objects WHERE tenant_id = ? AND kind = ? AND guid = ?", (state.tenant_id, kind, guid)
            )
            state.objects[kind].pop(guid, None)
            state.unindex(kind, guid)
            state.seqs.pop(guid, None)
            state.created_at.pop(guid, None)
            state.lag_reads.pop(guid, None)
