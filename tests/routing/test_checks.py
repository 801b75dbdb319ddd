"""Hybrid mail-flow warnings and DNS guidance (issue #7; exo-cmdlets.md §2.3, §4.2 rule 6, §6.4, §10).

Matrix: for every warning code, a stack that triggers it and one that does not (loaded through the real stack
loader, so the checks see declared fields over the service defaults); warnings carry file, line and a field path
and say what to change; ``check_objects`` gives the same codes on plain dicts; ``guidance`` gives the MX endpoint
per accepted domain and the SPF record.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from o365_mailflow.errors import Severity
from o365_mailflow.routing import check_objects, check_stack, guidance
from o365_mailflow.stack import load_stack_text


def out_onprem(name: str, *domains: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "connectorType": "OnPremises", "useMxRecord": False,
                            "smartHosts": ["mail.contoso.com"]}
    if domains:
        body["recipientDomains"] = list(domains)
    return {**body, **fields}


def in_onprem(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "connectorType": "OnPremises", "senderDomains": ["*"], **fields}


def in_partner(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "connectorType": "Partner", "senderDomains": ["partner.example"], **fields}


RELAY = "routing.internal-relay-uncovered"
SUBDOMAINS = "routing.match-subdomains-without-wildcard"
CERT = "routing.certificate-not-accepted-domain"
OVERLAP = "routing.sender-ip-overlap"
RESTRICT = "routing.restrict-on-onpremises"
TWICE = "routing.recipient-domain-claimed-twice"
SPF = "routing.relay-spf-hint"

IR = {"domainName": "contoso.com", "domainType": "InternalRelay"}
IR_SUB = {**IR, "matchSubDomains": True}

# id, code, stack body, triggers?
CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    ("internal-relay-without-connector", RELAY, {"acceptedDomains": [IR]}, True),
    ("internal-relay-with-partner-connector-only", RELAY,
     {"acceptedDomains": [IR], "outboundConnectors": [{"name": "p", "recipientDomains": ["contoso.com"]}]}, True),
    ("internal-relay-with-disabled-connector", RELAY,
     {"acceptedDomains": [IR], "outboundConnectors": [out_onprem("o", "contoso.com", enabled=False)]}, True),
    ("internal-relay-covered-by-exact-domain", RELAY,
     {"acceptedDomains": [IR], "outboundConnectors": [out_onprem("o", "contoso.com")]}, False),
    ("internal-relay-covered-by-all-accepted-domains", RELAY,
     {"acceptedDomains": [IR], "outboundConnectors": [out_onprem("o", allAcceptedDomains=True)]}, False),
    ("authoritative-domain-needs-no-connector", RELAY, {"acceptedDomains": [{"domainName": "contoso.com"}]}, False),
    ("match-subdomains-without-wildcard", SUBDOMAINS,
     {"acceptedDomains": [IR_SUB], "outboundConnectors": [out_onprem("o", "contoso.com")]}, True),
    ("match-subdomains-with-all-accepted-domains-only", SUBDOMAINS,
     {"acceptedDomains": [IR_SUB], "outboundConnectors": [out_onprem("o", allAcceptedDomains=True)]}, True),
    ("match-subdomains-with-wildcard", SUBDOMAINS,
     {"acceptedDomains": [IR_SUB], "outboundConnectors": [out_onprem("o", "contoso.com", "*.contoso.com")]}, False),
    ("certificate-outside-accepted-domains", CERT,
     {"acceptedDomains": [{"domainName": "contoso.com"}],
      "inboundConnectors": [in_onprem("c", requireTls=True, tlsSenderCertificateName="relay.example.net")]}, True),
    ("certificate-host-in-accepted-domain", CERT,
     {"acceptedDomains": [{"domainName": "contoso.com"}],
      "inboundConnectors": [in_onprem("c", requireTls=True, tlsSenderCertificateName="mail.contoso.com")]}, False),
    ("wildcard-certificate-in-accepted-domain", CERT,
     {"acceptedDomains": [{"domainName": "contoso.com"}],
      "inboundConnectors": [in_onprem("c", requireTls=True, tlsSenderCertificateName="*.contoso.com")]}, False),
    ("overlapping-ips-between-onpremises-connectors", OVERLAP,
     {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.0/24"]),
                            in_onprem("b", senderIpAddresses=["198.51.100.1", "203.0.113.10"])]}, True),
    ("same-ip-twice", OVERLAP,
     {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.10"]),
                            in_onprem("b", senderIpAddresses=["203.0.113.10"])]}, True),
    ("distinct-ips", OVERLAP,
     {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.10"]),
                            in_onprem("b", senderIpAddresses=["203.0.113.11"])]}, False),
    ("overlap-with-a-disabled-connector", OVERLAP,
     {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.10"]),
                            in_onprem("b", senderIpAddresses=["203.0.113.10"], enabled=False)]}, False),
    ("partner-lockdown-sharing-onpremises-ips-is-a-documented-pattern", OVERLAP,
     {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.10"]),
                            in_partner("lock", senderIpAddresses=["203.0.113.10"],
                                       restrictDomainsToIpAddresses=True)]}, False),
    ("restrict-to-ips-on-onpremises", RESTRICT,
     {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.10"], restrictDomainsToIpAddresses=True)]},
     True),
    ("restrict-to-certificate-on-onpremises", RESTRICT,
     {"inboundConnectors": [in_onprem("a", requireTls=True, tlsSenderCertificateName="mail.contoso.com",
                                      restrictDomainsToCertificate=True)]}, True),
    ("restrict-on-partner", RESTRICT,
     {"inboundConnectors": [in_partner("p", senderIpAddresses=["203.0.113.10"], restrictDomainsToIpAddresses=True)]},
     False),
    ("two-connectors-claim-one-domain", TWICE,
     {"outboundConnectors": [out_onprem("a", "contoso.com"), out_onprem("b", "fabrikam.com", "CONTOSO.com")]}, True),
    ("two-all-accepted-domains-connectors", TWICE,
     {"outboundConnectors": [out_onprem("a", allAcceptedDomains=True), out_onprem("b", allAcceptedDomains=True)]},
     True),
    ("distinct-recipient-domains", TWICE,
     {"outboundConnectors": [out_onprem("a", "contoso.com"), out_onprem("b", "fabrikam.com")]}, False),
    ("claim-by-a-disabled-connector", TWICE,
     {"outboundConnectors": [out_onprem("a", "contoso.com"), out_onprem("b", "contoso.com", enabled=False)]}, False),
    ("onpremises-relay-by-ip", SPF, {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.10"])]}, True),
    ("partner-only-is-no-relay", SPF,
     {"inboundConnectors": [in_partner("p", senderIpAddresses=["203.0.113.10"])]}, False),
    ("disabled-relay", SPF,
     {"inboundConnectors": [in_onprem("a", senderIpAddresses=["203.0.113.10"], enabled=False)]}, False),
]


def load(body: dict[str, Any]) -> Any:
    text = yaml.safe_dump({"tenant": {"emulator": True}, **body}, sort_keys=False)
    return load_stack_text(text, file="stacks/test.yaml", name="test")


@pytest.mark.parametrize(("code", "body", "triggers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_warning_fires_exactly_when_its_stack_has_the_problem(code: str, body: dict[str, Any],
                                                                   triggers: bool) -> None:
    diags = check_stack(load(body))
    fired = [d for d in diags if d.code == code]
    assert bool(fired) is triggers, [d.format() for d in diags]
    for d in fired:
        assert d.severity is Severity.WARNING
        assert d.detail, "every warning says what to change"
        assert d.file == "stacks/test.yaml" and d.line


@pytest.mark.parametrize(("code", "body", "triggers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_objects_agrees_with_check_stack(code: str, body: dict[str, Any], triggers: bool) -> None:
    stack = load(body)
    lists = [[dict(o.fields) for o in stack.of_type(t)]
             for t in ("AcceptedDomain", "InboundConnector", "OutboundConnector")]
    diags = check_objects(*lists)
    assert bool([d for d in diags if d.code == code]) is triggers
    assert all(d.file is None for d in diags)
    assert [(d.code, d.path) for d in diags] == [(d.code, d.path) for d in check_stack(stack)]


STACK_TEXT = """\
tenant:
  emulator: true
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
outboundConnectors:
  - name: first
    connectorType: OnPremises
    useMxRecord: false
    smartHosts: [mail.contoso.com]
    recipientDomains: [contoso.com]
  - name: second
    connectorType: OnPremises
    useMxRecord: false
    smartHosts: [mail.contoso.com]
    recipientDomains:
      - fabrikam.com
      - contoso.com
"""


def test_a_warning_points_at_the_file_line_and_field_path() -> None:
    stack = load_stack_text(STACK_TEXT, file="stacks/x.yaml", name="x")
    (twice,) = [d for d in check_stack(stack) if d.code == TWICE]
    assert twice.dotted_path == "outboundConnectors[1].recipientDomains"
    assert (twice.file, twice.line) == ("stacks/x.yaml", 16)
    assert "first" in twice.summary and "Remove contoso.com" in twice.detail
    assert twice.format().startswith("stacks/x.yaml:16: warning: outboundConnectors[1].recipientDomains:")


def test_routing_uses_effective_values_so_an_undeclared_type_is_partner() -> None:
    # connectorType undeclared: the service default (Partner) applies, so this connector cannot carry the
    # InternalRelay path even though it lists the domain.
    diags = check_objects([IR], [], [{"name": "o", "recipientDomains": ["contoso.com"]}])
    assert [d.code for d in diags] == [RELAY]
    assert diags[0].dotted_path == "acceptedDomains[0].domainType"


def test_guidance_gives_an_mx_endpoint_per_accepted_domain_and_the_spf_record() -> None:
    g = guidance(
        [{"domainName": "contoso.com"}, {"domainName": "my-company.co.uk"}, {"domainName": "contoso.onmicrosoft.com"},
         {"domainName": "*.wild.example"}],
        [in_onprem("a", senderIpAddresses=["203.0.113.10", "198.51.100.0/28", "198.51.100.3"]),
         in_onprem("off", senderIpAddresses=["192.0.2.1"], enabled=False),
         in_partner("p", senderIpAddresses=["192.0.2.2"])],
    )
    assert g.mx_endpoints == {"contoso.com": "contoso-com.mail.protection.outlook.com",
                              "my-company.co.uk": "my-company-co-uk.mail.protection.outlook.com"}
    assert g.spf_record == "v=spf1 ip4:198.51.100.0/28 ip4:203.0.113.10 include:spf.protection.outlook.com ~all"
    assert g.to_dict()["spfRecord"] == g.spf_record


def test_guidance_without_relay_ips_still_includes_exchange_online() -> None:
    g = guidance([{"domainName": "contoso.com"}], [])
    assert g.spf_record == "v=spf1 include:spf.protection.outlook.com ~all"


def test_guidance_for_an_empty_stack_has_nothing_to_suggest() -> None:
    g = guidance([], [])
    assert g.mx_endpoints == {} and g.spf_record is None


def test_guidance_follows_the_tenants_cloud() -> None:
    g = guidance([{"domainName": "contoso.com"}], [], cloud="gcchigh")
    assert g.mx_endpoints["contoso.com"] == "contoso-com.mail.protection.office365.us"
    assert g.spf_record == "v=spf1 include:spf.protection.office365.us ~all"


def test_an_adopted_connector_with_undeclared_type_is_not_assumed_partner_offline() -> None:
    # adopt: true manages only the declared fields of an existing connector; its type is whatever the tenant
    # holds, so the offline check must not claim the InternalRelay domain is uncovered.
    body = {"acceptedDomains": [IR],
            "outboundConnectors": [{"name": "existing", "adopt": True, "recipientDomains": ["contoso.com"]}]}
    assert RELAY not in {d.code for d in check_stack(load(body))}
    body["outboundConnectors"][0]["adopt"] = False  # type: ignore[index]
    assert RELAY in {d.code for d in check_stack(load(body))}


def test_the_spf_hint_never_asks_to_publish_a_record_on_the_onmicrosoft_domain() -> None:
    accepted = [{"domainName": "contoso.com"}, {"domainName": "contoso.onmicrosoft.com"}]
    relay = in_onprem("r", senderIpAddresses=["203.0.113.10"])
    (hint,) = [d for d in check_objects(accepted, [relay], []) if d.code == SPF]
    text = hint.format()
    assert "contoso.com" in text and "onmicrosoft" not in text
