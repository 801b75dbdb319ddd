"""The providers when the tenant misbehaves, through the engine protocol (emulator fault knobs).

Matrix:
- a list call that fails (HTTP 500) makes Diff and Read fail: never "absent", so no recreate and no write;
- read-after-write lag (a new connector invisible for a while): Create still returns the Guid and the values;
- throttling (429 with Retry-After) during a preview: retried, the diff is still right;
- a token endpoint 503 (issue #14): retried with the same policy, the preview is still right.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from .host import INBOUND, RELAY, Pulumi, Res, writes


def test_a_failed_list_fails_diff_and_read_instead_of_reading_the_connector_as_gone(
    pulumi: Pulumi, emulator_tenant: Any
) -> None:
    relay = Res(INBOUND, "relay", RELAY)
    pulumi.up(relay)
    emulator_tenant.faults(error_status=500, error_rate=1.0, cmdlets=["Get-InboundConnector"])
    emulator_tenant.clear_requests()
    pulumi.restart()
    with pytest.raises(grpc.RpcError) as diff_error:
        pulumi.preview(relay)
    with pytest.raises(grpc.RpcError) as read_error:
        pulumi.refresh(relay)
    for error in (diff_error, read_error):
        assert "never taken to mean the objects are absent" in (error.value.details() or "")
    assert writes(emulator_tenant) == []
    emulator_tenant.clear_faults()
    pulumi.restart()
    assert pulumi.preview(relay).none


def test_create_waits_out_read_after_write_lag(pulumi: Pulumi, emulator_tenant: Any) -> None:
    emulator_tenant.faults(read_lag=1.5)
    relay = Res(INBOUND, "relay", RELAY)
    assert pulumi.up(relay) == ["create"]
    assert relay.id and relay.outputs["guid"] == relay.id
    assert relay.outputs["senderIpAddresses"] == ["198.51.100.0/28", "203.0.113.10"]


def test_a_throttled_preview_is_retried_and_still_right(pulumi: Pulumi, emulator_tenant: Any) -> None:
    relay = Res(INBOUND, "relay", RELAY)
    pulumi.up(relay)
    emulator_tenant.faults(throttle_next=1, retry_after=0.2)
    pulumi.restart()
    assert pulumi.preview(relay).none
    statuses = [e.get("status") for e in emulator_tenant.requests()]
    assert 429 in statuses


def test_a_token_endpoint_503_during_a_preview_is_retried(pulumi: Pulumi, emulator_tenant: Any) -> None:
    relay = Res(INBOUND, "relay", RELAY)
    pulumi.up(relay)
    pulumi.restart()  # a fresh host process: its first call asks Entra for a token
    emulator_tenant.faults(token_error_next=1, error_status=503)
    assert pulumi.preview(relay).none
    assert [t["status"] for t in emulator_tenant.requests("token")][-2:] == [503, 200]
