"""Reading the tenant for a plan: the caller's work goes on while the list calls are on the network (issue #16).

Over HTTPS to the emulated tenant: ``start_snapshot`` returns while a listing is still unanswered; the snapshot
is the one a plain read gives, in the registered type order; the requests are the same ones in the same order,
one at a time; a failed type stops the read there (later types are not requested) and is reported as
:class:`SnapshotError`; an error that is not the service's (a bug) reaches the caller unchanged.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import pytest

from o365_mailflow.client import ExoClient, RetryPolicy
from o365_mailflow.credentials import ClientSecret
from o365_mailflow.errors import Throttled
from o365_mailflow.snapshot import SnapshotError, start_snapshot, take_snapshot
from o365_mailflow.specs import SPECS


def _client(tenant: Any) -> ExoClient:
    return ExoClient(tenant.config, ClientSecret(tenant.client_id, tenant.client_secret),
                     retry=RetryPolicy(sleep=lambda _s: None))


def _seed(client: ExoClient) -> None:
    for n in range(3):
        client.new("InboundConnector", {"Name": f"Partner {n}", "ConnectorType": "Partner",
                                        "SenderDomains": [f"p{n}.example.com"]})
    client.new("OutboundConnector", {"Name": "To partner", "ConnectorType": "Partner", "UseMXRecord": True,
                                     "RecipientDomains": ["partner.example.com"]})


class _Held:
    """A client whose list calls wait until the test lets them through (and record the thread they ran on)."""

    def __init__(self, client: ExoClient) -> None:
        self.client = client
        self.stats = client.stats
        self.release = threading.Event()
        self.entered = threading.Event()
        self.threads: list[str] = []

    def list(self, noun: str) -> Sequence[dict[str, Any]]:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(30), "the test never released the listing"
        return self.client.list(noun)


def _invokes(tenant: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(r["cmdlet"], r["parameters"]) for r in tenant.requests() if r.get("kind") == "invoke"]


def test_start_snapshot_returns_while_the_tenant_has_not_answered(emulator_tenant: Any) -> None:
    client = _client(emulator_tenant)
    _seed(client)
    held = _Held(client)
    reading = start_snapshot(held)  # must not wait for the held listing
    assert held.entered.wait(30)
    assert held.threads == ["snapshot"]  # the caller's thread is free
    held.release.set()
    snapshot = reading.result()
    assert list(snapshot.objects) == [spec.type_name for spec in SPECS.values()]
    assert reading.result() is snapshot  # asking twice reads nothing again

    plain = take_snapshot(client)
    for type_name, objects in plain.objects.items():
        assert [(o.name, o.fields) for o in objects] == [(o.name, o.fields) for o in snapshot.objects[type_name]]
    assert {o.name for o in snapshot.of_type("InboundConnector")} >= {"Partner 0", "Partner 1", "Partner 2"}


def test_the_requests_are_the_same_ones_in_the_same_order(emulator_tenant: Any) -> None:
    client = _client(emulator_tenant)
    _seed(client)
    client.list("AcceptedDomain")  # sign in first
    emulator_tenant.clear_requests()
    snapshot = take_snapshot(client)
    expected = []
    for spec in SPECS.values():
        expected.append((f"Get-{spec.noun}", {"ResultSize": "Unlimited"}))
        if spec.noun == "OutboundConnector":
            expected.append((f"Get-{spec.noun}", {"ResultSize": "Unlimited", "IncludeTestModeConnectors": True}))
    assert _invokes(emulator_tenant) == expected
    assert snapshot.requests == len(expected)


@pytest.mark.parametrize("failing", [spec.noun for spec in SPECS.values()])
def test_a_failed_type_stops_the_read_and_names_the_type(emulator_tenant: Any, failing: str) -> None:
    client = _client(emulator_tenant)
    client.list("AcceptedDomain")  # sign in first: only InvokeCommand requests are faulted
    emulator_tenant.clear_requests()
    emulator_tenant.faults(error_next=50, cmdlets=[f"Get-{failing}"])
    reading = start_snapshot(client)
    with pytest.raises(SnapshotError) as info:
        reading.result()
    with pytest.raises(SnapshotError) as again:  # asked again: the same error, not a wait for answers never sent
        reading.result()
    assert again.value is info.value
    spec = next(s for s in SPECS.values() if s.noun == failing)
    assert info.value.type_name == spec.type_name
    assert isinstance(info.value.cause, Throttled)
    order = [s.noun for s in SPECS.values()]
    requested = [cmdlet for cmdlet, _ in _invokes(emulator_tenant)]
    assert not {f"Get-{noun}" for noun in order[order.index(failing) + 1:]} & set(requested), requested
    assert f"Get-{failing}" in requested


class _Broken:
    stats = None

    def list(self, noun: str) -> Sequence[dict[str, Any]]:
        raise KeyError(noun)


def test_an_error_that_is_not_the_services_reaches_the_caller_unchanged() -> None:
    reading = start_snapshot(_Broken())
    with pytest.raises(KeyError) as info:
        reading.result()
    assert info.value.args == (next(iter(SPECS.values())).noun,)


def test_one_type_is_read_on_the_callers_thread(emulator_tenant: Any) -> None:
    # The Pulumi providers read one type when a resource first needs it: no thread for that.
    held = _Held(_client(emulator_tenant))
    held.release.set()
    spec = next(iter(SPECS.values()))
    snapshot = start_snapshot(held, [spec]).result()
    assert held.threads == [threading.current_thread().name]
    assert list(snapshot.objects) == [spec.type_name]
