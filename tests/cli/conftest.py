"""Fixtures for the reconciler's end-to-end tests (helpers in ``reconcile_helpers``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from reconcile_helpers import Project, Tenant, tenant_from_fixture

from o365_mailflow.tenant import TenantConfig


@pytest.fixture
def tenant(emulator_tenant: Any) -> Tenant:
    return tenant_from_fixture(emulator_tenant)


@pytest.fixture
def project(tmp_path: Path, tenant: Tenant) -> Project:
    return Project(tmp_path, tenant)


# --- TEMPORARY: until tests/conftest.py provides the shared fixtures ---------------------------------------------
import uuid  # noqa: E402


@dataclass
class _FallbackTenant:
    config: TenantConfig
    client_id: str
    client_secret: str
    verified_domains: tuple[str, ...]


@pytest.fixture(scope="session")
def _fallback_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from o365_mailflow.emulator import EmulatorServer

    server = EmulatorServer(tmp_path_factory.mktemp("emulator"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def emulator_tenant(_fallback_server: Any) -> _FallbackTenant:
    tid = str(uuid.uuid4())
    domain = f"t{tid[:8]}.onmicrosoft.com"
    domains = ("contoso.com", "sales.contoso.com", "fabrikam.com")
    entry = {"tenant_id": tid, "initial_domain": domain, "verified_domains": list(domains),
             "apps": [{"client_id": str(uuid.uuid4()), "display_name": "test", "client_secret": "s-" + tid,
                       "app_roles": ["Exchange.ManageAsApp"], "directory_roles": ["Exchange Administrator"]}]}
    r = requests.post(f"{_fallback_server.base_url}/_emulator/tenants", json=entry,
                      verify=str(_fallback_server.ca_path), timeout=30)
    r.raise_for_status()
    app = r.json()["apps"][0]
    base = _fallback_server.base_url.rstrip("/")
    config = TenantConfig(tenant_id=tid, initial_domain=domain, endpoint=base, authority=base,
                          ca_file=str(_fallback_server.ca_path))
    return _FallbackTenant(config, app["client_id"], app["client_secret"], domains)
