"""One corpus of stack files, bad and good, that both the editor schema and ``mailflow validate`` must judge alike.

Each case is a whole stack file (YAML text, as a user writes it) and what ``mailflow validate`` says about it: the
diagnostic code of the error it must report, or ``None`` for a file it accepts. The bad files cover every value
kind and every cross-field rule of the spec tables, the outer shape (tenant, prune, meta keys) and the checks that
JSON Schema cannot express; the good ones cover the leniencies of the loader (any letter case, "true" as text,
address spaces, padding, nulls, adoption) that the schema must not flag.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from o365_mailflow.cli import main
from o365_mailflow.errors import Severity
from o365_mailflow.stack import validate_stack

__all__ = ["Case", "CASES", "assert_refused_at"]

ROOT = Path(__file__).resolve().parents[2]
HEAD = "tenant:\n  emulator: true\n"


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    code: str | None  # the error code `mailflow validate` must report; None: the file is valid


def _marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.rstrip().endswith("#!")]
    assert len(lines) == 1, f"case must mark exactly one line: {text}"
    return lines[0]


def assert_refused_at(stack_file: Path, text: str, path: str, fragment: str) -> None:
    """``text``, written to ``stack_file``, is refused by ``mailflow validate`` (exit 1, a ``FILE:LINE: path: ...``
    line that says ``fragment``) and by the loader (an error at that path and line). LINE is the line marked
    ``#!``; for YAML that does not parse, the end of the file (where the parser notices)."""
    stack_file.write_text(text, encoding="utf-8")
    line = _marked_line(text) if "#!" in text else None
    if fragment == "not valid YAML":
        line = len(text.splitlines()) + 1

    result = CliRunner().invoke(main, ["validate", str(stack_file)])

    assert result.exit_code == 1, result.output
    prefix = f"{stack_file}:{line}: " + (f"{path}: " if path else "")
    matching = [out for out in result.output.splitlines() if out.startswith(prefix)]
    assert matching, f"no line starts with {prefix!r}:\n{result.output}"
    assert any(fragment.lower() in out.lower() for out in matching), result.output
    stack, diags = validate_stack(stack_file)
    assert stack is None
    assert any(d.severity is Severity.ERROR and d.dotted_path == path and d.line == line for d in diags)


def _block(body: str) -> str:
    return textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


def inbound(body: str, *, name: str = "Partner in") -> str:
    """A stack with one inbound connector: the given fields after its name."""
    return HEAD + f"inboundConnectors:\n  - name: {name}\n" + _block(body)


def outbound(body: str, *, name: str = "Partner out") -> str:
    return HEAD + f"outboundConnectors:\n  - name: {name}\n" + _block(body)


def domain(body: str, *, name: str = "contoso.com") -> str:
    return HEAD + f"acceptedDomains:\n  - domainName: {name}\n" + _block(body)


def tenant(body: str) -> str:
    return "tenant:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n"


PARTNER_IN = "senderDomains: [fabrikam.com]\n"
RELAY_IN = "connectorType: OnPremises\nsenderDomains: ['*']\nsenderIpAddresses: [203.0.113.10]\n"
PARTNER_OUT = "recipientDomains: [fabrikam.com]\n"
ONPREM_OUT = "connectorType: OnPremises\nrecipientDomains: [contoso.com]\nuseMxRecord: false\nsmartHosts: [mail.contoso.com]\n"

BAD: list[Case] = [
    # --- sender IPs: public IPv4, /24 to /32 (reported by the issue: private, /16 and host-name entries)
    Case("sender-ip-private-10", inbound(RELAY_IN.replace("203.0.113.10", "10.1.2.3")), "value.senderIpAddresses"),
    Case("sender-ip-private-172", inbound(RELAY_IN.replace("203.0.113.10", "172.20.0.0/24")), "value.senderIpAddresses"),
    Case("sender-ip-private-192", inbound(RELAY_IN.replace("203.0.113.10", "192.168.10.5")), "value.senderIpAddresses"),
    Case("sender-ip-carrier-nat", inbound(RELAY_IN.replace("203.0.113.10", "100.100.1.1")), "value.senderIpAddresses"),
    Case("sender-ip-loopback", inbound(RELAY_IN.replace("203.0.113.10", "127.0.0.1")), "value.senderIpAddresses"),
    Case("sender-ip-link-local", inbound(RELAY_IN.replace("203.0.113.10", "169.254.1.1")), "value.senderIpAddresses"),
    Case("sender-ip-multicast", inbound(RELAY_IN.replace("203.0.113.10", "224.0.0.5")), "value.senderIpAddresses"),
    Case("sender-ip-broadcast", inbound(RELAY_IN.replace("203.0.113.10", "255.255.255.255")), "value.senderIpAddresses"),
    Case("sender-ip-this-network", inbound(RELAY_IN.replace("203.0.113.10", "0.1.2.3")), "value.senderIpAddresses"),
    Case("sender-ip-slash-16", inbound(RELAY_IN.replace("203.0.113.10", "203.0.0.0/16")), "value.senderIpAddresses"),
    Case("sender-ip-slash-33", inbound(RELAY_IN.replace("203.0.113.10", "203.0.113.0/33")), "value.senderIpAddresses"),
    Case("sender-ip-host-name", inbound(RELAY_IN.replace("203.0.113.10", "mail.contoso.com")), "value.senderIpAddresses"),
    Case("sender-ip-ipv6", inbound(RELAY_IN.replace("[203.0.113.10]", "['2001:db8::1']")), "value.senderIpAddresses"),
    Case("sender-ip-range", inbound(RELAY_IN.replace("203.0.113.10", "203.0.113.1-203.0.113.9")),
         "value.senderIpAddresses"),
    Case("sender-ip-leading-zero", inbound(RELAY_IN.replace("203.0.113.10", "203.0.113.010")),
         "value.senderIpAddresses"),
    Case("sender-ip-octet-too-big", inbound(RELAY_IN.replace("203.0.113.10", "203.0.113.256")),
         "value.senderIpAddresses"),
    # --- smart hosts: host name, or public IPv4 / CIDR, no port
    Case("smart-host-private", outbound(ONPREM_OUT.replace("mail.contoso.com]", "192.168.1.10]")), "value.smartHosts"),
    Case("smart-host-wide-cidr-over-reserved", outbound(ONPREM_OUT.replace("mail.contoso.com]", "64.0.0.0/2]")),
         "value.smartHosts"),
    Case("smart-host-with-port", outbound(ONPREM_OUT.replace("[mail.contoso.com]", "['mail.contoso.com:25']")),
         "value.smartHosts"),
    Case("smart-host-ipv6", outbound(ONPREM_OUT.replace("[mail.contoso.com]", "['2001:db8::25']")), "value.smartHosts"),
    Case("smart-host-single-label", outbound(ONPREM_OUT.replace("mail.contoso.com]", "mailhost]")), "value.smartHosts"),
    # --- outbound TLS and routing rules (the issue: tlsDomain with the wrong tlsSettings, useMxRecord false alone)
    Case("tls-domain-with-certificate-validation",
         outbound(PARTNER_OUT + "tlsSettings: CertificateValidation\ntlsDomain: mail.fabrikam.com\n"),
         "outbound.tls-domain-needs-domain-validation"),
    Case("tls-domain-without-tls-settings", outbound(PARTNER_OUT + "tlsDomain: mail.fabrikam.com\n"),
         "outbound.tls-domain-needs-domain-validation"),
    Case("domain-validation-without-tls-domain", outbound(PARTNER_OUT + "tlsSettings: DomainValidation\n"),
         "outbound.domain-validation-needs-tls-domain"),
    Case("domain-validation-with-null-tls-domain",
         outbound(PARTNER_OUT + "tlsSettings: domainvalidation\ntlsDomain: null\n"),
         "outbound.domain-validation-needs-tls-domain"),
    Case("no-mx-without-smart-hosts", outbound(PARTNER_OUT + "useMxRecord: false\n"), "outbound.no-mx-needs-smart-hosts"),
    Case("no-mx-as-text-with-null-smart-hosts", outbound(PARTNER_OUT + "useMxRecord: 'False'\nsmartHosts: null\n"),
         "outbound.no-mx-needs-smart-hosts"),
    Case("mx-with-smart-hosts", outbound(PARTNER_OUT + "smartHosts: [mail.fabrikam.com]\n"),
         "outbound.mx-excludes-smart-hosts"),
    Case("onpremises-outbound-by-mx", outbound("connectorType: OnPremises\nrecipientDomains: [contoso.com]\n"),
         "outbound.onpremises-excludes-mx"),
    Case("onpremises-star-without-route-all", outbound(ONPREM_OUT.replace("[contoso.com]", "['*']")),
         "outbound.onpremises-star-needs-route-all"),
    Case("rule-scoped-with-domains", outbound(PARTNER_OUT + "isTransportRuleScoped: true\n"),
         "outbound.rule-scoped-has-no-domains"),
    Case("outbound-without-domains", outbound("comment: routes nothing\n"), "outbound.needs-domains-or-rule-scope"),
    Case("all-accepted-domains-on-partner", outbound("allAcceptedDomains: true\n"),
         "outbound.allAcceptedDomains-needs-onpremises"),
    Case("route-all-on-partner", outbound(PARTNER_OUT + "routeAllMessagesViaOnPremises: true\n"),
         "outbound.routeAllMessagesViaOnPremises-needs-onpremises"),
    Case("cloud-services-mail-on-partner-outbound", outbound(PARTNER_OUT + "cloudServicesMailEnabled: true\n"),
         "outbound.cloudServicesMailEnabled-needs-onpremises"),
    Case("sender-rewriting-on-partner", outbound(PARTNER_OUT + "senderRewritingEnabled: 'TRUE'\n"),
         "outbound.senderRewritingEnabled-needs-onpremises"),
    # --- inbound rules
    Case("sender-domains-null", inbound("senderDomains: null\n"), "value.senderDomains"),
    Case("sender-domains-empty", inbound("senderDomains: []\n"), "value.senderDomains"),
    Case("sender-domains-scalar", inbound("senderDomains: fabrikam.com\n"), "value.senderDomains"),
    Case("sender-domains-missing", inbound("comment: no domains\n"), "field.required"),
    Case("onpremises-without-ip-or-certificate", inbound("connectorType: OnPremises\nsenderDomains: ['*']\n"),
         "inbound.onpremises-needs-ip-or-cert"),
    Case("certificate-without-require-tls", inbound(PARTNER_IN + "tlsSenderCertificateName: mail.fabrikam.com\n"),
         "inbound.certificate-needs-require-tls"),
    Case("restrict-to-ips-without-ips", inbound(PARTNER_IN + "restrictDomainsToIpAddresses: true\n"),
         "inbound.restrict-ip-needs-ips"),
    Case("restrict-to-ips-and-certificate",
         inbound(PARTNER_IN + "senderIpAddresses: [198.51.100.7]\nrequireTls: true\n"
                 "tlsSenderCertificateName: mail.fabrikam.com\nrestrictDomainsToIpAddresses: true\n"
                 "restrictDomainsToCertificate: true\n"),
         "inbound.restrict-ip-and-certificate"),
    Case("restrict-to-certificate-without-certificate", inbound(PARTNER_IN + "restrictDomainsToCertificate: true\n"),
         "inbound.restrict-certificate-needs-certificate"),
    Case("cloud-services-mail-on-partner", inbound(PARTNER_IN + "cloudServicesMailEnabled: true\n"),
         "inbound.cloud-services-mail-needs-onpremises"),
    Case("treat-as-internal-on-partner", inbound(PARTNER_IN + "treatMessagesAsInternal: true\n"),
         "inbound.treat-as-internal-needs-onpremises"),
    Case("treat-as-internal-with-cloud-services-mail",
         inbound(RELAY_IN + "treatMessagesAsInternal: true\ncloudServicesMailEnabled: true\n"),
         "inbound.treat-as-internal-excludes-cloud-services-mail"),
    # --- accepted domains
    Case("match-subdomains-on-authoritative", domain("domainType: Authoritative\nmatchSubDomains: true\n"),
         "accepted-domain.match-subdomains-needs-internal-relay"),
    Case("nego2-on-wildcard-domain", domain("enableNego2Authentication: true\n", name="'*.contoso.com'"),
         "accepted-domain.nego2-excludes-wildcard"),
    Case("external-relay", domain("domainType: ExternalRelay\n"), "value.domainType"),
    # --- enumerations, booleans, text, domains, addresses, timestamps
    Case("unknown-connector-type", inbound(PARTNER_IN + "connectorType: Hybrid\n"), "value.connectorType"),
    Case("connector-source-admin-ui", inbound(PARTNER_IN + "connectorSource: AdminUI\n"), "value.connectorSource"),
    Case("mta-sts-mode-null", outbound(PARTNER_OUT + "mtaStsMode: null\n"), "value.mtaStsMode"),
    Case("boolean-yes", inbound(PARTNER_IN + "enabled: yes\n"), "value.enabled"),
    Case("boolean-number", inbound(PARTNER_IN + "requireTls: 1\n"), "value.requireTls"),
    Case("boolean-other-text", inbound(PARTNER_IN + "requireTls: 'maybe'\n"), "value.requireTls"),
    Case("name-too-long", inbound(PARTNER_IN, name="N" * 65), "value.name"),
    Case("name-on-two-lines", inbound(PARTNER_IN, name='"First line\\nsecond line"'), "value.name"),
    Case("name-blank", inbound(PARTNER_IN, name="'   '"), "value.name"),
    Case("comment-with-control-character", inbound(PARTNER_IN + 'comment: "bell \\a here"\n'), "value.comment"),
    Case("comment-too-long", inbound(PARTNER_IN + "comment: " + "c" * 1025 + "\n"), "value.comment"),
    Case("sender-domain-embedded-wildcard", inbound("senderDomains: [a.*.fabrikam.com]\n"), "value.senderDomains"),
    Case("sender-domain-ip-address", inbound("senderDomains: [203.0.113.5]\n"), "value.senderDomains"),
    Case("sender-domain-underscore", inbound("senderDomains: [mail_relay.fabrikam.com]\n"), "value.senderDomains"),
    Case("sender-domain-bad-address-space", inbound("senderDomains: ['smtp:fabrikam.com;x']\n"), "value.senderDomains"),
    Case("recipient-domain-leading-hyphen", outbound("recipientDomains: [-fabrikam.com]\n"), "value.recipientDomains"),
    Case("recipient-domain-label-too-long", outbound(f"recipientDomains: [{'a' * 64}.com]\n"), "value.recipientDomains"),
    Case("recipient-domain-too-long", outbound(f"recipientDomains: [{'.'.join(['a' * 60] * 5)}.com]\n"),
         "value.recipientDomains"),
    Case("recipient-domain-non-ascii", outbound("recipientDomains: [fabrikäm.com]\n"), "value.recipientDomains"),
    Case("tls-domain-wildcard-not-star", outbound(PARTNER_OUT + "tlsSettings: DomainValidation\ntlsDomain: '*'\n"),
         "value.tlsDomain"),
    Case("trusted-organization-wildcard", inbound(PARTNER_IN + "trustedOrganizations: ['*.fabrikam.com']\n"),
         "value.trustedOrganizations"),
    Case("ef-user-not-an-address", inbound(RELAY_IN + "efUsers: [fabrikam.com]\n"), "value.efUsers"),
    Case("ef-user-local-part-too-long", inbound(RELAY_IN + f"efUsers: [{'u' * 65}@contoso.com]\n"), "value.efUsers"),
    Case("ef-skip-ip-garbage", inbound(RELAY_IN + "efSkipIps: [gateway]\n"), "value.efSkipIps"),
    Case("ef-skip-ip-mixed-range", inbound(RELAY_IN + "efSkipIps: ['198.51.100.1-2001:db8::1']\n"), "value.efSkipIps"),
    Case("ef-skip-ip-range-backwards", inbound(RELAY_IN + "efSkipIps: [198.51.100.9-198.51.100.1]\n"),
         "value.efSkipIps"),
    Case("validation-timestamp-text", outbound(PARTNER_OUT + "lastValidationTimestamp: yesterday\n"),
         "value.lastValidationTimestamp"),
    Case("validation-timestamp-31-april", outbound(PARTNER_OUT + "lastValidationTimestamp: 2026-04-31T10:00:00Z\n"),
         "value.lastValidationTimestamp"),
    Case("validation-timestamp-29-february-2026",
         outbound(PARTNER_OUT + "lastValidationTimestamp: 2026-02-29T10:00:00Z\n"), "value.lastValidationTimestamp"),
    Case("validation-timestamp-week-date", outbound(PARTNER_OUT + "lastValidationTimestamp: 2026-W30-1\n"),
         "value.lastValidationTimestamp"),
    # --- object shape and meta keys
    Case("unknown-field", inbound(PARTNER_IN + "senderIpAdresses: [203.0.113.10]\n"), "field.unknown"),
    Case("credential-in-connector", inbound(PARTNER_IN + "clientSecret: hunter2\n"), "stack.secret"),
    Case("adopt-yes", inbound(PARTNER_IN + "adopt: yes\n"), "value.adopt"),
    Case("renamed-from-on-accepted-domain", domain("renamedFrom: contoso.net\n"), "field.renamed-from"),
    Case("renamed-from-number", inbound(PARTNER_IN + "renamedFrom: 42\n"), "value.renamedFrom"),
    Case("missing-name", HEAD + "inboundConnectors:\n  - senderDomains: [fabrikam.com]\n", "field.required"),
    Case("connector-list-is-a-mapping", HEAD + "inboundConnectors:\n  name: Partner in\n", "stack.shape"),
    # --- across objects and below the schema (JSON Schema cannot see these; see KNOWN_DIFFERENCES)
    Case("duplicate-names-in-other-case",
         HEAD + "inboundConnectors:\n  - name: Partner in\n" + _block(PARTNER_IN)
         + "  - name: PARTNER IN\n" + _block(PARTNER_IN), "stack.duplicate"),
    Case("renamed-from-its-own-name", inbound(PARTNER_IN + "renamedFrom: partner IN\n"), "value.renamedFrom"),
    Case("renamed-from-a-name-still-declared",
         HEAD + "inboundConnectors:\n  - name: Partner in\n" + _block(PARTNER_IN)
         + "  - name: Partner in 2\n" + _block(PARTNER_IN + "renamedFrom: Partner in\n"), "stack.renamed-from"),
    Case("duplicate-yaml-key", inbound(PARTNER_IN + "requireTls: true\nrequireTls: false\n"), "yaml.duplicate-key"),
    # --- the file's outer shape
    Case("no-tenant", "prune: false\n", "tenant.missing"),
    Case("tenant-says-no-tenant", tenant("cloud: commercial\n"), "tenant.which"),
    Case("tenant-id-not-a-guid", tenant("id: contoso\n"), "tenant.id"),
    Case("tenant-custom-initial-domain", tenant("initialDomain: contoso.com\n"), "tenant.initial-domain-not-initial"),
    Case("tenant-unknown-cloud", tenant("emulator: true\ncloud: Azure\n"), "tenant.cloud"),
    Case("tenant-plain-http-endpoint", tenant("emulator: true\nendpoint: http://127.0.0.1:8443\n"), "tenant.url"),
    Case("tenant-blank-ca-file", tenant("emulator: true\ncaFile: '  '\n"), "tenant.ca-file"),
    Case("tenant-client-secret", tenant("emulator: true\nclientSecret: hunter2\n"), "stack.secret"),
    Case("prune-yes", HEAD + "prune: yes\n", "stack.prune"),
    Case("unknown-top-level-key", HEAD + "inboundConnector: []\n", "stack.unknown-key"),
]

GOOD: list[Case] = [
    Case("shipped-dev-stack", (ROOT / "stacks" / "dev.yaml").read_text(encoding="utf-8"), None),
    Case("shipped-prod-stack", (ROOT / "stacks" / "prod.yaml").read_text(encoding="utf-8"), None),
    # the issue: the CLI accepts these and the old schema flagged them
    Case("require-tls-as-text", inbound(PARTNER_IN + "requireTls: 'true'\n"), None),
    Case("cloud-in-title-case", tenant("emulator: true\ncloud: Commercial\n"), None),
    Case("enums-in-any-case",
         outbound("connectorType: onpremises\nrecipientDomains: [contoso.com]\nuseMxRecord: FALSE\n"
                  "smartHosts: [mail.contoso.com]\ntlsSettings: DOMAINVALIDATION\ntlsDomain: Mail.Contoso.com\n"
                  "mtaStsMode: none\nsmtpDaneMode: ' Opportunistic '\n"), None),
    Case("booleans-in-yaml-1-2-spellings", inbound(PARTNER_IN + "enabled: True\nrequireTls: FALSE\n"), None),
    Case("meta-and-top-level-booleans-as-text", tenant("emulator: 'true'\n") + "prune: 'False'\n"
         + "inboundConnectors:\n  - name: Partner in\n" + _block("adopt: 'TRUE'\n"), None),
    Case("sender-domains-as-address-spaces", inbound("senderDomains: ['smtp:Fabrikam.com;1', 'SMTP:*.fabrikam.com', '*']\n"),
         None),
    Case("values-with-white-space", inbound(RELAY_IN.replace("203.0.113.10", "' 203.0.113.10 '")
                                            + "comment: '  padded  '\n", name="'  Padded name  '"), None),
    Case("sender-ip-forms", inbound(RELAY_IN.replace("203.0.113.10", "203.0.113.7/24, 198.51.100.0/032, 8.8.8.8")), None),
    Case("domain-forms", outbound("recipientDomains: [Fabrikam.COM., '*.sub.fabrikam.com', xn--bcher-kva.example, a.b1]\n"
                                  + "tlsSettings: DomainValidation\ntlsDomain: '*.fabrikam.com'\n"), None),
    Case("smart-host-forms", outbound(ONPREM_OUT.replace("[mail.contoso.com]",
                                                         "[mail.contoso.com, 198.51.100.25, 203.0.113.0/24, 8.0.0.0/8]")),
         None),
    Case("enhanced-filtering-forms",
         inbound(RELAY_IN + "efSkipLastIp: false\nefSkipIps: [10.0.0.1, '2001:db8::/32', 198.51.100.1-198.51.100.9, "
                 "'::ffff:10.0.0.1', 'fe80::1 - fe80::9']\nefUsers: ['SMTP:Alice@Contoso.com', bob.o+tag@contoso.com]\n"),
         None),
    Case("timestamp-forms", outbound(PARTNER_OUT + "lastValidationTimestamp: 2026-07-24T18:59:12.0000000\n"
                                     "isValidated: true\n") , None),
    Case("leap-day-timestamp", outbound(PARTNER_OUT + "lastValidationTimestamp: '2028-02-29 10:00+01:00'\n"), None),
    Case("nulls-mean-empty",
         inbound(PARTNER_IN + "comment: null\nsenderIpAddresses: null\ntlsSenderCertificateName: null\n")
         + "outboundConnectors: null\nacceptedDomains:\n", None),
    Case("tenant-by-id-and-initial-domain",
         tenant("id: 6F1C2D3E-4B5A-4C7D-8E9F-0A1B2C3D4E5F\ninitialDomain: Contoso.onmicrosoft.com\ncloud: GCCHigh\n"
                "endpoint: HTTPS://outlook.office365.us\ncaFile: null\n"), None),
    Case("adopted-connector-rules-skip-undeclared-fields", outbound("adopt: true\nuseMxRecord: false\n"), None),
    Case("adopted-inbound-without-sender-domains", inbound("adopt: true\nconnectorType: OnPremises\n"), None),
    Case("certificate-relay", inbound("connectorType: OnPremises\nsenderDomains: ['*']\nrequireTls: true\n"
                                      "tlsSenderCertificateName: '*.contoso.com'\ncloudServicesMailEnabled: true\n"),
         None),
    Case("partner-restricted-to-ips", inbound(PARTNER_IN + "senderIpAddresses: [198.51.100.0/24]\n"
                                              "restrictDomainsToIpAddresses: true\n"), None),
    Case("rule-scoped-outbound", outbound("isTransportRuleScoped: true\nsmartHosts: [mail.fabrikam.com]\n"
                                          "useMxRecord: false\n"), None),
    Case("centralized-transport", outbound(ONPREM_OUT.replace("[contoso.com]", "['*']")
                                           + "routeAllMessagesViaOnPremises: true\n"), None),
    Case("internal-relay-with-subdomains", domain("domainType: internalrelay\nmatchSubDomains: true\n"), None),
    Case("renamed-connector", inbound(PARTNER_IN + "renamedFrom: Old partner in\n"), None),
    Case("anchors-and-merge-keys", HEAD + "inboundConnectors:\n  - &first\n    name: First\n"
         "    senderDomains: [fabrikam.com]\n  - <<: *first\n    name: Second\n", None),
]

CASES: list[Case] = BAD + GOOD
