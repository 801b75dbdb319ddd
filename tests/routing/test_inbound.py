"""Inbound attribution and the 2023 relay rules (exo-cmdlets.md §2.3, S11).

Matrix:
- OnPremises connectors match by sender IP (single address or CIDR) or by TLS certificate name (exact or *.domain);
  disabled connectors never match; the certificate wins over the IP when both match different connectors;
- relaying to the internet is allowed when the certificate domain belongs to an accepted domain (certificate
  match) or the MAIL FROM domain is an accepted domain; refused otherwise; undecided without a MAIL FROM when the
  certificate does not settle it; refused when no OnPremises connector matches;
- Partner connectors match by IP, certificate or sender domain and may reject (RestrictDomainsTo*).
"""

from __future__ import annotations

from typing import Any

import pytest

from o365_mailflow.routing import match_inbound

ACCEPTED = [{"domainName": "contoso.com"}, {"domainName": "fabrikam.com"}]

IP_RELAY = {"name": "printers", "connectorType": "OnPremises", "senderDomains": ["*"],
            "senderIpAddresses": ["203.0.113.10", "198.51.100.0/28"]}
CERT_RELAY = {"name": "exchange", "connectorType": "OnPremises", "senderDomains": ["*"], "requireTls": True,
              "tlsSenderCertificateName": "mail.contoso.com"}
WILD_CERT = {"name": "wild-cert", "connectorType": "OnPremises", "senderDomains": ["*"], "requireTls": True,
             "tlsSenderCertificateName": "*.fabrikam.com"}
FOREIGN_CERT = {"name": "foreign-cert", "connectorType": "OnPremises", "senderDomains": ["*"], "requireTls": True,
                "tlsSenderCertificateName": "relay.example.net"}
PARTNER_LOCKED = {"name": "partner-locked", "connectorType": "Partner", "senderDomains": ["partner.example"],
                  "senderIpAddresses": ["192.0.2.0/24"], "restrictDomainsToIpAddresses": True}

ALL = [IP_RELAY, CERT_RELAY, WILD_CERT, FOREIGN_CERT, PARTNER_LOCKED]

CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str | None, str | None, bool | None]] = [
    # id, (ip, cert, sender), connectors, expected connector, matched_by, relay_allowed
    ("single-ip-matches", {"ip": "203.0.113.10", "sender": "app@contoso.com"}, ALL, "printers", "ip", True),
    ("cidr-matches", {"ip": "198.51.100.7", "sender": "app@contoso.com"}, ALL, "printers", "ip", True),
    ("ip-outside-cidr-matches-nothing", {"ip": "198.51.100.17", "sender": "app@contoso.com"}, ALL, None, None, False),
    ("ip-match-relay-refused-for-foreign-mail-from", {"ip": "203.0.113.10", "sender": "app@gmail.com"}, ALL,
     "printers", "ip", False),
    ("ip-match-relay-undecided-without-mail-from", {"ip": "203.0.113.10"}, ALL, "printers", "ip", None),
    ("certificate-matches-exact-name", {"cert": "mail.contoso.com"}, ALL, "exchange", "certificate", True),
    ("certificate-name-is-case-insensitive", {"cert": "MAIL.Contoso.com"}, ALL, "exchange", "certificate", True),
    ("wildcard-certificate-name-matches-host", {"cert": "smtp.fabrikam.com"}, ALL, "wild-cert", "certificate", True),
    ("foreign-certificate-relays-only-with-accepted-mail-from",
     {"cert": "relay.example.net", "sender": "app@fabrikam.com"}, ALL, "foreign-cert", "certificate", True),
    ("foreign-certificate-and-foreign-mail-from-refused",
     {"cert": "relay.example.net", "sender": "app@example.net"}, ALL, "foreign-cert", "certificate", False),
    ("certificate-wins-over-ip", {"ip": "203.0.113.10", "cert": "mail.contoso.com"}, ALL, "exchange", "certificate",
     True),
    ("disabled-connector-never-matches", {"ip": "203.0.113.10", "sender": "a@contoso.com"},
     [{**IP_RELAY, "enabled": False}], None, None, False),
    ("partner-connector-by-ip-never-relays", {"ip": "192.0.2.5", "sender": "a@contoso.com"}, ALL, "partner-locked",
     "ip", False),
]


@pytest.mark.parametrize(("given", "connectors", "connector", "matched_by", "relay"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_inbound_connector_and_relay_decision(given: dict[str, Any], connectors: list[dict[str, Any]],
                                              connector: str | None, matched_by: str | None,
                                              relay: bool | None) -> None:
    d = match_inbound(given.get("ip"), given.get("cert"), given.get("sender"), ACCEPTED, connectors)
    assert (d.connector, d.matched_by, d.relay_allowed) == (connector, matched_by, relay), (d.reason, d.relay_reason)
    assert d.reason and d.relay_reason


def test_a_refused_relay_names_the_service_error_and_what_to_change() -> None:
    d = match_inbound("203.0.113.10", None, "app@gmail.com", ACCEPTED, ALL)
    assert "5.7.64" in d.relay_reason and "accepted domain" in d.relay_reason


def test_a_restricted_partner_connector_rejects_mail_from_other_ips() -> None:
    d = match_inbound("203.0.113.99", None, "a@partner.example", ACCEPTED, [PARTNER_LOCKED])
    assert (d.connector, d.matched_by, d.rejected) == ("partner-locked", "sender-domain", True)


def test_without_accepted_domains_the_relay_decision_is_left_open() -> None:
    d = match_inbound("203.0.113.10", None, "a@contoso.com", [], [IP_RELAY])
    assert d.connector == "printers" and d.relay_allowed is None


def test_an_ipv6_or_malformed_address_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="IPv4"):
        match_inbound("2001:db8::1", None, None, ACCEPTED, ALL)
