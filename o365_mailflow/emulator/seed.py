"""The seed: the tenants an empty state directory starts with (``seed.json``, like Azurite's well-known account).

Used when a server starts on an empty directory and by the control endpoints (reset to the seed, add a tenant).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any, Mapping

from . import tokens
from .cmdlets import init_tenant
from .settings import Settings
from .store import Store, TenantState

__all__ = [
    "load_seed",
    "tenant_from_seed",
    "seed_store",
    "init_tenant_objects",
    "DEFAULT_SEED",
    "DEFAULT_TENANT_ID",
    "DEFAULT_INITIAL_DOMAIN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
]

SEED_FILE = Path(__file__).with_name("seed.json")


def load_seed(path: Path | None = None) -> dict[str, Any]:
    """Read a seed file (default: the packaged ``seed.json``)."""
    data: dict[str, Any] = json.loads((path or SEED_FILE).read_text(encoding="utf-8"))
    return data  # its shape is checked by the caller that names the file (cli/emulator.py) and by seed_tenants


# The embedded default tenant, like Azurite's well-known account key: public on purpose, emulator-only.
DEFAULT_SEED: dict[str, Any] = load_seed()
_DEFAULT_TENANT = DEFAULT_SEED["tenants"][0]
DEFAULT_TENANT_ID: str = _DEFAULT_TENANT["tenant_id"]
DEFAULT_INITIAL_DOMAIN: str = _DEFAULT_TENANT["initial_domain"]
DEFAULT_CLIENT_ID: str = _DEFAULT_TENANT["apps"][0]["client_id"]
DEFAULT_CLIENT_SECRET: str = _DEFAULT_TENANT["apps"][0]["client_secret"]
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def tenant_from_seed(entry: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, str | None]]:
    """Seed tenant entry -> (tenant id, initial domain, stored config, {client_id: plain secret or None}).

    Seed tenant keys: ``tenant_id`` (default: a new GUID), ``initial_domain`` (default
    ``t<8 hex>.onmicrosoft.com``), ``verified_domains`` (list), ``apps`` (see :func:`tokens.app_config_from_seed`),
    ``settings`` (optional per-tenant :class:`Settings` overrides, e.g. ``{"test_mode_listing": "include"}``).
    """
    tenant_id = str(entry.get("tenant_id") or uuid.uuid4()).lower()
    if not _GUID.match(tenant_id):
        raise ValueError(f"tenant_id must be a GUID, got {tenant_id!r}")
    initial = str(entry.get("initial_domain") or f"t{tenant_id[:8]}.onmicrosoft.com").lower()
    if not initial.endswith(".onmicrosoft.com"):
        raise ValueError(f"the initial domain must end with .onmicrosoft.com, got {initial!r}")
    apps, plain = [], {}
    for app_entry in entry.get("apps", []):
        app, secret = tokens.app_config_from_seed(app_entry)
        apps.append(app)
        plain[app["client_id"]] = secret
    verified = [str(d).lower() for d in entry.get("verified_domains", [])]
    config: dict[str, Any] = {"verified_domains": verified, "apps": apps}
    if entry.get("mailboxes"):
        # Addresses with an Exchange Online mailbox, for the SMTP front door (emulator-only seed key).
        config["mailboxes"] = [str(m).strip().lower() for m in entry["mailboxes"]]
    if entry.get("settings"):
        Settings().with_overrides(dict(entry["settings"]))  # fail early on an unknown setting
        config["settings"] = dict(entry["settings"])
    return tenant_id, initial, config, plain



def init_tenant_objects(store: Store, state: TenantState, settings: Settings) -> None:
    """Let the cmdlet layer create a new tenant's built-in objects (its accepted domains)."""
    init_tenant(store, state.tenant_id, settings=settings)


def seed_store(store: Store, seed: Mapping[str, Any], settings: Settings) -> None:
    """Create the seed's tenants; remember the first one's first app as the directory's default tenant."""
    for index, entry in enumerate(seed.get("tenants", [])):
        tenant_id, initial, config, plain = tenant_from_seed(entry)
        state = store.add_tenant(tenant_id, initial, config)
        init_tenant_objects(store, state, settings)
        if index == 0:
            client_id, secret = next(iter(plain.items()), ("", None))
            # Kept so a later start with another (or no) seed still reports this directory's own default app.
            default = {"tenant_id": tenant_id, "initial_domain": initial, "client_id": client_id,
                       "client_secret": secret}
            store.set_meta("default_tenant", json.dumps(default))
    store.set_meta("seeded", "1")

