"""Mail flow rehearsed over real SMTP sockets against the emulated tenant's front door (smtplib as the client).

Matrix, per seed scenario (stacks applied with `mailflow apply`, then mail sent):
- IP relay from a printer: allowed with an accepted-domain sender (delivered to the internet), refused with a
  foreign sender (550 5.7.64 ATTR36), refused from an unknown IP (550 5.7.64 TenantAttribution);
- certificate relay from an on-premises server: a client certificate issued by the emulator's CA, presented after
  STARTTLS, relays even a foreign sender; a certificate whose name no connector lists is refused;
- Partner connector restrictions: RequireTls without STARTTLS (451 5.7.3), RestrictDomainsToIPAddresses from
  another IP (550 5.7.51); a banned IP (550 5.7.606);
- the tenant's own mail: a mailbox is delivered, an unknown recipient of an Authoritative domain is refused
  (550 5.4.1), an unknown recipient of an InternalRelay domain reaches the on-premises smart host (a local
  sink) through the outbound connector `mailflow route` names (routing worked example: fabrikam.com,
  contoso.com, sales.contoso.com);
- a stack change applied, then the same relay re-tested with `mailflow test-relay` against the same emulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from smtp_helpers import FrontDoor, Sink

def _last_recipient(door: FrontDoor) -> dict[str, Any]:
    return dict(door.messages()[-1]["recipients"][-1])


@pytest.fixture
def hybrid(project: Any, front_door: FrontDoor, hybrid_stack: str) -> FrontDoor:
    project.write_stack(hybrid_stack)
    project.apply()
    return front_door


@pytest.mark.parametrize(
    ("source_ip", "sender", "reply", "code", "outcome"),
    [
        ("203.0.113.10", "scanner@contoso.com", (250, "2.6.0"), "accepted.relay-internet", "internet"),
        ("198.51.100.7", "erp@sales.contoso.com", (250, "2.6.0"), "accepted.relay-internet", "internet"),
        ("203.0.113.10", "scanner@example.org", (550, "5.7.64"), "relay.not-accepted-domain", "refused"),
        ("198.51.100.99", "scanner@contoso.com", (550, "5.7.64"), "relay.not-attributed", "refused"),
        (None, "someone@example.org", (550, "5.7.1"), "relay.denied", "refused"),
    ],
    ids=["printer-accepted-sender-relays", "printer-in-cidr-relays", "printer-foreign-sender-refused-attr36",
         "unknown-ip-refused-tenant-attribution", "anonymous-foreign-sender-unable-to-relay"],
)
def test_ip_relay_from_a_printer(hybrid: FrontDoor, source_ip: str | None, sender: str,
                                 reply: tuple[int, str], code: str, outcome: str) -> None:
    got, text = hybrid.send(sender, "someone@example.net", source_ip=source_ip)
    assert (got, text.split()[0]) == reply
    recorded = _last_recipient(hybrid)
    assert (recorded["code"], recorded["outcome"]) == (code, outcome)
    if outcome == "internet":
        assert recorded["delivery"]["status"] == "internet"
        assert recorded["inbound"]["connector"] == "Printers"


def test_certificate_relay_from_an_on_premises_server(hybrid: FrontDoor, tmp_path: Path) -> None:
    cert = hybrid.certificate("mail.contoso.com", tmp_path)
    code, _ = hybrid.send("app@example.org", "someone@example.net", cert=cert)
    assert code == 250
    recorded = _last_recipient(hybrid)
    assert recorded["inbound"]["connector"] == "Exchange by certificate"
    assert recorded["inbound"]["matchedBy"] == "certificate"
    assert recorded["outcome"] == "internet"

    other = hybrid.certificate("relay.example.net", tmp_path)
    code, text = hybrid.send("app@example.org", "someone@example.net", cert=other)
    assert (code, text.split()[0]) == (550, "5.7.1")
    assert _last_recipient(hybrid)["inbound"]["connector"] is None


@pytest.mark.parametrize(
    ("connect", "reply", "code"),
    [
        ({"source_ip": "192.0.2.5"}, (451, "5.7.3"), "tls.required"),
        ({"source_ip": "203.0.113.99", "starttls": True}, (550, "5.7.51"), "partner.restricted"),
    ],
    ids=["partner-require-tls-without-starttls", "partner-restricted-to-ips-from-another-ip"],
)
def test_partner_connector_restrictions(hybrid: FrontDoor, connect: dict[str, Any], reply: tuple[int, str],
                                        code: str) -> None:
    got, text = hybrid.send("orders@partner.example", "alex@contoso.com", **connect)
    assert (got, text.split()[0]) == reply
    assert _last_recipient(hybrid)["code"] == code


def test_a_banned_ip_is_refused_with_5_7_606(hybrid: FrontDoor) -> None:
    hybrid.http("POST", "/_emulator/smtp/banned-ips", json={"ips": ["203.0.113.66"]})
    try:
        code, text = hybrid.send("scanner@contoso.com", "alex@contoso.com", source_ip="203.0.113.66")
    finally:
        hybrid.http("POST", "/_emulator/smtp/banned-ips", json={"ips": []})
    assert (code, text.split()[0]) == (550, "5.7.606")
    assert "[203.0.113.66]" in text


@pytest.mark.parametrize(
    ("recipient", "reply", "outcome"),
    [
        ("alex@contoso.com", (250, "2.6.0"), "mailbox"),
        ("megan@sales.contoso.com", (250, "2.6.0"), "mailbox"),
        ("nobody@fabrikam.com", (550, "5.4.1"), "refused"),
        ("onprem-user@contoso.com", (250, "2.6.0"), "connector"),
    ],
    ids=["mailbox", "mailbox-in-subdomain", "authoritative-unknown-recipient-dbeb", "internal-relay-to-on-premises"],
)
def test_the_tenants_own_mail(hybrid: FrontDoor, sinks: list[Sink], recipient: str, reply: tuple[int, str],
                              outcome: str) -> None:
    sink = Sink().start()
    sinks.append(sink)
    hybrid.map_smart_hosts({"onprem.contoso.com": sink.port})
    got, text = hybrid.send("someone@example.org", recipient)
    assert (got, text.split()[0]) == reply
    assert _last_recipient(hybrid)["outcome"] == outcome
    assert sink.recipients() == ([recipient] if outcome == "connector" else [])


WORKED_EXAMPLE = """\
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
  - domainName: sales.contoso.com
    domainType: InternalRelay
  - domainName: fabrikam.com
    domainType: InternalRelay
outboundConnectors:
  - name: Connector 1 all accepted domains
    connectorType: OnPremises
    allAcceptedDomains: true
    useMxRecord: false
    smartHosts: [hub1.onprem.example]
  - name: Connector 2 contoso.com
    connectorType: OnPremises
    recipientDomains: [contoso.com]
    useMxRecord: false
    smartHosts: [hub2.onprem.example]
  - name: Connector 3 wildcard contoso.com
    connectorType: OnPremises
    recipientDomains: ["*.contoso.com"]
    useMxRecord: false
    smartHosts: [hub3.onprem.example]
"""


def test_internal_relay_unknown_recipients_reach_the_smart_host_of_the_connector_route_names(
        project: Any, front_door: FrontDoor, sinks: list[Sink]) -> None:
    project.write_stack(WORKED_EXAMPLE)
    project.apply()
    hubs = {f"hub{n}.onprem.example": Sink().start() for n in (1, 2, 3)}
    sinks.extend(hubs.values())
    front_door.map_smart_hosts({name: sink.port for name, sink in hubs.items()})
    for recipient in ("nobody@fabrikam.com", "nobody@contoso.com", "nobody@sales.contoso.com"):
        result = project.runner.invoke(
            __import__("o365_mailflow.cli", fromlist=["main"]).main,
            ["route", "--stack", str(project.root / "stacks" / "test.yaml"), recipient, "--live", "--format", "json"],
            env={**project.tenant.env, "MAILFLOW_STATE_DIR": str(project.root / ".state")}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        decision = json.loads(result.stdout)["decision"]
        code, _ = front_door.send("someone@example.org", recipient)
        assert code == 250
        received = {name for name, sink in hubs.items() if recipient in sink.recipients()}
        assert received == set(decision["smartHosts"]), (recipient, decision["connector"])
        assert _last_recipient(front_door)["connector"] == decision["connector"]
    expected = {"nobody@fabrikam.com": "hub1.onprem.example", "nobody@contoso.com": "hub2.onprem.example",
                "nobody@sales.contoso.com": "hub3.onprem.example"}
    assert {r: next(n for n, s in hubs.items() if r in s.recipients()) for r in expected} == expected


def test_a_stack_change_is_applied_then_the_relay_is_retested(project: Any, front_door: FrontDoor,
                                                              hybrid_stack: str) -> None:
    stack = hybrid_stack.replace("senderIpAddresses: [203.0.113.10, 198.51.100.0/28]",
                                 "senderIpAddresses: [203.0.113.10]")
    project.write_stack(stack)
    project.apply()
    args = ("test-relay", "--stack", "test", "--from", "scanner@contoso.com", "--to", "someone@example.net",
            "--source-ip", "198.51.100.7", "--format", "json")
    before = project.run(*args)
    assert before.exit_code == 2, before.output
    refused = json.loads(before.stdout)
    assert refused["result"]["reply"].startswith("550 5.7.64")
    assert refused["explanation"]["code"] == "relay.not-attributed"
    assert "198.51.100.7" in refused["explanation"]["fix"] and "Printers" in refused["explanation"]["fix"]
    assert refused["explanation"]["agrees"] is True

    project.write_stack(stack.replace("senderIpAddresses: [203.0.113.10]",
                                      "senderIpAddresses: [203.0.113.10, 198.51.100.7]"))
    project.apply()
    after = project.run(*args)
    assert after.exit_code == 0, after.output
    accepted = json.loads(after.stdout)
    assert accepted["result"]["outcome"] == "accepted"
    assert accepted["explanation"]["inbound"]["connector"] == "Printers"
    assert [m["sourceIp"] for m in front_door.messages()] == ["198.51.100.7", "198.51.100.7"]
