"""The impact's per-probe indexes hand the simulator a subset of the objects; the answers must be the ones the
simulator gives with every object (otherwise the linear-time shortcut would be a second set of routing rules).

Matrix: one tenant mixing every way of matching (exact, wildcards of several depths, ``*``, allAcceptedDomains,
disabled and rule-scoped connectors, InternalRelay with matchSubDomains, nested and overlapping sender networks,
exact and wildcard certificate names, Partner sender domains with restrictions) plus 40 filler connectors; for
every probe the impact asks, the indexed decision equals ``route_outbound`` / ``match_inbound`` over all objects.
"""

from __future__ import annotations

from o365_mailflow.impact import OUTSIDE_DOMAIN, TenantState, _Index, _probes
from o365_mailflow.routing import match_inbound, route_outbound

ACCEPTED = [
    {"domainName": "contoso.com", "domainType": "InternalRelay", "matchSubDomains": True},
    {"domainName": "sales.contoso.com", "domainType": "Authoritative"},
    {"domainName": "fabrikam.com", "domainType": "Authoritative"},
    {"domainName": "*.tailspin.example", "domainType": "InternalRelay"},
    {"domainName": "blocked.example", "sendingToDomainDisabled": True},
]
OUTBOUND = [
    {"name": "all", "connectorType": "OnPremises", "allAcceptedDomains": True, "useMxRecord": False,
     "smartHosts": ["a.example"]},
    {"name": "exact", "recipientDomains": ["contoso.com", "fabrikam.com"]},
    {"name": "wild", "connectorType": "OnPremises", "recipientDomains": ["*.contoso.com"]},
    {"name": "deeper", "recipientDomains": ["*.eu.contoso.com"], "useMxRecord": False, "smartHosts": ["eu.example"]},
    {"name": "star", "recipientDomains": ["*"]},
    {"name": "off", "enabled": False, "recipientDomains": ["fabrikam.com"]},
    {"name": "scoped", "isTransportRuleScoped": True, "recipientDomains": ["sales.contoso.com"]},
    {"name": "tie", "recipientDomains": ["fabrikam.com"]},
    {"name": "tail", "connectorType": "OnPremises", "recipientDomains": ["*.tailspin.example"]},
] + [{"name": f"filler {i}", "recipientDomains": [f"f{i}.example"]} for i in range(40)]
INBOUND = [
    {"name": "net", "connectorType": "OnPremises", "senderIpAddresses": ["198.51.100.0/24"]},
    {"name": "host", "connectorType": "OnPremises", "senderIpAddresses": ["198.51.100.7", "203.0.113.0/30"]},
    {"name": "cert", "connectorType": "OnPremises", "tlsSenderCertificateName": "*.contoso.com"},
    {"name": "cert2", "connectorType": "OnPremises", "tlsSenderCertificateName": "relay.fabrikam.com"},
    {"name": "elsewhere", "connectorType": "OnPremises", "tlsSenderCertificateName": "mail.contoso.net"},
    {"name": "partner", "senderDomains": ["partner.example"], "senderIpAddresses": ["192.0.2.0/28"],
     "restrictDomainsToIpAddresses": True},
    {"name": "down", "enabled": False, "senderIpAddresses": ["192.0.2.0/24"]},
] + [{"name": f"site {i}", "connectorType": "OnPremises", "senderIpAddresses": [f"10.{i}.0.0/16"]} for i in range(40)]


def test_every_indexed_answer_is_the_simulators_answer_over_all_objects() -> None:
    state = TenantState.from_fields(ACCEPTED, INBOUND, OUTBOUND)
    index = _Index(state)
    acc, inb, out = state.fields()
    probes = _probes(state)
    assert {p.kind for p in probes} == {"domain", "subdomains", "outside", "ip", "certificate"}
    for p in probes:
        if p.kind in ("ip", "certificate"):
            ip, cert = (p.key, None) if p.kind == "ip" else (None, p.key)
            for sender in ("relay@contoso.com", f"relay@{OUTSIDE_DOMAIN}", "x@partner.example"):
                got, want = index.inbound(ip, cert, sender), match_inbound(ip, cert, sender, acc, inb)
                assert (got.connector, got.matched_by, got.relay_allowed, got.rejected, got.reason,
                        got.relay_reason) == (want.connector, want.matched_by, want.relay_allowed, want.rejected,
                                              want.reason, want.relay_reason), p
        else:
            got_r, want_r = index.route(p.address), route_outbound(p.address, acc, out)
            assert (got_r.path, got_r.connector, got_r.match, got_r.smart_hosts, got_r.reason) == (
                want_r.path, want_r.connector, want_r.match, want_r.smart_hosts, want_r.reason), p
