"""Shared helpers for the cmdlet tests: a fresh emulated tenant per test, driven through one ``invoke``.

Why: the accept/reject, shape and binding cases run over HTTPS to the session's emulator (``emulator_tenant_
factory`` from ``tests/conftest.py``: token, TLS, InvokeCommand envelope). A case that needs tenant
configuration the HTTP seeding does not take (mail flow rules) runs the same ``invoke`` against
``run_cmdlet`` on a store in ``tmp_path``, rendered like the admin API. A ``Reply`` is what the HTTP layer
answers: the status and the JSON body (``None`` for the 403 NUL-byte body).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from o365_mailflow.emulator.cmdlets import UnknownCmdlet, init_tenant, run_cmdlet
from o365_mailflow.emulator.errors import CmdletError, error_body
from o365_mailflow.emulator.settings import Settings
from o365_mailflow.emulator.store import Store

VERIFIED = ["contoso.com", "sales.contoso.com", "fabrikam.com"]


@dataclass
class Reply:
    status: int
    body: Any


class DirectTenant:
    """A tenant in a local store; ``invoke`` renders results like the admin API envelope."""

    def __init__(self, store: Store, tenant_id: str, settings: Settings) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.initial_domain = "contoso.onmicrosoft.com"
        self.settings = settings
        self.read_lag = 0.0

    def invoke(self, cmdlet: str, params: dict[str, Any] | None = None) -> Reply:
        try:
            result = run_cmdlet(
                self.store, self.tenant_id, cmdlet, params or {}, settings=self.settings, read_lag=self.read_lag
            )
        except UnknownCmdlet:
            return Reply(403, None)
        except CmdletError as err:
            return Reply(err.status, error_body(err))
        body: dict[str, Any] = {
            "adminapi.warnings@odata.type": "#Collection(String)",
            "@adminapi.warnings": result.warnings,
            "value": result.values,
        }
        if result.confirmation_message is not None:
            body["@adminapi.confirmationmessage"] = result.confirmation_message
        return Reply(200, body)


def make_direct_tenant(
    path: Path, *, settings: dict[str, Any] | None = None, config: dict[str, Any] | None = None
) -> DirectTenant:
    store = Store(path / f"{uuid.uuid4().hex}.db")
    tenant_id = str(uuid.uuid4())
    store.add_tenant(tenant_id, "contoso.onmicrosoft.com", {"verified_domains": list(VERIFIED), **(config or {})})
    init_tenant(store, tenant_id, settings=Settings())
    return DirectTenant(store, tenant_id, Settings().with_overrides(settings))


class HttpTenant:
    """A tenant in the session's HTTPS emulator; ``invoke`` POSTs InvokeCommand with a bearer token."""

    def __init__(self, tenant: Any) -> None:
        self.tenant = tenant
        self.initial_domain = tenant.initial_domain
        self._read_lag = 0.0

    def invoke(self, cmdlet: str, params: dict[str, Any] | None = None) -> Reply:
        response = self.tenant.invoke(cmdlet, params or {})  # EmulatedTenant keeps one token per tenant
        if response.status_code == 403:
            assert set(response.content) <= {0}, response.content[:100]
            return Reply(403, None)
        return Reply(response.status_code, response.json())

    @property
    def read_lag(self) -> float:
        return self._read_lag

    @read_lag.setter
    def read_lag(self, seconds: float) -> None:
        # The server's read-after-write fault knob feeds run_cmdlet's read_lag.
        self._read_lag = seconds
        if seconds:
            self.tenant.faults(read_lag=seconds)
        else:
            self.tenant.clear_faults()


# Tenant configuration keys that POST /_emulator/tenants does not take: such tenants are made directly.
_DIRECT_ONLY = {"transport_rules", "default_domain", "objects"}


@pytest.fixture
def tenant_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., DirectTenant | HttpTenant]:
    def make(
        *, settings: dict[str, Any] | None = None, config: dict[str, Any] | None = None
    ) -> DirectTenant | HttpTenant:
        if set(config or {}) & _DIRECT_ONLY:
            return make_direct_tenant(tmp_path, settings=settings, config=config)
        factory = request.getfixturevalue("emulator_tenant_factory")
        return HttpTenant(factory(settings=settings or None))

    return make
