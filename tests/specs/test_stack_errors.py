"""Every rule and value kind refuses a bad stack file at the exact field path and line.

Matrix (one row per case, ids name the rule or kind): a small stack file with one defect, the line that holds
the defect marked ``#!``, the expected field path and a fragment of the message. Each row runs through
``mailflow validate FILE`` (click's CliRunner) and must print ``FILE:LINE: path: ...`` and exit 1.

- value kinds: IPv4 sender addresses (private, loopback, link-local, multicast, 0/8, CGNAT, 240/4, IPv6, a-b
  ranges, wider than /24, malformed, not a list), EFSkipIPs, SMTP domains, wildcard domains, smart hosts,
  email addresses, enums, booleans (yes/1), text lengths, timestamps;
- cross-field rules of exo-cmdlets §2.2, §4.2, §6.2 and §12;
- stack shape: unknown keys with "did you mean", duplicate YAML keys, duplicate names and domains, the tenant
  section, secrets, YAML syntax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stack_corpus import assert_refused_at

from o365_mailflow.cli import main

HEAD = "tenant:\n  emulator: true\n"
INBOUND = {"name": "Relay", "connectorType": "OnPremises", "senderDomains": '["*"]', "senderIpAddresses": "[203.0.113.10]"}
OUTBOUND = {"name": "To on-premises", "connectorType": "OnPremises", "recipientDomains": "[contoso.com]",
            "useMxRecord": "false", "smartHosts": "[mail.contoso.com]"}
DOMAIN = {"domainName": "contoso.com", "domainType": "InternalRelay"}
DROP: Any = object()


def _objects(key: str, base: dict[str, str], fields: dict[str, Any]) -> str:
    merged = {**base, **fields}
    lines = [f"{name}: {value}" for name, value in merged.items() if value is not DROP]
    return f"{key}:\n  - " + "\n    ".join(lines) + "\n"


def inbound(**fields: Any) -> str:
    return HEAD + _objects("inboundConnectors", INBOUND, fields)


def outbound(**fields: Any) -> str:
    return HEAD + _objects("outboundConnectors", OUTBOUND, fields)


def domain(**fields: Any) -> str:
    return HEAD + _objects("acceptedDomains", DOMAIN, fields)


M = "  #!"  # marks the line the diagnostic must point at

CASES: list[tuple[str, str, str, str]] = [
    # --- IPv4 sender addresses (§2.1 SenderIPAddresses, §12) ---
    ("ip-private-rfc1918", inbound(senderIpAddresses=f"\n      - 203.0.113.5\n      - 10.1.1.1{M}"),
     "inboundConnectors[0].senderIpAddresses[1]", "private address (RFC 1918)"),
    ("ip-private-172-16", inbound(senderIpAddresses=f"[172.16.4.1]{M}"), "inboundConnectors[0].senderIpAddresses[0]",
     "private"),
    ("ip-private-192-168", inbound(senderIpAddresses=f"[192.168.1.0/24]{M}"),
     "inboundConnectors[0].senderIpAddresses[0]", "private"),
    ("ip-loopback", inbound(senderIpAddresses=f"[127.0.0.1]{M}"), "inboundConnectors[0].senderIpAddresses[0]",
     "loopback"),
    ("ip-link-local", inbound(senderIpAddresses=f"[169.254.10.1]{M}"), "inboundConnectors[0].senderIpAddresses[0]",
     "link-local"),
    ("ip-multicast", inbound(senderIpAddresses=f"[224.0.0.5]{M}"), "inboundConnectors[0].senderIpAddresses[0]",
     "multicast"),
    ("ip-this-network", inbound(senderIpAddresses=f"[0.1.2.3]{M}"), "inboundConnectors[0].senderIpAddresses[0]",
     "0.0.0.0/8"),
    ("ip-carrier-grade-nat", inbound(senderIpAddresses=f"[100.64.1.1]{M}"),
     "inboundConnectors[0].senderIpAddresses[0]", "carrier-grade NAT"),
    ("ip-reserved-240", inbound(senderIpAddresses=f"[240.0.0.1]{M}"), "inboundConnectors[0].senderIpAddresses[0]",
     "reserved"),
    ("ip-broadcast", inbound(senderIpAddresses=f"[255.255.255.255]{M}"),
     "inboundConnectors[0].senderIpAddresses[0]", "broadcast"),
    ("ip-ipv6", inbound(senderIpAddresses=f'\n      - 203.0.113.5\n      - "2001:db8::1"{M}'),
     "inboundConnectors[0].senderIpAddresses[1]", "IPv6"),
    ("ip-range", inbound(senderIpAddresses=f"[203.0.113.1-203.0.113.9]{M}"),
     "inboundConnectors[0].senderIpAddresses[0]", "not a-b ranges"),
    ("ip-cidr-wider-than-24", inbound(senderIpAddresses=f"[198.51.100.0/23]{M}"),
     "inboundConnectors[0].senderIpAddresses[0]", "wider than /24"),
    ("ip-malformed", inbound(senderIpAddresses=f"[203.0.113.300]{M}"), "inboundConnectors[0].senderIpAddresses[0]",
     "not a valid IPv4"),
    ("ip-not-a-list", inbound(senderIpAddresses=f"203.0.113.5{M}"), "inboundConnectors[0].senderIpAddresses",
     "expected a list"),
    # --- EFSkipIPs (§2.1: single, CIDR or a-b range) ---
    ("efskipips-garbage", inbound(efSkipIps=f"\n      - 203.0.113.1-203.0.113.9\n      - gateway{M}"),
     "inboundConnectors[0].efSkipIps[1]", "not an IP address, CIDR or range"),
    ("efskipips-backwards-range", inbound(efSkipIps=f"[203.0.113.9-203.0.113.1]{M}"),
     "inboundConnectors[0].efSkipIps[0]", "ends before it starts"),
    # --- SMTP domains and wildcards (§2.1 SenderDomains, §4.1 RecipientDomains/TlsDomain) ---
    ("sender-domain-embedded-wildcard", inbound(senderDomains=f'["a.*.contoso.com"]{M}'),
     "inboundConnectors[0].senderDomains[0]", "embedded wildcard"),
    ("sender-domain-empty-list", inbound(senderDomains=f"[]{M}"), "inboundConnectors[0].senderDomains",
     "must not be empty"),
    ("sender-domain-not-fqdn", inbound(senderDomains=f"[contoso]{M}"), "inboundConnectors[0].senderDomains[0]",
     "needs a dot"),
    ("sender-domain-email", inbound(senderDomains=f"[admin@contoso.com]{M}"),
     "inboundConnectors[0].senderDomains[0]", "email address, not a domain"),
    ("sender-domain-bad-label", inbound(senderDomains=f"[-bad.contoso.com]{M}"),
     "inboundConnectors[0].senderDomains[0]", "invalid label"),
    ("sender-domain-non-ascii", inbound(senderDomains=f"[bücher.de]{M}"), "inboundConnectors[0].senderDomains[0]",
     "punycode"),
    ("certificate-name-bare-star", inbound(requireTls="true", tlsSenderCertificateName=f'"*"{M}'),
     "inboundConnectors[0].tlsSenderCertificateName", "bare * is not allowed"),
    ("trusted-organization-wildcard", inbound(trustedOrganizations=f'["*.fabrikam.com"]{M}'),
     "inboundConnectors[0].trustedOrganizations[0]", "wildcard where none is allowed"),
    ("recipient-domain-embedded-wildcard", outbound(recipientDomains=f'["mail.*.contoso.com"]{M}'),
     "outboundConnectors[0].recipientDomains[0]", "embedded wildcard"),
    ("tls-domain-bare-star", outbound(tlsSettings="DomainValidation", tlsDomain=f'"*"{M}'),
     "outboundConnectors[0].tlsDomain", "bare * is not allowed"),
    # --- smart hosts (§4.1 SmartHosts) ---
    ("smart-host-port", outbound(smartHosts=f'["mail.contoso.com:587"]{M}'), "outboundConnectors[0].smartHosts[0]",
     "has a port"),
    ("smart-host-ipv6", outbound(smartHosts=f'["2001:db8::25"]{M}'), "outboundConnectors[0].smartHosts[0]", "IPv6"),
    ("smart-host-private-ip", outbound(smartHosts=f"\n      - mail.contoso.com\n      - 10.0.0.5{M}"),
     "outboundConnectors[0].smartHosts[1]", "private"),
    ("smart-host-private-network", outbound(smartHosts=f"[10.0.0.0/24]{M}"), "outboundConnectors[0].smartHosts[0]",
     "private"),
    ("smart-host-single-label", outbound(smartHosts=f"[exchange01]{M}"), "outboundConnectors[0].smartHosts[0]",
     "not a fully qualified domain name"),
    # --- email addresses ---
    ("ef-users-not-email", inbound(efUsers=f"[postmaster]{M}"), "inboundConnectors[0].efUsers[0]",
     "not an email address"),
    ("validation-recipients-bad-domain", outbound(validationRecipients=f"[probe@localhost]{M}"),
     "outboundConnectors[0].validationRecipients[0]", "invalid domain"),
    # --- enums (case-insensitive, canonical output, suggestions) ---
    ("enum-typo-suggests", inbound(connectorType=f"OnPremise{M}"), "inboundConnectors[0].connectorType",
     "did you mean OnPremises?"),
    ("enum-connector-source-adminui", inbound(connectorSource=f"AdminUI{M}"), "inboundConnectors[0].connectorSource",
     "write Default"),
    ("enum-tls-settings", outbound(tlsSettings=f"Mandatory{M}"), "outboundConnectors[0].tlsSettings",
     "unknown value Mandatory"),
    ("enum-external-relay-refused", domain(domainType=f"ExternalRelay{M}"), "acceptedDomains[0].domainType",
     "on-premises only"),
    ("enum-not-text", outbound(mtaStsMode=f"1{M}"), "outboundConnectors[0].mtaStsMode", "expected one of"),
    # --- booleans ---
    ("bool-yes-is-ambiguous", inbound(enabled=f"yes{M}"), "inboundConnectors[0].enabled", "ambiguous"),
    ("bool-on-is-ambiguous", outbound(testMode=f"on{M}"), "outboundConnectors[0].testMode", "ambiguous"),
    ("bool-one-is-a-number", inbound(requireTls=f"1{M}"), "inboundConnectors[0].requireTls", "is a number"),
    ("bool-adopt", inbound(adopt=f"maybe{M}"), "inboundConnectors[0].adopt", "expected true or false"),
    # --- text lengths ---
    ("name-longer-than-64", inbound(name="N" * 65 + M), "inboundConnectors[0].name", "more than the 64"),
    ("name-empty", inbound(name=f'""{M}'), "inboundConnectors[0].name", "must not be empty"),
    ("name-not-text", outbound(name=f"[a, b]{M}"), "outboundConnectors[0].name", "expected a connector name"),
    ("comment-longer-than-1024", inbound(comment="c" * 1025 + M), "inboundConnectors[0].comment",
     "more than the 1024"),
    ("timestamp-not-iso", outbound(lastValidationTimestamp=f"yesterday{M}"),
     "outboundConnectors[0].lastValidationTimestamp", "not an ISO 8601"),
    # --- fields ---
    ("unknown-field-suggests", inbound(senderIpAddress=f"[203.0.113.5]{M}"),
     "inboundConnectors[0].senderIpAddress", "did you mean senderIpAddresses?"),
    ("required-sender-domains", inbound(name=f"Relay{M}", senderDomains=DROP), "inboundConnectors[0].senderDomains",
     "senderDomains is required"),
    ("required-name", outbound(name=DROP, connectorType=f"OnPremises{M}"), "outboundConnectors[0].name",
     "name is required"),
    # --- inbound rules (§2.2, §12) ---
    ("rule-onpremises-needs-ip-or-certificate", inbound(connectorType=f"OnPremises{M}", senderIpAddresses=DROP),
     "inboundConnectors[0].connectorType", "needs senderIpAddresses or tlsSenderCertificateName"),
    ("rule-certificate-needs-require-tls", inbound(tlsSenderCertificateName="mail.contoso.com",
                                                   requireTls=f"false{M}"),
     "inboundConnectors[0].requireTls", "requireTls must be true"),
    ("rule-certificate-needs-require-tls-by-default", inbound(tlsSenderCertificateName=f"mail.contoso.com{M}"),
     "inboundConnectors[0].tlsSenderCertificateName", "requireTls must be true"),
    ("rule-restrict-ip-needs-ips", inbound(connectorType="Partner", senderIpAddresses=DROP,
                                           restrictDomainsToIpAddresses=f"true{M}"),
     "inboundConnectors[0].restrictDomainsToIpAddresses", "needs senderIpAddresses"),
    ("rule-restrict-ip-and-certificate", inbound(connectorType="Partner", requireTls="true",
                                                 tlsSenderCertificateName="mail.fabrikam.com",
                                                 restrictDomainsToIpAddresses="true",
                                                 restrictDomainsToCertificate=f"true{M}"),
     "inboundConnectors[0].restrictDomainsToCertificate", "cannot both be true"),
    ("rule-restrict-certificate-needs-certificate", inbound(connectorType="Partner",
                                                            restrictDomainsToCertificate=f"true{M}"),
     "inboundConnectors[0].restrictDomainsToCertificate", "needs tlsSenderCertificateName"),
    ("rule-inbound-cloud-services-mail-onpremises-only", inbound(connectorType="Partner",
                                                                 cloudServicesMailEnabled=f"true{M}"),
     "inboundConnectors[0].cloudServicesMailEnabled", "only allowed on OnPremises"),
    ("rule-treat-as-internal-onpremises-only", inbound(connectorType="Partner", treatMessagesAsInternal=f"true{M}"),
     "inboundConnectors[0].treatMessagesAsInternal", "only allowed on OnPremises"),
    ("rule-treat-as-internal-excludes-cloud-services-mail", inbound(cloudServicesMailEnabled="true",
                                                                    treatMessagesAsInternal=f"true{M}"),
     "inboundConnectors[0].treatMessagesAsInternal", "cannot be true while cloudServicesMailEnabled"),
    # --- outbound rules (§4.2, §12) ---
    ("rule-rule-scoped-with-domains", outbound(isTransportRuleScoped="true", recipientDomains=f"[contoso.com]{M}"),
     "outboundConnectors[0].recipientDomains", "transport-rule-scoped"),
    ("rule-rule-scoped-with-all-accepted-domains", outbound(recipientDomains=DROP, isTransportRuleScoped="true",
                                                            allAcceptedDomains=f"true{M}"),
     "outboundConnectors[0].allAcceptedDomains", "transport-rule-scoped"),
    ("rule-neither-scoped-nor-domains", outbound(name=f"To on-premises{M}", recipientDomains=DROP),
     "outboundConnectors[0].recipientDomains", "needs recipientDomains or allAcceptedDomains"),
    ("rule-domain-validation-needs-tls-domain", outbound(tlsSettings=f"DomainValidation{M}"),
     "outboundConnectors[0].tlsSettings", "needs tlsDomain"),
    ("rule-tls-domain-needs-domain-validation", outbound(tlsSettings=f"CertificateValidation{M}",
                                                         tlsDomain="mail.contoso.com"),
     "outboundConnectors[0].tlsSettings", "only be set when tlsSettings is DomainValidation"),
    ("rule-tls-domain-without-tls-settings", outbound(tlsDomain=f"mail.contoso.com{M}"),
     "outboundConnectors[0].tlsDomain", "only be set when tlsSettings is DomainValidation"),
    ("rule-no-mx-needs-smart-hosts", outbound(smartHosts=DROP, useMxRecord=f"false{M}"),
     "outboundConnectors[0].useMxRecord", "needs smartHosts"),
    ("rule-mx-excludes-smart-hosts", outbound(connectorType="Partner", useMxRecord="true",
                                              smartHosts=f"[mail.fabrikam.com]{M}"),
     "outboundConnectors[0].smartHosts", "only used with useMxRecord: false"),
    ("rule-onpremises-excludes-mx", outbound(smartHosts=DROP, useMxRecord=f"true{M}"),
     "outboundConnectors[0].useMxRecord", "must use smart hosts"),
    ("rule-onpremises-excludes-mx-by-default", outbound(smartHosts=DROP, useMxRecord=DROP,
                                                        connectorType=f"OnPremises{M}"),
     "outboundConnectors[0].connectorType", "must use smart hosts"),
    ("rule-onpremises-star-needs-route-all", outbound(recipientDomains=f'["*"]{M}'),
     "outboundConnectors[0].recipientDomains", "needs routeAllMessagesViaOnPremises"),
    *[
        (f"rule-outbound-{flag}-onpremises-only", outbound(connectorType="Partner", **{flag: f"true{M}"}),
         f"outboundConnectors[0].{flag}", "only allowed on OnPremises")
        for flag in ("routeAllMessagesViaOnPremises", "cloudServicesMailEnabled", "senderRewritingEnabled")
    ],
    ("rule-outbound-allAcceptedDomains-onpremises-only",
     outbound(connectorType="Partner", recipientDomains=DROP, allAcceptedDomains=f"true{M}"),
     "outboundConnectors[0].allAcceptedDomains", "only allowed on OnPremises"),
    # --- accepted domains (§6.2, §12) ---
    ("rule-match-subdomains-internal-relay-only", domain(domainType="Authoritative", matchSubDomains=f"true{M}"),
     "acceptedDomains[0].matchSubDomains", "only allowed on InternalRelay"),
    ("rule-nego2-not-with-wildcard", domain(domainName="'*.contoso.com'", enableNego2Authentication=f"true{M}"),
     "acceptedDomains[0].enableNego2Authentication", "wildcard"),
    ("accepted-domain-star", domain(domainName=f'"*"{M}'), "acceptedDomains[0].domainName", "bare * is not allowed"),
    # --- stack shape ---
    ("unknown-top-level-key-suggests", HEAD + f"inboundConnector: []{M}\n", "inboundConnector",
     "did you mean inboundConnectors?"),
    ("unknown-tenant-key-suggests", f"tenant:\n  emulator: true\n  initialdomain: contoso.onmicrosoft.com{M}\n",
     "tenant.initialdomain", "did you mean initialDomain?"),
    ("duplicate-yaml-key", inbound(enabled="true", comment="a", **{"comment ": f"b{M}"}).replace("comment :", "comment:"),
     "inboundConnectors[0].comment", "duplicate key 'comment' (first at line"),
    ("duplicate-connector-name-any-case",
     inbound() + "  - name: RELAY" + M + "\n    senderDomains: [contoso.com]\n",
     "inboundConnectors[1].name", "duplicate connector name"),
    ("duplicate-outbound-name", outbound() + "  - name: to ON-PREMISES" + M + "\n    isTransportRuleScoped: true\n",
     "outboundConnectors[1].name", "duplicate connector name"),
    ("duplicate-domain", domain() + "  - domainName: Contoso.COM" + M + "\n    domainType: InternalRelay\n",
     "acceptedDomains[1].domainName", "duplicate domain"),
    ("prune-not-boolean", HEAD + f"prune: yes{M}\n", "prune", "ambiguous"),
    ("resource-list-not-a-list", HEAD + f"acceptedDomains: contoso.com{M}\n", "acceptedDomains", "must be a list"),
    ("resource-item-not-a-mapping", HEAD + f"acceptedDomains:\n  - contoso.com{M}\n", "acceptedDomains[0]",
     "must be a mapping"),
    # --- tenant section ---
    ("tenant-missing", f"prune: false{M}\n", "tenant", "a tenant: section is required"),
    ("tenant-says-which", f"tenant:{M}\n  cloud: commercial\n", "tenant", "must say which tenant"),
    ("tenant-emulator-false-needs-id", f"tenant:{M}\n  emulator: false\n", "tenant", "must say which tenant"),
    ("tenant-id-not-guid", f"tenant:\n  id: contoso{M}\n", "tenant.id", "not a tenant GUID"),
    ("tenant-initial-domain", f"tenant:\n  initialDomain: contoso{M}\n", "tenant.initialDomain", "needs a dot"),
    ("tenant-cloud-suggests", f"tenant:\n  initialDomain: contoso.onmicrosoft.us\n  cloud: gcc-high{M}\n",
     "tenant.cloud", "did you mean gcchigh?"),
    ("tenant-endpoint-https-only", f"tenant:\n  initialDomain: contoso.onmicrosoft.com\n  endpoint: http://x{M}\n",
     "tenant.endpoint", "https:// URL"),
    # --- secrets ---
    ("secret-in-tenant", f"tenant:\n  emulator: true\n  clientSecret: s3cr3t-value{M}\n", "tenant.clientSecret",
     "AZURE_CLIENT_SECRET"),
    ("secret-at-top-level", HEAD + f"certificatePassword: s3cr3t-value{M}\n", "certificatePassword",
     "credentials never go in a stack file"),
    ("secret-in-connector", inbound(client_secret=f"s3cr3t-value{M}"), "inboundConnectors[0].client_secret",
     "credentials never go in a stack file"),
    # --- YAML itself ---
    ("yaml-syntax", HEAD + f"inboundConnectors: [{M}\n", "", "not valid YAML"),
]


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize(("text", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_stack_file_is_refused_at_the_field_path_and_line(
    tmp_path: Path, text: str, path: str, fragment: str
) -> None:
    assert_refused_at(tmp_path / "stack.yaml", text, path, fragment)


def test_the_secret_value_itself_is_never_printed(tmp_path: Path, runner: CliRunner) -> None:
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text("tenant:\n  emulator: true\n  clientSecret: s3cr3t-value\n", encoding="utf-8")
    result = runner.invoke(main, ["validate", str(stack_file)])
    assert result.exit_code == 1
    assert "clientSecret" in result.output
    assert "s3cr3t-value" not in result.output
