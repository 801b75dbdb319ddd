"""A running emulator's life outside one process: reuse one that answers, or start one; record it; one per directory.

Why its own module, light on purpose: a CLI run that reuses an emulator already running (`mailflow emulator serve`,
a test session, Pulumi's provider host) only reads ``server.json`` and checks its health URL; the server itself
(flask, werkzeug, the cmdlets, :mod:`.server`) loads only when one has to be started in this process.

One server per state directory: :mod:`.statedir`'s lock, taken by the server itself (:mod:`.server`), below both.
"""

from __future__ import annotations

import atexit
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .statedir import EmulatorBusy

if TYPE_CHECKING:  # pragma: no cover
    from .server import EmulatorServer

__all__ = [
    "EmulatorInfo",
    "EmulatorBusy",
    "ensure_running",
    "default_state_dir",
    "read_server_json",
    "write_server_json",
    "remove_server_json",
    "info_for",
    "STATE_DIR_ENV",
]


STATE_DIR_ENV = "MAILFLOW_STATE_DIR"
SERVER_JSON = "server.json"


@dataclass(frozen=True)
class EmulatorInfo:
    """How to reach a running emulator and its default tenant's well-known app."""

    base_url: str
    ca_path: Path
    tenant_id: str
    initial_domain: str
    client_id: str
    client_secret: str | None
    smtp_host: str | None = None  # the SMTP front door (emulator.smtp); None for a server.json from before it
    smtp_port: int | None = None

    def __repr__(self) -> str:  # the secret is emulator-only, but keep the habit: never print secrets
        return (
            f"EmulatorInfo(base_url={self.base_url!r}, ca_path={str(self.ca_path)!r}, tenant_id={self.tenant_id!r}, "
            f"initial_domain={self.initial_domain!r}, client_id={self.client_id!r}, client_secret=***)"
        )


def default_state_dir(root: Path | None = None) -> Path:
    """``$MAILFLOW_STATE_DIR/emulator`` if set, else ``<root or cwd>/.mailflow/emulator``."""
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env) / "emulator"
    return (root or Path.cwd()) / ".mailflow" / "emulator"


def _effective_state_dir(state_dir: Path | None) -> Path:
    # Callers pass the project default `<root>/.mailflow/emulator`; MAILFLOW_STATE_DIR must still win there, so
    # tests never touch a project's own .mailflow (an explicit other directory is kept as given).
    if state_dir is None or (os.environ.get(STATE_DIR_ENV) and Path(state_dir).parts[-2:] == (".mailflow", "emulator")):
        return default_state_dir()
    return Path(state_dir)


_RUNNING: dict[Path, EmulatorServer] = {}
_RUNNING_LOCK = threading.Lock()


def read_server_json(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(state_dir) / SERVER_JSON).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None  # not ours (or hand-edited): as if absent
    except (OSError, ValueError):
        return None


def write_server_json(server: EmulatorServer) -> Path:
    """Record a running server so other processes (the CLI, Pulumi's provider host) reuse it."""
    info = info_for(server)
    data = {**asdict(info), "ca_path": str(info.ca_path), "pid": os.getpid(), "started": time.time()}
    path = server.state_dir / SERVER_JSON
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the emulator-only secret
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
    return path


def remove_server_json(server: EmulatorServer) -> None:
    data = read_server_json(server.state_dir)
    if data and data.get("pid") == os.getpid() and data.get("base_url") == server.base_url:
        (server.state_dir / SERVER_JSON).unlink(missing_ok=True)


def info_for(server: EmulatorServer) -> EmulatorInfo:
    tenant = server.default_tenant()
    return EmulatorInfo(
        base_url=server.base_url,
        ca_path=Path(server.ca_path),
        tenant_id=tenant.get("tenant_id", ""),
        initial_domain=tenant.get("initial_domain", ""),
        client_id=tenant.get("client_id", ""),
        client_secret=tenant.get("client_secret"),
        smtp_host=server.front_door.host if server.front_door else None,
        smtp_port=server.front_door.port if server.front_door else None,
    )


def _alive(data: dict[str, Any]) -> bool:
    """Does the recorded server answer its health check over TLS (verified with its own CA)?"""
    try:
        context = ssl.create_default_context(cafile=str(data["ca_path"]))
        # A local server: never through a proxy from the environment.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
        with opener.open(f"{data['base_url']}/_emulator/health", timeout=3) as resp:
            return bool(resp.status == 200)
    except (OSError, KeyError, ValueError, urllib.error.URLError, ssl.SSLError):
        return False


def _info_from_json(data: dict[str, Any]) -> EmulatorInfo:
    return EmulatorInfo(
        base_url=str(data["base_url"]),
        ca_path=Path(data["ca_path"]),
        tenant_id=str(data["tenant_id"]),
        initial_domain=str(data["initial_domain"]),
        client_id=str(data["client_id"]),
        client_secret=data.get("client_secret"),
        smtp_host=data.get("smtp_host"),
        smtp_port=data.get("smtp_port"),
    )


def ensure_running(state_dir: Path | None = None, *, wait: float = 15.0) -> EmulatorInfo:
    """Reuse the emulator recorded in ``state_dir/server.json`` if it answers; otherwise start one in this
    process (a daemon thread that ends with the process) and record it there."""
    state_dir = _effective_state_dir(state_dir).resolve()
    with _RUNNING_LOCK:
        server = _RUNNING.get(state_dir)
        if server is not None and server.running:
            return info_for(server)
        deadline = time.monotonic() + wait
        while True:
            data = read_server_json(state_dir)
            if data and _alive(data):
                return _info_from_json(data)
            from .server import EmulatorServer  # flask, werkzeug, the cmdlets: only when one must start here

            server = EmulatorServer(state_dir)
            try:
                server.start()
            except EmulatorBusy:
                # Another process owns the directory and is still starting: wait for its server.json.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            write_server_json(server)
            _RUNNING[state_dir] = server
            atexit.register(_stop_at_exit, server)
            return info_for(server)


def _stop_at_exit(server: EmulatorServer) -> None:
    # The in-process server dies with the process; do not leave a server.json pointing at nothing.
    remove_server_json(server)
    server.stop()
