"""Outbound routing: which connector Exchange Online uses for a recipient (exo-cmdlets.md §10, §6.4).

Matrix (one row per case, ids say what is checked):
- the Microsoft article's worked example: fabrikam.com -> C1 (all accepted domains), contoso.com -> C2 (exact),
  sales.contoso.com -> C3 (*.contoso.com), although the article's list puts "all accepted domains" before wildcards;
- wildcard depth: a deeper wildcard beats a shallower one, whatever the list order;
- exact beats wildcard, wildcard beats allAcceptedDomains, allAcceptedDomains beats a bare *, * beats MX;
- disabled and rule-scoped connectors are ignored;
- InternalRelay: unknown recipients go on-premises through an OnPremises connector, or are undeliverable;
  MatchSubDomains subdomains need *.domain on the connector;
- no connector: MX delivery for foreign domains, the mailbox for Authoritative domains; sendingToDomainDisabled blocks.
"""

from __future__ import annotations

from typing import Any

import pytest

from o365_mailflow.routing import OUTBOUND_PRECEDENCE, route_outbound

ARTICLE_ACCEPTED = [{"domainName": d} for d in ("contoso.com", "sales.contoso.com", "fabrikam.com",
                                                 "contoso.onmicrosoft.com")]


def on_prem(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "connectorType": "OnPremises", "useMxRecord": False, "smartHosts": ["mail.contoso.com"],
            **fields}


def partner(name: str, *domains: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "recipientDomains": list(domains), **fields}


ARTICLE_CONNECTORS = [
    on_prem("C1", allAcceptedDomains=True),
    partner("C2", "contoso.com"),
    partner("C3", "*.contoso.com"),
]


@pytest.mark.parametrize(
    ("recipient", "connector", "match"),
    [
        ("user@fabrikam.com", "C1", "all-accepted-domains"),
        ("user@contoso.com", "C2", "exact"),
        ("user@sales.contoso.com", "C3", "wildcard"),
    ],
    ids=["fabrikam-goes-to-all-accepted-domains-connector", "contoso-goes-to-exact-match",
         "sales-contoso-goes-to-wildcard-not-all-accepted-domains"],
)
def test_the_articles_worked_example_routes_each_domain_to_the_documented_connector(
        recipient: str, connector: str, match: str) -> None:
    decision = route_outbound(recipient, ARTICLE_ACCEPTED, ARTICLE_CONNECTORS)
    assert (decision.path, decision.connector, decision.match) == ("connector", connector, match)
    assert connector in decision.reason


def test_the_precedence_follows_the_worked_example_not_the_articles_list() -> None:
    assert OUTBOUND_PRECEDENCE == ("exact", "wildcard", "all-accepted-domains", "star")


CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], str, str, str | None]] = [
    # id, accepted, outbound, recipient, expected path, expected connector
    ("deeper-wildcard-beats-shallower",
     [], [partner("shallow", "*.contoso.com"), partner("deep", "*.eu.contoso.com")],
     "a@mail.eu.contoso.com", "connector", "deep"),
    ("deeper-wildcard-beats-shallower-in-any-order",
     [], [partner("deep", "*.eu.contoso.com"), partner("shallow", "*.contoso.com")],
     "a@mail.eu.contoso.com", "connector", "deep"),
    ("shallow-wildcard-used-outside-the-deeper-one",
     [], [partner("shallow", "*.contoso.com"), partner("deep", "*.eu.contoso.com")],
     "a@us.contoso.com", "connector", "shallow"),
    ("wildcard-covers-the-domain-itself",
     [], [partner("wild", "*.contoso.com")], "a@contoso.com", "connector", "wild"),
    ("exact-beats-wildcard",
     [], [partner("wild", "*.contoso.com"), partner("exact", "sales.contoso.com")],
     "a@sales.contoso.com", "connector", "exact"),
    ("all-accepted-domains-beats-star",
     [{"domainName": "contoso.com"}],
     [on_prem("star", recipientDomains=["*"], routeAllMessagesViaOnPremises=True), on_prem("all", allAcceptedDomains=True)],
     "a@contoso.com", "connector", "all"),
    ("star-catches-internet-domains",
     [{"domainName": "contoso.com"}],
     [on_prem("star", recipientDomains=["*"], routeAllMessagesViaOnPremises=True), on_prem("all", allAcceptedDomains=True)],
     "a@example.org", "connector", "star"),
    ("all-accepted-domains-does-not-cover-foreign-domains",
     [{"domainName": "contoso.com"}], [on_prem("all", allAcceptedDomains=True)],
     "a@example.org", "mx", None),
    ("disabled-exact-connector-is-ignored",
     [], [partner("off", "contoso.com", enabled=False), partner("wild", "*.contoso.com")],
     "a@contoso.com", "connector", "wild"),
    ("disabled-only-connector-means-mx",
     [], [partner("off", "example.org", enabled=False)], "a@example.org", "mx", None),
    ("rule-scoped-connector-is-ignored",
     [], [{"name": "scoped", "isTransportRuleScoped": True}, partner("wild", "*.example.org")],
     "a@example.org", "connector", "wild"),
    ("no-connector-means-mx",
     [], [partner("other", "fabrikam.com")], "a@example.org", "mx", None),
    ("authoritative-domain-without-connector-is-the-mailbox",
     [{"domainName": "contoso.com", "domainType": "Authoritative"}], [], "a@contoso.com", "mailbox", None),
    ("internal-relay-unknown-recipients-go-on-premises",
     [{"domainName": "contoso.com", "domainType": "InternalRelay"}],
     [on_prem("to-onprem", recipientDomains=["contoso.com"])], "a@contoso.com", "internal-relay", "to-onprem"),
    ("internal-relay-through-all-accepted-domains",
     [{"domainName": "contoso.com", "domainType": "InternalRelay"}],
     [on_prem("hybrid", allAcceptedDomains=True)], "a@contoso.com", "internal-relay", "hybrid"),
    ("internal-relay-ignores-partner-connectors",
     [{"domainName": "contoso.com", "domainType": "InternalRelay"}],
     [partner("partner", "contoso.com")], "a@contoso.com", "undeliverable", None),
    ("internal-relay-without-connector-is-undeliverable",
     [{"domainName": "contoso.com", "domainType": "InternalRelay"}], [], "a@contoso.com", "undeliverable", None),
    ("internal-relay-with-disabled-connector-is-undeliverable",
     [{"domainName": "contoso.com", "domainType": "InternalRelay"}],
     [on_prem("to-onprem", recipientDomains=["contoso.com"], enabled=False)], "a@contoso.com", "undeliverable", None),
    ("match-subdomains-needs-wildcard-on-connector",
     [{"domainName": "contoso.com", "domainType": "InternalRelay", "matchSubDomains": True}],
     [on_prem("to-onprem", recipientDomains=["contoso.com"])], "a@eu.contoso.com", "undeliverable", None),
    ("match-subdomains-with-wildcard-goes-on-premises",
     [{"domainName": "contoso.com", "domainType": "InternalRelay", "matchSubDomains": True}],
     [on_prem("to-onprem", recipientDomains=["contoso.com", "*.contoso.com"])],
     "a@eu.contoso.com", "internal-relay", "to-onprem"),
    ("sending-to-domain-disabled-blocks-delivery",
     [{"domainName": "contoso.com", "sendingToDomainDisabled": True}], [partner("p", "contoso.com")],
     "a@contoso.com", "blocked", None),
]


@pytest.mark.parametrize(("accepted", "outbound", "recipient", "path", "connector"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_outbound_routing_picks_the_expected_path(accepted: list[dict[str, Any]], outbound: list[dict[str, Any]],
                                                  recipient: str, path: str, connector: str | None) -> None:
    decision = route_outbound(recipient, accepted, outbound)
    assert (decision.path, decision.connector) == (path, connector), decision.reason
    assert decision.reason


def test_ignored_connectors_are_named_with_the_reason() -> None:
    decision = route_outbound("a@contoso.com", [], [
        partner("off", "contoso.com", enabled=False), {"name": "scoped", "isTransportRuleScoped": True},
        partner("wild", "*.contoso.com")])
    notes = {n.name: (n.outcome, n.why) for n in decision.notes}
    assert notes["off"] == ("skipped", "disabled")
    assert notes["scoped"][0] == "skipped" and "rule" in notes["scoped"][1]
    assert notes["wild"][0] == "chosen"


def test_a_tie_between_two_connectors_is_reported_in_the_reason() -> None:
    decision = route_outbound("a@contoso.com", [], [partner("b", "contoso.com"), partner("a", "contoso.com")])
    assert decision.connector == "a"
    assert "Several connectors match equally well" in decision.reason


def test_smart_hosts_are_reported_for_a_smart_host_connector() -> None:
    decision = route_outbound("a@contoso.com", [], [on_prem("x", recipientDomains=["contoso.com"])])
    assert decision.smart_hosts == ("mail.contoso.com",)


def test_a_bare_domain_is_accepted_as_the_recipient_and_case_is_ignored() -> None:
    decision = route_outbound("Sales.Contoso.COM", ARTICLE_ACCEPTED, ARTICLE_CONNECTORS)
    assert (decision.domain, decision.connector) == ("sales.contoso.com", "C3")
