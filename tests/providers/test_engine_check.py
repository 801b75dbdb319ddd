"""Check through the engine protocol: validation failures with property paths, normalised inputs, unknowns.

Check runs before anything reaches the tenant (``pulumi preview`` of a bad stack fails here), so one offline
host serves every case. Matrix: value kinds (private IP, bad enum, smart host with a port), unknown field with a
suggestion, required field, cross-field rules (OnPremises inbound without IP or certificate, matchSubDomains on an
Authoritative domain), normalisation (case, duplicates), declared nulls, unknown values during preview; a stack
config that cannot name a tenant (unknown cloud, no tenant in config or environment) fails with the key to set.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from .host import DOMAIN, INBOUND, OUTBOUND, RELAY, SERIALIZED, TO_ONPREM, UNKNOWN, Host

CHECK_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("private-ip", INBOUND, {**RELAY, "senderIpAddresses": ["203.0.113.10", "10.1.2.3"]},
     "senderIpAddresses[1]", "private"),
    ("unknown-field", INBOUND, {**RELAY, "senderIpAdresses": ["203.0.113.10"]}, "senderIpAdresses", "did you mean"),
    ("bad-enum", OUTBOUND, {**TO_ONPREM, "tlsSettings": "Strict"}, "tlsSettings", "unknown value"),
    ("onprem-needs-ip-or-cert", INBOUND, {"name": "x", "connectorType": "OnPremises", "senderDomains": ["*"]},
     "connectorType", "senderIpAddresses or tlsSenderCertificateName"),
    ("smart-host-with-port", OUTBOUND, {**TO_ONPREM, "smartHosts": ["mail.contoso.com:25"]}, "smartHosts[0]", ""),
    ("required-sender-domains", INBOUND, {"name": "x", "senderIpAddresses": ["203.0.113.1"]}, "senderDomains",
     "required"),
    ("match-subdomains-authoritative", DOMAIN, {"domainName": "contoso.com", "domainType": "Authoritative", "matchSubDomains": True},
     "matchSubDomains", "InternalRelay"),
]


@pytest.mark.parametrize(("type_name", "program", "path", "words"),
                         [c[1:] for c in CHECK_CASES], ids=[c[0] for c in CHECK_CASES])
def test_check_reports_failures_with_property_paths(
    offline_host: Host, type_name: str, program: dict[str, Any], path: str, words: str
) -> None:
    _, failures = offline_host.check(type_name, "x", program)
    assert path in [p for p, _ in failures], failures
    assert words in " ".join(r for p, r in failures if p == path)


def test_check_returns_normalised_inputs_and_tolerates_unknown_values(offline_host: Host) -> None:
    inputs, failures = offline_host.check(OUTBOUND, "x", {
        "name": "Out", "connectorType": "onpremises", "recipientDomains": ["Contoso.COM", "contoso.com"],
        "useMxRecord": False, "smartHosts": [UNKNOWN], "tlsSettings": None, "declaredNulls": ["tlsSettings"]})
    assert failures == []
    assert inputs["connectorType"] == "OnPremises" and inputs["recipientDomains"] == ["contoso.com"]
    assert inputs["declaredNulls"] == ["tlsSettings"]
    assert type(inputs["smartHosts"][0]).__name__ == "Unknown"  # passed through for the engine to resolve later




@pytest.mark.parametrize(("config", "env", "words"), [
    ({"tenantId": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f", "cloud": "mars"}, {}, "allowed: commercial, gcchigh"),
    ({"clientId": "0e0e0e0e-1111-4222-8333-444444444444"}, {"AZURE_TENANT_ID": ""},
     "o365-mailflow:tenantId"),
], ids=["unknown-cloud", "no-tenant-anywhere"])
def test_a_stack_config_that_names_no_usable_tenant_fails_with_the_key_to_set(
    config: dict[str, str], env: dict[str, str], words: str
) -> None:
    with Host(env=env) as host:
        host.configure(config)
        with pytest.raises(grpc.RpcError) as info:
            host.diff(INBOUND, "x", "00000000-0000-0000-0000-000000000001", {},
                      {**RELAY, "__provider": SERIALIZED[INBOUND]})
    assert words in (info.value.details() or "")
