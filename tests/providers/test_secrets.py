"""No configured secret reaches Pulumi state: not in the pickled ``__provider`` of any resource, not in any
serialized input or output, not in an error message, through a whole lifecycle over the engine protocol."""

from __future__ import annotations

import base64
from typing import Any

import grpc
import pytest

from .host import CONTOSO, DOMAIN, INBOUND, RELAY, Pulumi, Res


def test_no_configured_secret_reaches_the_provider_blob_or_any_input_or_output(
    pulumi: Pulumi, emulator_tenant: Any
) -> None:
    secret = pulumi.config["clientSecret"]
    assert secret
    domain, relay = Res(DOMAIN, "contoso.com", CONTOSO), Res(INBOUND, "relay", RELAY)
    pulumi.up(domain, relay)
    relay.program = {**RELAY, "comment": "v2"}
    pulumi.up(domain, relay)
    pulumi.refresh(relay)
    with pytest.raises(grpc.RpcError) as info:  # an error message must not quote it either
        pulumi.up(Res(INBOUND, "dup", {**RELAY, "comment": "different"}))
    assert secret not in (info.value.details() or "")
    pulumi.destroy(relay)
    pulumi.destroy(domain)

    providers: set[str] = set()
    for host in pulumi.hosts:
        for method, request, reply in host.transcript:
            if method != "Configure":  # the engine hands the config to the host there, by design
                assert secret.encode() not in request, method
            assert secret.encode() not in reply, method
        for res in (domain, relay):
            for props in (res.inputs, res.outputs):
                if "__provider" in props:
                    providers.add(props["__provider"])
    assert len(providers) == 2
    for blob in providers:
        decoded = base64.b64decode(blob)
        assert secret.encode() not in decoded
        assert emulator_tenant.tenant_id.encode() not in decoded  # no config at all, not even the tenant
