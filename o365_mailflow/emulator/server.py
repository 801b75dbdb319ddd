"""One emulated tenant server in this process: start it (TLS, store, seed, the HTTPS and SMTP front doors), stop it.

Reuse of a server another process runs and ``server.json`` are :mod:`.lifecycle`'s, the one-server-per-directory
lock :mod:`.statedir`'s; how requests are served is :mod:`.wsgi`'s; what is served is one module per API
(:mod:`.admin_api`, :mod:`.entra`, :mod:`.control`).
"""

from __future__ import annotations

import copy
import json
import socket
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer

from . import tokens
from .admin_api import admin_routes
from .certs import ensure_tls
from .context import Context, Runner
from .control import control_routes
from .entra import entra_routes, managed_identity_routes
from .statedir import EmulatorBusy, StateDirLock
from .seed import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_INITIAL_DOMAIN,
    DEFAULT_SEED,
    DEFAULT_TENANT_ID,
    load_seed,
    seed_store,
    tenant_from_seed,
)
from .settings import Settings
from .smtp import FrontDoor
from .store import Store
from .wsgi import serve

__all__ = [
    "EmulatorServer",
    "EmulatorBusy",
    "create_app",
    "load_seed",
    "DEFAULT_SEED",
    "DEFAULT_TENANT_ID",
    "DEFAULT_INITIAL_DOMAIN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "tenant_from_seed",
]


def create_app(ctx: Context) -> Flask:
    """One Flask app with every API the emulator serves."""
    app = Flask("o365_mailflow.emulator")
    entra_routes(app, ctx)
    managed_identity_routes(app, ctx)
    admin_routes(app, ctx)
    control_routes(app, ctx)
    return app


class EmulatorServer:
    """One emulated Exchange Online (and Entra) endpoint for several tenants, over HTTPS, in a background thread.

    ``state_dir`` holds the SQLite database, the TLS material (CA printed for clients to trust) and the token
    signing key; restarting on the same directory keeps every tenant and object. A ``seed`` (the
    ``seed.json`` format; default :data:`DEFAULT_SEED`) is applied once, to an empty state directory.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: dict[str, Any] | None = None,
        settings: Settings | None = None,
        verbose: bool = False,
        runner: Runner | None = None,
        smtp_port: int = 0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.smtp_port = smtp_port
        self.front_door: FrontDoor | None = None
        self.seed = copy.deepcopy(seed if seed is not None else DEFAULT_SEED)
        self.settings = settings or Settings()
        self.verbose = verbose
        self._runner = runner
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._lock = StateDirLock(self.state_dir)
        self.ca_path: Path = self.state_dir / "tls" / "ca.pem"
        self.base_url = ""

    @property
    def store(self) -> Store:
        assert self._store is not None, "the emulator is not running"
        return self._store

    def start(self) -> "EmulatorServer":
        if self._server is not None:
            return self
        self._lock.acquire()
        try:
            self._start()
        except BaseException:
            if self._store is not None:
                self._store.close()
                self._store = None
            self._server = None
            self._lock.release()
            raise
        return self

    def _start(self) -> None:
        extra = () if self.host in ("127.0.0.1", "localhost", "0.0.0.0", "::") else (self.host,)
        tls = ensure_tls(self.state_dir, extra)
        self.ca_path = tls.ca_cert
        self._store = Store(self.state_dir / "emulator.sqlite3")
        if self._store.get_meta("seeded") is None:
            seed_store(self._store, self.seed, self.settings)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls.server_cert), str(tls.server_key))
        ctx = Context(
            store=self._store,
            settings=self.settings,
            key=tokens.load_signing_key(self.state_dir),
            seed=self.seed,
            runner=self._runner,
            state_dir=self.state_dir,
        )
        self._ctx = ctx
        self._server, self._connections = serve(create_app(ctx), self.host, self.port, context, verbose=self.verbose)
        self.port = self._server.server_port
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        self.base_url = f"https://{shown}:{self.port}"
        ctx.base_url = self.base_url
        store = self._store
        self.front_door = FrontDoor(store, tls, host=shown, port=self.smtp_port,
                                    default_tenant=lambda: self.default_tenant().get("tenant_id")).start()
        self.smtp_port = self.front_door.port
        ctx.front_door = self.front_door
        self._thread = threading.Thread(target=self._server.serve_forever, name="mailflow-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self.front_door is not None:
            self.front_door.stop()
            self.front_door = None
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.server_close()
        for conn in list(self._connections):  # kept-alive connections must not outlive the server
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = None
        self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self._lock.release()

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C), then stop cleanly."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    def default_tenant(self) -> dict[str, Any]:
        """The first seed tenant and its first app, with the plain secret from the seed (if any)."""
        if self._store is not None:
            recorded = self._store.get_meta("default_tenant")
            if recorded:
                return dict(json.loads(recorded))
        tenants: Iterable[dict[str, Any]] = self.seed.get("tenants", [])
        first = next(iter(tenants), None)
        if first is None:
            return {}
        app = (first.get("apps") or [{}])[0]
        secret = app.get("client_secret")
        return {
            "tenant_id": str(first.get("tenant_id", "")).lower(),
            "initial_domain": str(first.get("initial_domain", "")).lower(),
            "client_id": str(app.get("client_id", "")).lower(),
            "client_secret": secret if isinstance(secret, str) else None,
        }

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
