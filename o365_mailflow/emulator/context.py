"""What every route module of the emulator shares: the running server's state, and JSON answers.

Why its own module: the admin API, the Entra endpoints and the control endpoints each register their routes on one
Flask app and read the same store, settings, signing key, fault book and request log; this is that state, nothing
else. It answers only the request in flight (flask's ``request``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Response, request

from . import tokens
from .faults import FaultBook
from .settings import Settings
from .smtp import FrontDoor
from .store import Store, TenantState

__all__ = ["Context", "Cursor", "Runner", "json_response", "host_url", "own_issuer"]

_LOG_CAP = 200_000

Runner = Callable[..., Any]  # cmdlets.run_cmdlet's signature


@dataclass
class Cursor:
    """A paged result kept for its $skiptoken continuations (stable order: no duplicate, no gap)."""

    tenant_id: str
    body_hash: str
    created: float
    values: list[dict[str, Any]]
    warnings: list[str]
    page_size: int
    finished: bool = False  # its last page was served (kept a while for a retried last request)


@dataclass
class Context:
    """One running emulator's state, shared by its route modules."""

    store: Store
    settings: Settings
    key: tokens.SigningKey
    faults: FaultBook = field(default_factory=FaultBook)
    log: list[dict[str, Any]] = field(default_factory=list)
    log_lock: threading.Lock = field(default_factory=threading.Lock)
    cursors: dict[str, Cursor] = field(default_factory=dict)
    cursor_lock: threading.Lock = field(default_factory=threading.Lock)
    seed: dict[str, Any] = field(default_factory=dict)
    runner: Runner | None = None
    base_url: str = ""
    front_door: FrontDoor | None = None
    state_dir: Path | None = None

    def resolve(self, segment: str) -> TenantState | None:
        return self.store.resolve(segment)

    def tenant_key(self, value: str | None) -> str | None:
        """A tenant id (from an id or a domain) for log and fault filters; ``*``/None pass through."""
        if not value or value == "*":
            return value
        state = self.resolve(value)
        return state.tenant_id if state else value.lower()

    def record(self, entry: dict[str, Any]) -> None:
        with self.log_lock:
            entry["seq"] = len(self.log) + 1
            entry["time"] = time.time()
            self.log.append(entry)
            if len(self.log) > _LOG_CAP:
                del self.log[: len(self.log) - _LOG_CAP]


def host_url() -> str:
    """The base URL as the client called it (127.0.0.1 or localhost), for links it must follow."""
    return request.host_url.rstrip("/")


def own_issuer() -> str:
    return f"{host_url()}/_emulator/oidc"


def json_response(obj: Any, status: int = 200, content_type: str = "application/json; charset=utf-8") -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, content_type=content_type)

