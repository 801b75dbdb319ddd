"""The Pulumi program (``__main__.py``) under ``pulumi.runtime.set_mocks``: what it registers with the engine.

Matrix:
- stacks/dev.yaml and stacks/prod.yaml: resource types (own type tokens), names, inputs, dependencies
  (every connector after every accepted domain but an InternalRelay one, which waits for the OnPremises outbound
  connectors), stack outputs (connector ids, MX endpoints, SPF);
- a stack with centralized transport: the outbound connector depends on the OnPremises inbound connector;
- a declared null travels as ``declaredNulls`` (Pulumi drops None-valued inputs);
- a bad stack file fails the program with the loader's file:line diagnostics (routing warnings are warnings); so does a stack file naming
  another tenant than the Pulumi config;
- the ``__provider`` input of every resource is the pickled, empty provider class (no config, no secret);
- the resources from any program, with the typed, spec-built Args (snake_case -> camelCase inputs, outputs).

Mocks replace the engine, so no provider method runs here (see test_engine_protocol.py for that).
"""

from __future__ import annotations

import base64
import logging
import runpy
from pathlib import Path

import pulumi
import pytest

from .mocks import TOKEN, run_program

ROOT = Path(__file__).resolve().parents[2]


def _main() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_declares_every_object_of_the_stack_file_with_its_own_type_token(
    monkeypatch: pytest.MonkeyPatch, stack: str
) -> None:
    registered, outputs = run_program(monkeypatch, stack, _main)

    assert sorted(registered) == sorted([
        (TOKEN + "AcceptedDomain", "contoso.com"),
        (TOKEN + "AcceptedDomain", "sales.contoso.com"),
        (TOKEN + "AcceptedDomain", "fabrikam.com"),
        (TOKEN + "InboundConnector", "relay from office printers and apps"),
        (TOKEN + "InboundConnector", "relay from on-premises exchange (certificate)"),
        (TOKEN + "OutboundConnector", "to on-premises exchange"),
    ])
    relay = registered[(TOKEN + "InboundConnector", "relay from office printers and apps")]["inputs"]
    assert relay["connectorType"] == "OnPremises"
    assert relay["senderIpAddresses"] == ["198.51.100.0/28", "203.0.113.10", "203.0.113.11"]  # normalised set
    assert relay["senderDomains"] == ["*"]
    outbound = registered[(TOKEN + "OutboundConnector", "to on-premises exchange")]["inputs"]
    assert outbound["smartHosts"] == ["mail.contoso.com"]
    assert outbound["tlsSettings"] == "DomainValidation"
    assert outbound["useMxRecord"] is False
    contoso = registered[(TOKEN + "AcceptedDomain", "contoso.com")]["inputs"]
    assert contoso["domainType"] == "InternalRelay" and contoso["matchSubDomains"] is False
    # Undeclared fields are not inputs: they are not managed.
    assert "enabled" not in relay and "testMode" not in outbound

    # Connectors wait for the accepted domains, except the InternalRelay one (contoso.com), which waits for the
    # OnPremises outbound connector that routes its mail.
    domains = {"sales.contoso.com", "fabrikam.com"}
    for (type_token, name), entry in registered.items():
        if type_token.endswith("Connector"):
            assert domains <= entry["deps"] and "contoso.com" not in entry["deps"], name
        elif name == "contoso.com":
            assert entry["deps"] == {"to on-premises exchange"}
        else:
            assert entry["deps"] == set()

    assert set(outputs["inboundConnectorIds"]) == {
        "Relay from office printers and apps", "Relay from on-premises Exchange (certificate)"}
    assert outputs["outboundConnectorIds"] == {"To on-premises Exchange": "to on-premises exchange-id"}
    assert outputs["mxEndpoints"]["contoso.com"] == "contoso-com.mail.protection.outlook.com"
    assert outputs["acceptedDomains"]["sales.contoso.com"]["mxEndpoint"] == "sales-contoso-com.mail.protection.outlook.com"
    assert "include:spf.protection.outlook.com" in outputs["spfRecord"]
    assert "ip4:203.0.113.10" in outputs["spfRecord"]


HYBRID = """\
tenant:
  emulator: true
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
inboundConnectors:
  - name: From on-premises
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
  - name: From partner
    connectorType: Partner
    senderDomains: [fabrikam.com]
outboundConnectors:
  - name: Centralized transport
    connectorType: OnPremises
    recipientDomains: ["*"]
    routeAllMessagesViaOnPremises: true
    useMxRecord: false
    smartHosts: [mail.contoso.com]
  - name: To partner
    recipientDomains: [fabrikam.com]
    tlsSettings: null
"""


def test_centralized_transport_waits_for_the_on_premises_inbound_connector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "hybrid.yaml").write_text(HYBRID, encoding="utf-8")
    from o365_mailflow.providers.program import run

    registered, _ = run_program(monkeypatch, "hybrid", lambda: run(tmp_path))

    central = registered[(TOKEN + "OutboundConnector", "centralized transport")]
    assert central["deps"] == {"from on-premises"}
    partner = registered[(TOKEN + "OutboundConnector", "to partner")]
    assert partner["deps"] == set()
    # The InternalRelay domain waits for the OnPremises outbound connector that routes its mail, not the reverse.
    assert registered[(TOKEN + "AcceptedDomain", "contoso.com")]["deps"] == {"centralized transport"}
    # tlsSettings: null is declared (opportunistic TLS) although Pulumi drops None-valued inputs.
    assert partner["inputs"]["declaredNulls"] == ["tlsSettings"]
    assert "tlsSettings" not in partner["inputs"]


def test_a_bad_stack_file_fails_the_program_with_file_line_and_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "bad.yaml").write_text(
        "tenant:\n  emulator: true\ninboundConnectors:\n  - name: X\n    senderDomains: ['*']\n"
        "    senderIpAddresses: [10.0.0.1]\n", encoding="utf-8")
    from o365_mailflow.providers.program import run

    with pytest.raises(pulumi.RunError) as info:
        run_program(monkeypatch, "bad", lambda: run(tmp_path))
    message = str(info.value)
    assert "bad.yaml:6" in message and "senderIpAddresses[0]" in message


def test_every_resource_carries_only_the_empty_provider_class_in_its_provider_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered, _ = run_program(monkeypatch, "dev", _main)
    for (type_token, name), entry in registered.items():
        pickled = base64.b64decode(entry["inputs"]["__provider"])
        type_name = type_token.rsplit(":", 1)[1]
        assert b"o365_mailflow.providers.base" in pickled
        assert f"{type_name}Provider".encode() in pickled
        # A class reference and an empty instance: nothing else (no config, settings, client or session).
        assert len(pickled) < 120, (name, pickled)


def test_the_resources_work_from_any_program_with_typed_args(monkeypatch: pytest.MonkeyPatch) -> None:
    from o365_mailflow.providers import (
        InboundConnector,
        InboundConnectorArgs,
        OutboundConnector,
        OutboundConnectorArgs,
    )

    def program() -> None:
        relay = InboundConnector("relay", InboundConnectorArgs(
            name="Relay", connector_type="OnPremises", sender_domains=["*"], sender_ip_addresses=["203.0.113.1"],
            adopt=True))
        OutboundConnector("out", OutboundConnectorArgs(name="Out", recipient_domains=["fabrikam.com"],
                                                       tls_settings=None),
                          pulumi.ResourceOptions(depends_on=[relay]))
        pulumi.export("relayGuid", relay.guid)

    registered, outputs = run_program(monkeypatch, "dev", program)

    relay = registered[(TOKEN + "InboundConnector", "relay")]["inputs"]
    assert {k: v for k, v in relay.items() if k != "__provider"} == {
        "name": "Relay", "connectorType": "OnPremises", "senderDomains": ["*"],
        "senderIpAddresses": ["203.0.113.1"], "adopt": True}
    out = registered[(TOKEN + "OutboundConnector", "out")]
    assert out["inputs"]["declaredNulls"] == ["tlsSettings"] and "useMxRecord" not in out["inputs"]
    assert out["deps"] == {"relay"}
    assert outputs["relayGuid"] == "relay-id"
    with pytest.raises(TypeError):
        InboundConnectorArgs(name="x", sender_ip_adresses=["203.0.113.1"])  # type: ignore[call-arg]


def test_a_stack_file_for_another_tenant_than_the_pulumi_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pulumi.runtime.set_all_config({"o365-mailflow:tenantId": "11111111-2222-4333-8444-555555555555"})
    try:
        with pytest.raises(pulumi.RunError) as info:
            run_program(monkeypatch, "prod", _main)
    finally:
        pulumi.runtime.set_all_config({})
    assert "00000000-0000-0000-0000-000000000000" in str(info.value)
    assert "o365-mailflow:tenantId" in str(info.value)


def test_routing_warnings_of_the_stack_file_are_shown_as_pulumi_warnings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "warn.yaml").write_text(
        "tenant:\n  emulator: true\nacceptedDomains:\n  - domainName: contoso.com\n    domainType: InternalRelay\n",
        encoding="utf-8")
    from o365_mailflow.providers.program import run

    with caplog.at_level(logging.WARNING):
        registered, _ = run_program(monkeypatch, "warn", lambda: run(tmp_path))
    assert (TOKEN + "AcceptedDomain", "contoso.com") in registered  # a warning does not stop the program
    assert any("warn.yaml:5" in r.getMessage() and "not covered by any enabled OnPremises outbound connector"
               in r.getMessage() for r in caplog.records)
