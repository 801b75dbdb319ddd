"""Shared helpers for the cmdlet tests: a fresh emulated tenant per test, driven through one ``invoke``.

Why: the same accept/reject and shape cases must run against ``run_cmdlet`` on a store in ``tmp_path`` (fast,
no server) and over HTTPS to the emulator. ``tenant_factory`` hides which; a ``Reply`` is what the HTTP layer
answers: the status and the JSON body (``None`` for the 403 NUL-byte body).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from o365_mailflow.emulator.cmdlets import UnknownCmdlet, run_cmdlet
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
    return DirectTenant(store, tenant_id, Settings().with_overrides(settings))


@pytest.fixture
def tenant_factory(tmp_path: Path) -> Callable[..., DirectTenant]:
    def make(*, settings: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> DirectTenant:
        return make_direct_tenant(tmp_path, settings=settings, config=config)

    return make
