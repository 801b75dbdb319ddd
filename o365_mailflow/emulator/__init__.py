"""An emulated Exchange Online tenant (admin API + Entra token endpoints) over local HTTPS.

Why: no machine here reaches Microsoft 365, and users want to try a stack offline; so the CLI's default
tenant (``tenant: {emulator: true}``) and every integration test talk to this emulator, through the same
MSAL + requests + TLS path as production. It is written from the service contract (``exo-admin-api.md``,
``exo-cmdlets.md``) and imports nothing from the rest of ``o365_mailflow``, so a client bug cannot hide itself.

    from o365_mailflow.emulator import EmulatorServer, ensure_running
    server = EmulatorServer(state_dir).start()   # server.base_url, server.ca_path; server.stop()
    server.front_door.host, server.front_door.port  # the tenants' SMTP front door (emulator.smtp)
    info = ensure_running(state_dir)             # reuse `mailflow emulator serve`, or start one in-process

Layout: :mod:`.lifecycle` (reuse, server.json), :mod:`.statedir` (one server per directory), :mod:`.server` (one
in-process server: start, stop), :mod:`.wsgi` (werkzeug serving), one module per API: :mod:`.admin_api`, :mod:`.entra`, :mod:`.control`; their
shared state in :mod:`.context`, the starting tenants in :mod:`.seed`.

The default tenant and its app are :data:`DEFAULT_SEED` (``seed.json``): tenant
``6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f`` (``contoso.onmicrosoft.com``), app
``0e0e0e0e-1111-4222-8333-444444444444`` with the emulator-only secret in that file.
"""

from __future__ import annotations

from typing import Any

from .lifecycle import (
    STATE_DIR_ENV,
    EmulatorBusy,
    EmulatorInfo,
    default_state_dir,
    ensure_running,
    info_for,
    read_server_json,
    remove_server_json,
    write_server_json,
)

# The server (flask, werkzeug, the cmdlets) and the seed (which runs the cmdlet layer) load on first use: a CLI
# that reuses an emulator already running (`mailflow emulator serve`, a test session) only reads server.json and
# checks its health URL, and importing flask alone costs it about 0.15 s per run.
_LAZY = {
    "EmulatorServer": "server",
    "DEFAULT_CLIENT_ID": "seed",
    "DEFAULT_CLIENT_SECRET": "seed",
    "DEFAULT_INITIAL_DOMAIN": "seed",
    "DEFAULT_SEED": "seed",
    "DEFAULT_TENANT_ID": "seed",
    "load_seed": "seed",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EmulatorServer",
    "EmulatorInfo",
    "EmulatorBusy",
    "ensure_running",
    "default_state_dir",
    "read_server_json",
    "write_server_json",
    "remove_server_json",
    "info_for",
    "DEFAULT_SEED",
    "DEFAULT_TENANT_ID",
    "DEFAULT_INITIAL_DOMAIN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "STATE_DIR_ENV",
    "load_seed",
]
