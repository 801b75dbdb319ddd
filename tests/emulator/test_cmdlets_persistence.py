"""Emulated tenant state survives a restart and stays consistent under concurrent cmdlets (issue #3 item 7).

Matrix: objects of every type written through the cmdlets are read back, identical, from a new ``Store`` on the
same SQLite file (a restart); many threads creating connectors at once all succeed with distinct objects; two
threads racing for one name yield exactly one connector and one AlreadyExists error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from test_cmdlets_support import DirectTenant, make_direct_tenant

from o365_mailflow.emulator.store import Store


def _values(tenant: DirectTenant, cmdlet: str) -> list[dict[str, Any]]:
    reply = tenant.invoke(cmdlet, {})
    assert reply.status == 200, reply.body
    return reply.body["value"]


def test_every_object_is_kept_across_a_restart(tmp_path: Path) -> None:
    tenant = make_direct_tenant(tmp_path)
    assert tenant.invoke("New-InboundConnector", {"Name": "in", "SenderDomains": "*"}).status == 200
    assert tenant.invoke("New-OutboundConnector", {"Name": "out", "RecipientDomains": "fabrikam.com"}).status == 200
    assert tenant.invoke("Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "InternalRelay"}).status == 200
    before = {c: _values(tenant, c) for c in ("Get-InboundConnector", "Get-OutboundConnector", "Get-AcceptedDomain")}
    tenant.store.close()

    restarted = DirectTenant(Store(tenant.store.path), tenant.tenant_id, tenant.settings)

    after = {c: _values(restarted, c) for c in before}
    assert after == before
    assert restarted.invoke("New-InboundConnector", {"Name": "IN", "SenderDomains": "*"}).status == 400


def test_concurrent_creates_all_land_and_a_name_race_has_one_winner(tmp_path: Path) -> None:
    tenant = make_direct_tenant(tmp_path)
    statuses: list[int] = []
    lock = threading.Lock()

    def create(name: str) -> None:
        reply = tenant.invoke("New-InboundConnector", {"Name": name, "SenderDomains": "*"})
        with lock:
            statuses.append(reply.status)

    threads = [threading.Thread(target=create, args=(f"c{n}",)) for n in range(20)]
    threads += [threading.Thread(target=create, args=("contested",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    names = sorted(c["Name"] for c in _values(tenant, "Get-InboundConnector"))
    assert names == sorted([f"c{n}" for n in range(20)] + ["contested"])
    assert sorted(statuses) == [200] * 21 + [400] * 3


def test_recreating_a_tenant_starts_it_empty_even_after_a_restart(tmp_path: Path) -> None:
    tenant = make_direct_tenant(tmp_path)
    assert tenant.invoke("New-InboundConnector", {"Name": "old", "SenderDomains": "*"}).status == 200
    state = tenant.store.resolve(tenant.tenant_id)
    assert state is not None
    tenant.store.add_tenant(state.tenant_id, state.initial_domain, state.config)
    tenant.store.close()

    restarted = DirectTenant(Store(tenant.store.path), tenant.tenant_id, tenant.settings)

    assert _values(restarted, "Get-InboundConnector") == []
    assert len(_values(restarted, "Get-AcceptedDomain")) == 4
