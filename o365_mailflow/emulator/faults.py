"""Faults on demand: the service's bad days, reproduced deterministically for tests and benchmarks.

Why: the client must survive throttling (429 + ``Retry-After``; the plain-text "maximum number of concurrent
requests per tenant" answer), transient 503/504, slow answers, dropped connections and replication lag
(exo-admin-api.md §3.5, §5). Tests need these to happen exactly when they say, so every knob has a
"next N requests" form; rate-based knobs use a seeded random generator.

Faults are set per tenant (``tenant`` = id or domain) or for every tenant (``"*"``) through
``POST /_emulator/faults`` with a JSON object of knobs (see :data:`KNOBS`); posting again updates the given
knobs only; ``DELETE /_emulator/faults[?tenant=]`` clears them. They apply to ``InvokeCommand`` requests (except
``token_error_next``, for the token endpoint), optionally narrowed to some cmdlets with ``"cmdlets": [...]``.
"""

from __future__ import annotations

import collections
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

__all__ = ["Decision", "FaultPlan", "FaultBook", "KNOBS", "CONCURRENCY_TEXT"]

# ExoHelper matches the body's start; the full sentence is the module's [CODE S1].
CONCURRENCY_TEXT = (
    "You have reached the maximum number of concurrent requests per tenant. Please wait and try again."
)

KNOBS = {
    "throttle_limit": "admit this many requests per window, then answer 429 with Retry-After",
    "throttle_window": "window length in seconds for throttle_limit (default 60)",
    "retry_after": "Retry-After seconds on 429 (default: until the window frees a slot)",
    "throttle_next": "answer the next N requests with 429",
    "concurrency_next": "answer the next N requests with the plain-text concurrency message",
    "max_concurrent": "answer with the concurrency message when more than this many requests are in flight",
    "error_status": "status for error_next/error_rate: 503 (default) or 504, or 500",
    "error_next": "answer the next N requests with error_status",
    "error_rate": "answer this fraction (0..1) of requests with error_status (seeded: see seed)",
    "latency": "seconds added before answering each request",
    "drop_next": "drop the connection (no HTTP answer) for the next N requests",
    "drop_rate": "drop this fraction of connections (seeded)",
    "drop_after_next": "run the next N requests (a write is committed), then drop the connection without the answer",
    "read_lag": "seconds a new object stays invisible to reads (404), as replication lag (minutes are fine: "
    "posting read_lag 0 ends it)",
    "forbidden_gzip": "declare Content-Encoding: gzip on the 403 NUL-byte body (it is not gzip), as the service "
    "sometimes does",
    "redirect_to": "host:port of the tenant's regional host (e.g. localhost:446): InvokeCommand requests that reach "
    "another host name are answered 302 to it, as some tenants are sent to a tenant-specific host",
    "clock_skew": "seconds added to the Date header of admin-API answers (a server clock that is ahead, or behind)",
    "read_lag_reads": "reads (Get of it, or a listing of its type) a new object stays invisible to: replication "
                      "lag of any length in wall time, for tests that advance a fake clock",
    "token_error_next": "answer the next N token requests with error_status (Entra temporarily unavailable)",
    "token_lifetime": "lifetime in seconds of access tokens issued to this tenant's apps (<= 0: already expired)",
    "pagination_expiry": "seconds a $skiptoken stays valid (<= 0: every $skiptoken is already expired)",
    "seed": "random seed for the *_rate knobs (default 0)",
    "cmdlets": "only fault these cmdlets (names, case-insensitive)",
}


@dataclass
class FaultPlan:
    throttle_limit: int | None = None
    throttle_window: float = 60.0
    retry_after: float | None = None
    throttle_next: int = 0
    concurrency_next: int = 0
    max_concurrent: int | None = None
    error_status: int = 503
    error_next: int = 0
    error_rate: float = 0.0
    latency: float = 0.0
    drop_next: int = 0
    drop_rate: float = 0.0
    drop_after_next: int = 0
    read_lag: float = 0.0
    forbidden_gzip: bool = False
    redirect_to: str | None = None
    clock_skew: float = 0.0
    read_lag_reads: int = 0
    token_lifetime: int | None = None
    token_error_next: int = 0
    pagination_expiry: int | None = None
    seed: int = 0
    cmdlets: tuple[str, ...] | None = None
    # run-time state
    _admitted: collections.deque[float] = field(default_factory=collections.deque, repr=False)
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def update(self, knobs: Mapping[str, Any]) -> None:
        known = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = set(knobs) - known
        if unknown:
            raise ValueError(f"unknown fault knobs: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        for name, value in knobs.items():
            if name == "cmdlets":
                value = None if value is None else tuple(str(c).lower() for c in value)
            elif name == "error_status" and int(value) not in (500, 502, 503, 504):
                raise ValueError("error_status must be 500, 502, 503 or 504")
            elif name in ("error_rate", "drop_rate") and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
            elif name == "redirect_to" and value is not None and not _HOST_PORT.match(str(value)):
                raise ValueError("redirect_to must be host:port, e.g. localhost:446")
            setattr(self, name, value)
        if "seed" in knobs:
            self._rng = random.Random(int(self.seed))
        if "throttle_limit" in knobs or "throttle_window" in knobs:
            self._admitted.clear()

    def public(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def applies_to(self, cmdlet: str | None) -> bool:
        return self.cmdlets is None or (cmdlet or "").lower() in self.cmdlets


_DEFAULTS = {f.name: f.default for f in fields(FaultPlan) if not f.name.startswith("_")}
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")


@dataclass(frozen=True)
class Decision:
    """What to do with one request: ``kind`` None (serve it), throttle, concurrency, error, drop, or
    drop_after (serve it, then drop the connection: the write is committed but its answer is lost)."""

    kind: str | None = None
    status: int = 200
    retry_after: float | None = None
    latency: float = 0.0


class FaultBook:
    """All fault plans of a server, plus in-flight counters; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, FaultPlan] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()

    def configure(self, tenant: str, knobs: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            plan = self._plans.setdefault(tenant, FaultPlan())
            plan.update(knobs)
            return plan.public()

    def clear(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._plans.clear()
            else:
                self._plans.pop(tenant, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {tenant: plan.public() for tenant, plan in self._plans.items()}

    def _plans_for(self, tenant: str) -> list[FaultPlan]:
        return [p for p in (self._plans.get(tenant), self._plans.get("*")) if p is not None]

    def value(self, tenant: str, name: str) -> Any:
        """The first set value of a passive knob (read_lag, token_lifetime, pagination_expiry, redirect_to, ...).

        A knob whose default is None is set as soon as it is given, 0 included (``token_lifetime: 0`` means
        "already expired", ``pagination_expiry: 0`` "every $skiptoken expired"); the others (default 0/False) are
        set when they differ from their default.
        """
        default = _DEFAULTS[name]
        with self._lock:
            for plan in self._plans_for(tenant):
                value = getattr(plan, name)
                if value is not None and (default is None or value != default):
                    return value
        return None

    def token_error(self, tenant: str) -> int | None:
        """The status to fail this token request with (``token_error_next``), or None."""
        with self._lock:
            for plan in self._plans_for(tenant):
                if plan.token_error_next > 0:
                    plan.token_error_next -= 1
                    return int(plan.error_status)
        return None

    def enter(self, tenant: str) -> int:
        with self._lock:
            self._in_flight[tenant] += 1
            return self._in_flight[tenant]

    def leave(self, tenant: str) -> None:
        with self._lock:
            self._in_flight[tenant] -= 1

    def decide(self, tenant: str, cmdlet: str | None, in_flight: int) -> Decision:
        """Decide the fate of one InvokeCommand request (call after :meth:`enter`)."""
        now = time.monotonic()
        with self._lock:
            latency = 0.0
            for plan in self._plans_for(tenant):
                if not plan.applies_to(cmdlet):
                    continue
                latency = max(latency, float(plan.latency or 0.0))
                decision = self._decide_one(plan, now, in_flight)
                if decision is not None:
                    return Decision(decision.kind, decision.status, decision.retry_after, latency)
            return Decision(latency=latency)

    @staticmethod
    def _decide_one(plan: FaultPlan, now: float, in_flight: int) -> Decision | None:
        if plan.drop_next > 0:
            plan.drop_next -= 1
            return Decision("drop", 0)
        if plan.drop_rate and plan._rng.random() < plan.drop_rate:
            return Decision("drop", 0)
        if plan.drop_after_next > 0:
            plan.drop_after_next -= 1
            return Decision("drop_after", 0)
        if plan.concurrency_next > 0:
            plan.concurrency_next -= 1
            return Decision("concurrency", 0)
        if plan.max_concurrent is not None and in_flight > plan.max_concurrent:
            return Decision("concurrency", 0)
        if plan.throttle_next > 0:
            plan.throttle_next -= 1
            return Decision("throttle", 429, plan.retry_after if plan.retry_after is not None else 1)
        if plan.throttle_limit is not None:
            window = float(plan.throttle_window)
            while plan._admitted and plan._admitted[0] <= now - window:
                plan._admitted.popleft()
            if len(plan._admitted) >= int(plan.throttle_limit):
                wait = plan.retry_after
                if wait is None:
                    wait = max(1, math.ceil(plan._admitted[0] + window - now))
                return Decision("throttle", 429, wait)
            plan._admitted.append(now)
        if plan.error_next > 0:
            plan.error_next -= 1
            return Decision("error", int(plan.error_status))
        if plan.error_rate and plan._rng.random() < plan.error_rate:
            return Decision("error", int(plan.error_status))
        return None
