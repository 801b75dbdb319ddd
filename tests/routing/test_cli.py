"""``mailflow route`` through click's CliRunner on stack files written to tmp_path.

Matrix: outbound by stack name (stacks/NAME.yaml under the working directory) and by file path, text and JSON;
inbound by IP and by certificate with relay allowed and refused; warnings shown with file:line; usage errors
(no target, both directions, --sender alone, bad IP) and an invalid or missing stack exit 1 or 2 with a message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from o365_mailflow.cli import main

HYBRID = """\
tenant:
  emulator: true
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
  - domainName: sales.contoso.com
  - domainName: fabrikam.com
inboundConnectors:
  - name: printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
  - name: exchange
    connectorType: OnPremises
    senderDomains: ["*"]
    requireTls: true
    tlsSenderCertificateName: mail.contoso.com
outboundConnectors:
  - name: C1 all accepted domains
    connectorType: OnPremises
    allAcceptedDomains: true
    useMxRecord: false
    smartHosts: [onprem.contoso.com]
  - name: C2 contoso
    connectorType: OnPremises
    recipientDomains: [contoso.com]
    useMxRecord: false
    smartHosts: [hub.contoso.com]
  - name: C3 wildcard
    recipientDomains: ["*.contoso.com"]
  - name: disabled
    enabled: false
    recipientDomains: [example.org]
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "hybrid.yaml").write_text(HYBRID, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILFLOW_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["route", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("recipient", "route", "connector"),
    [
        ("a@fabrikam.com", "outbound connector C1 all accepted domains", "C1 all accepted domains"),
        ("a@contoso.com", "unknown recipients via C2 contoso", "C2 contoso"),
        ("a@sales.contoso.com", "outbound connector C3 wildcard", "C3 wildcard"),
        ("a@example.org", "MX delivery", None),
    ],
    ids=["all-accepted-domains", "internal-relay-exact", "wildcard", "disabled-connector-ignored-mx"],
)
def test_outbound_route_names_the_connector_and_why(project: Path, recipient: str, route: str,
                                                     connector: str | None) -> None:
    code, out, err = run("--stack", "hybrid", recipient)
    assert code == 0, err
    assert route in out
    assert "Why:" in out
    code, out, err = run("--stack", "hybrid", recipient, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["decision"]["connector"] == connector


def test_a_stack_file_path_works_as_well_as_a_name(project: Path) -> None:
    code, out, _ = run("--stack", str(project / "stacks" / "hybrid.yaml"), "a@sales.contoso.com", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["stack"] == "hybrid" and data["source"] == "stack"
    assert data["decision"]["match"] == "wildcard"
    assert {c["name"]: c["outcome"] for c in data["decision"]["connectors"]}["disabled"] == "skipped"


@pytest.mark.parametrize(
    ("args", "connector", "relay"),
    [
        (["--from-ip", "203.0.113.10", "--sender", "app@contoso.com"], "printers", True),
        (["--from-ip", "203.0.113.10", "--sender", "app@gmail.com"], "printers", False),
        (["--from-ip", "203.0.113.10"], "printers", None),
        (["--cert-subject", "mail.contoso.com"], "exchange", True),
        (["--from-ip", "192.0.2.1", "--sender", "app@contoso.com"], None, False),
    ],
    ids=["ip-accepted-mail-from", "ip-foreign-mail-from", "ip-no-mail-from", "certificate", "unknown-ip"],
)
def test_inbound_route_names_the_connector_and_the_relay_verdict(project: Path, args: list[str],
                                                                 connector: str | None, relay: bool | None) -> None:
    code, out, err = run("--stack", "hybrid", *args, "--format", "json")
    assert code == 0, err
    decision = json.loads(out)["decision"]
    assert (decision["connector"], decision["relayAllowed"]) == (connector, relay)


def test_inbound_text_output_says_allowed_or_refused(project: Path) -> None:
    code, out, _ = run("--stack", "hybrid", "--from-ip", "203.0.113.10", "--sender", "app@gmail.com")
    assert code == 0
    assert "Connector:  OnPremises inbound connector printers" in out
    assert "Relay:      refused" in out and "5.7.64" in out


def test_warnings_are_shown_with_file_and_line(project: Path) -> None:
    code, out, _ = run("--stack", "hybrid", "a@contoso.com")
    assert code == 0
    assert "Warnings:" in out
    assert "hybrid.yaml:10: warning: inboundConnectors[0].connectorType:" in out  # the SPF hint on the relay
    code, out, _ = run("--stack", "hybrid", "a@contoso.com", "--format", "json")
    codes = {w["code"] for w in json.loads(out)["warnings"]}
    assert "routing.relay-spf-hint" in codes and "routing.internal-relay-uncovered" not in codes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a RECIPIENT"),
        (["a@contoso.com", "--tls"], "--tls goes with"),
        (["a@contoso.com", "--sender", "b@contoso.com"], "--sender goes with"),
        (["--from-ip", "2001:db8::1"], "IPv4"),
        (["user@"], "no domain"),
    ],
    ids=["nothing-to-route", "tls-without-a-connection", "sender-without-inbound", "ipv6", "address-without-domain"],
)
def test_usage_errors_exit_2_with_a_message(project: Path, args: list[str], message: str) -> None:
    code, _, err = run("--stack", "hybrid", *args)
    assert code == 2
    assert message in err


def test_a_missing_stack_exits_1(project: Path) -> None:
    code, _, err = run("--stack", "nope", "a@contoso.com")
    assert code == 1 and "does not exist" in err


def test_an_invalid_stack_exits_1_with_its_errors(project: Path) -> None:
    (project / "stacks" / "bad.yaml").write_text(
        "tenant:\n  emulator: true\noutboundConnectors:\n  - name: x\n    recipientDomain: [contoso.com]\n",
        encoding="utf-8")
    code, _, err = run("--stack", "bad", "a@contoso.com")
    assert code == 1
    assert "bad.yaml:5" in err and "recipientDomain" in err
