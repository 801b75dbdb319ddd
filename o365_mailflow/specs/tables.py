"""The field tables: one :class:`ResourceSpec` per resource type, each a table of :class:`Field` rows, and the
cross-field rules that the service applies to each type (exo-cmdlets.md §2.2, §4.2, §6.2, §12).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import cached_property
from typing import Any

from .kinds import UNSET, Bool, Choice, Domain, Email, Kind, ListOf, Mode, SenderDomain, SenderIp, SkipIp, SmartHost
from .kinds import Text, Timestamp
from .rules import AllOf, AnyOf, Has, Is, IsSet, Not, Rule, StartsWith

__all__ = ["Field", "ResourceSpec", "INBOUND", "OUTBOUND", "ACCEPTED_DOMAIN", "SPECS", "RULES", "spec_for_stack_key"]


# ---------------------------------------------------------------------------------------------------------------------
# Field tables
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str  # camelCase stack/Pulumi key
    param: str  # Exchange parameter and Get-* property name
    kind: Kind = dc_field(hash=False)
    default: Any = dc_field(default=UNSET, hash=False)  # the service default, normalised (UNSET if none)
    mode: Mode = Mode.CREATE_AND_SET
    risky: bool = False  # flagged in PR previews
    required_on_create: bool = False
    description: str = ""


@dataclass(frozen=True)
class ResourceSpec:
    type_name: str
    stack_key: str
    noun: str
    identity_field: str
    fields: tuple[Field, ...]
    creatable: bool = True
    deletable: bool = True
    label: str = ""  # what a mail admin calls one ("inbound connector"), in messages; the type name when empty

    @property
    def what(self) -> str:
        return self.label or self.type_name

    @cached_property
    def _by_name(self) -> dict[str, Field]:
        # A dict, not a scan of the table: plans and loaders ask for fields hundreds of thousands of times.
        return {f.name: f for f in self.fields}

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.type_name} has no field {name!r}") from None

    def has_field(self, name: str) -> bool:
        return name in self._by_name

    @property
    def renamable(self) -> bool:
        """Whether a stack may declare ``renamedFrom``: only connectors (an accepted domain is its own name)."""
        return self.identity_field == "name"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def _defaults(self) -> tuple[tuple[str, Any], ...]:
        return tuple((f.name, f.default) for f in self.fields if f.default is not UNSET)

    @cached_property
    def _live_key_cache(self) -> dict[tuple[Any, ...], tuple[tuple[Field, Any], ...]]:
        return {}

    @cached_property
    def _by_param(self) -> dict[str, Field]:
        return {f.param.lower(): f for f in reversed(self.fields)}  # reversed: the first of a repeated param wins

    def by_param(self, param: str) -> Field:
        try:
            return self._by_param[param.lower()]
        except KeyError:
            raise KeyError(f"{self.type_name} has no parameter {param!r}") from None


_C, _CO, _S, _R = Mode.CREATE_AND_SET, Mode.CREATE_ONLY, Mode.SET_ONLY, Mode.READ_ONLY
# Columns of a row: name, param, kind, default, mode, risky, required_on_create, description. "risky" marks the
# fields whose change can stop, reject or misroute mail (which connector applies, where mail goes, TLS), so PR
# previews call them out; comments and bookkeeping fields are not risky.

_CONNECTOR_TYPE = Choice(["OnPremises", "Partner"])
# Get-* returns AdminUI for connectors made in the admin center, and old objects may have no source at all;
# both read as Default, as Microsoft365DSC does ([L] S7, [M] S5).
_CONNECTOR_SOURCE = Choice(
    ["Default", "HybridWizard", "Migrated"],
    refused={"AdminUI": "Get-* reports AdminUI for connectors made in the admin center; write Default"},
    live_aliases={"AdminUI": "Default", "": "Default"},
)
_NAME = Text(64, min_length=1, what="a connector name")
_COMMENT = Text(1024, single_line=False, what="a comment")

# Fields both connector types share, declared once (same parameter, kind, default and meaning on both cmdlets).
_CONNECTOR_NAME = Field(
    "name", "Name", _NAME, UNSET, _C, False, True,
    "Unique connector name (case-insensitive), at most 64 characters. To rename, change it and set "
    "renamedFrom to the old name: the plan is then an update of the same connector (same Guid).")
_CONNECTOR_ENABLED = Field("enabled", "Enabled", Bool(), True, _C, True, False, "Whether the connector is used.")
_CONNECTOR_SOURCE_FIELD = Field(
    "connectorSource", "ConnectorSource", _CONNECTOR_SOURCE, "Default", _C, False, False,
    "How the connector was made; Microsoft says not to change it. AdminUI reads as Default.")
_CONNECTOR_COMMENT = Field("comment", "Comment", _COMMENT, "", _C, False, False, "Free text, at most 1024 characters.")

INBOUND = ResourceSpec(
    type_name="InboundConnector",
    stack_key="inboundConnectors",
    noun="InboundConnector",
    identity_field="name",
    label="inbound connector",
    fields=(
        _CONNECTOR_NAME,
        _CONNECTOR_ENABLED,
        Field("connectorType", "ConnectorType", _CONNECTOR_TYPE, "Partner", _C, True, False,
              "OnPremises for your own servers and devices (relay, hybrid); Partner for other organisations."),
        _CONNECTOR_SOURCE_FIELD,
        _CONNECTOR_COMMENT,
        Field("senderDomains", "SenderDomains", ListOf(SenderDomain(), non_empty=True), UNSET, _C, True, True,
              "Sender domains the connector applies to: contoso.com, *.contoso.com, or * for all. Required."),
        Field("senderIpAddresses", "SenderIPAddresses", ListOf(SenderIp()), [], _C, True, False,
              "Public IPv4 addresses or CIDR /24-/32 that identify the sending servers (no private, loopback, "
              "link-local, multicast or reserved ranges; the RFC 5737 TEST-NET ranges count as public)."),
        Field("restrictDomainsToIpAddresses", "RestrictDomainsToIPAddresses", Bool(), False, _C, True, False,
              "Partner: reject mail from the sender domains unless it comes from senderIpAddresses."),
        Field("restrictDomainsToCertificate", "RestrictDomainsToCertificate", Bool(), False, _C, True, False,
              "Partner: reject mail from the sender domains unless it presents tlsSenderCertificateName."),
        # Default conflicts between sources (§8: current docs say true, older docs, Microsoft365DSC and an
        # EAC-made connector say false). Project choice, shared with the emulator: false [I].
        Field("requireTls", "RequireTls", Bool(), False, _C, True, False,
              "Require TLS for mail received through this connector; needed with tlsSenderCertificateName."),
        Field("tlsSenderCertificateName", "TlsSenderCertificateName", Domain(wildcard=True, nullable=True), None, _C,
              True, False, "Subject or SAN domain of the sending server's TLS certificate (*.contoso.com allowed)."),
        Field("cloudServicesMailEnabled", "CloudServicesMailEnabled", Bool(), False, _C, False, False,
              "OnPremises hybrid: keep internal cross-premises headers (the Hybrid wizard sets it)."),
        Field("treatMessagesAsInternal", "TreatMessagesAsInternal", Bool(), False, _C, False, False,
              "OnPremises only: treat mail from on-premises as internal to the organisation."),
        Field("associatedAcceptedDomains", "AssociatedAcceptedDomains", ListOf(Domain(wildcard=True)), [], _C, False,
              False, "Accepted domains this connector is limited to (Microsoft advises it only for testing)."),
        Field("trustedOrganizations", "TrustedOrganizations", ListOf(Domain()), [], _C, False, False,
              "Other Microsoft 365 organisations trusted as mail sources (Microsoft 365 to Microsoft 365 only)."),
        Field("efSkipLastIp", "EFSkipLastIP", Bool(), False, _C, False, False,
              "Enhanced Filtering: skip the last hop. With false and no efSkipIps, Enhanced Filtering is off."),
        Field("efSkipIps", "EFSkipIPs", ListOf(SkipIp()), [], _C, False, False,
              "Enhanced Filtering: IP addresses, CIDR or ranges of your own hops to skip."),
        Field("efUsers", "EFUsers", ListOf(Email()), [], _C, False, False,
              "Enhanced Filtering applies only when every recipient is listed; empty means all recipients."),
    ),
)

_NONE_NOTE = "None is the word None (quote it if you like), not null"

OUTBOUND = ResourceSpec(
    type_name="OutboundConnector",
    stack_key="outboundConnectors",
    noun="OutboundConnector",
    identity_field="name",
    label="outbound connector",
    fields=(
        _CONNECTOR_NAME,
        _CONNECTOR_ENABLED,
        Field("connectorType", "ConnectorType", _CONNECTOR_TYPE, "Partner", _C, True, False,
              "OnPremises to route to your own servers (hybrid); Partner for other organisations."),
        _CONNECTOR_SOURCE_FIELD,
        _CONNECTOR_COMMENT,
        Field("recipientDomains", "RecipientDomains", ListOf(Domain(wildcard=True, star=True)), [], _C, True, False,
              "Recipient domains routed through this connector: contoso.com, *.contoso.com, or *."),
        Field("allAcceptedDomains", "AllAcceptedDomains", Bool(), False, _C, True, False,
              "OnPremises only: use this connector for every accepted domain (hybrid)."),
        Field("isTransportRuleScoped", "IsTransportRuleScoped", Bool(), False, _C, False, False,
              "Used only when a mail flow rule redirects to it; then no recipientDomains/allAcceptedDomains."),
        Field("useMxRecord", "UseMXRecord", Bool(), True, _C, True, False,
              "Deliver by the recipient domain's MX records; false requires smartHosts."),
        Field("smartHosts", "SmartHosts", ListOf(SmartHost()), [], _C, True, False,
              "Host names or public IPv4 addresses to deliver to (port 25, no port syntax)."),
        Field("tlsSettings", "TlsSettings",
              Choice(["EncryptionOnly", "CertificateValidation", "DomainValidation"], nullable=True), None, _C, True,
              False, "TLS requirement towards the destination; null for opportunistic TLS."),
        Field("tlsDomain", "TlsDomain", Domain(wildcard=True, nullable=True), None, _C, True, False,
              "Domain the destination certificate must match; set if and only if tlsSettings is DomainValidation."),
        Field("routeAllMessagesViaOnPremises", "RouteAllMessagesViaOnPremises", Bool(), False, _C, True, False,
              "OnPremises only: centralized mail transport (all internet mail goes through on-premises)."),
        Field("cloudServicesMailEnabled", "CloudServicesMailEnabled", Bool(), False, _C, False, False,
              "OnPremises only: keep internal cross-premises headers (hybrid)."),
        Field("senderRewritingEnabled", "SenderRewritingEnabled", Bool(), False, _C, False, False,
              "OnPremises only: apply Sender Rewriting Scheme before routing to on-premises."),
        Field("testMode", "TestMode", Bool(), False, _C, False, False,
              "Test-mode connectors are hidden from a plain Get-OutboundConnector."),
        Field("mtaStsMode", "MtaStsMode", Choice(["Opportunistic", "None"]), "Opportunistic", _C, False, False,
              f"MTA-STS enforcement: Opportunistic or None ({_NONE_NOTE})."),
        # Only Opportunistic has been seen live; Mandatory and None come from the docs ([D], values [INF]).
        Field("smtpDaneMode", "SmtpDaneMode", Choice(["Opportunistic", "Mandatory", "None"]), "Opportunistic", _C,
              False, False, f"SMTP DANE enforcement: Opportunistic, Mandatory or None ({_NONE_NOTE})."),
        # Set-only (§4.1 [D]): a create sends these in a follow-up Set-OutboundConnector (split_create), as
        # Microsoft365DSC does for ValidationRecipients.
        Field("validationRecipients", "ValidationRecipients", ListOf(Email()), [], _S, False, False,
              "Addresses used by Validate-OutboundConnector. Set-only: applied right after creation."),
        Field("isValidated", "IsValidated", Bool(), False, _S, False, False,
              "Whether the connector was validated; Validate-OutboundConnector does not set it. Set-only."),
        Field("lastValidationTimestamp", "LastValidationTimestamp", Timestamp(), None, _S, False, False,
              "When the connector was last validated (UTC). Set-only."),
    ),
)

ACCEPTED_DOMAIN = ResourceSpec(
    type_name="AcceptedDomain",
    stack_key="acceptedDomains",
    noun="AcceptedDomain",
    identity_field="domainName",
    label="accepted domain",
    # New-/Remove-AcceptedDomain do not exist in Exchange Online (§6.1): domains are added and verified in the
    # Microsoft 365 admin center. The resource adopts an existing domain and only ever calls Set-AcceptedDomain,
    # so every settable field is SET_ONLY and the identity is READ_ONLY.
    creatable=False,
    deletable=False,
    fields=(
        Field("domainName", "DomainName", Domain(wildcard=True), UNSET, _R, False, False,
              "The verified domain (identity); it must already exist in the tenant."),
        Field("domainType", "DomainType", Choice(
            ["Authoritative", "InternalRelay"],
            refused={"ExternalRelay": "ExternalRelay is on-premises only; Exchange Online refuses it (§6.2)"},
        ), "Authoritative", _S, True, False,
              "Authoritative (unknown recipients rejected) or InternalRelay (relayed on-premises)."),
        Field("matchSubDomains", "MatchSubDomains", Bool(), False, _S, True, False,
              "InternalRelay only: also accept mail for every subdomain."),
        Field("outboundOnly", "OutboundOnly", Bool(), False, _S, False, False,
              "For the on-premises organisation's domain when on-premises uses cloud email protection."),
        Field("sendingFromDomainDisabled", "SendingFromDomainDisabled", Bool(), False, _S, True, False,
              "Block sending from addresses in this domain (parked or legacy domains)."),
        Field("sendingToDomainDisabled", "SendingToDomainDisabled", Bool(), False, _S, True, False,
              "Block delivery to this domain (e.g. an unused MOERA domain)."),
        # Undocumented ([D] placeholders): no known default, so nothing is assumed when undeclared.
        Field("canHaveCloudCache", "CanHaveCloudCache", Bool(), UNSET, _S, False, False,
              "Undocumented by Microsoft."),
        Field("mailFlowRegion", "MailFlowRegion", Text(64, what="a region name"), UNSET, _S, False, False,
              "Undocumented by Microsoft."),
        Field("enableNego2Authentication", "EnableNego2Authentication", Bool(), UNSET, _S, False, False,
              "Internal use; cannot be combined with a wildcard domain."),
    ),
)

SPECS: dict[str, ResourceSpec] = {s.type_name: s for s in (INBOUND, OUTBOUND, ACCEPTED_DOMAIN)}


def spec_for_stack_key(stack_key: str) -> ResourceSpec | None:
    for spec in SPECS.values():
        if spec.stack_key == stack_key:
            return spec
    return None


_ON_PREM = Is("connectorType", "OnPremises")


RULES: dict[str, tuple[Rule, ...]] = {
    "InboundConnector": (
        # §2.2 rule 1, §12 (InboundConnectorMissingTlsCertificateOrSenderIP) [X]
        Rule("inbound.onpremises-needs-ip-or-cert",
              AllOf(_ON_PREM, Not(IsSet("senderIpAddresses")), Not(IsSet("tlsSenderCertificateName"))),
              ("connectorType", "senderIpAddresses", "tlsSenderCertificateName"),
              "an OnPremises inbound connector needs senderIpAddresses or tlsSenderCertificateName",
              "declare senderIpAddresses or tlsSenderCertificateName"),
        # §2.2 rule 2, §12 (InboundConnectorRequiredTlsSettingsInvalid) [X]
        Rule("inbound.certificate-needs-require-tls", AllOf(IsSet("tlsSenderCertificateName"), Not(IsSet("requireTls"))),
              ("requireTls", "tlsSenderCertificateName"),
              "requireTls must be true when tlsSenderCertificateName is set", "requireTls: true"),
        # §2.2 rule 3, §12 (InboundConnectorInvalidRestrictDomainsToIPAddresses) [X]
        Rule("inbound.restrict-ip-needs-ips",
              AllOf(IsSet("restrictDomainsToIpAddresses"), Not(IsSet("senderIpAddresses"))),
              ("restrictDomainsToIpAddresses",),
              "restrictDomainsToIpAddresses needs senderIpAddresses", "declare senderIpAddresses, or false"),
        # §2.2 rule 4, §12 (InboundConnectorInvalidIPCertificateCombinations) [X]
        Rule("inbound.restrict-ip-and-certificate",
              AllOf(IsSet("restrictDomainsToIpAddresses"), IsSet("restrictDomainsToCertificate")),
              ("restrictDomainsToCertificate", "restrictDomainsToIpAddresses"),
              "restrictDomainsToCertificate and restrictDomainsToIpAddresses cannot both be true",
              "at most one of them true; use two connectors"),
        # §2.2 rule 5, §12 (InboundConnectorInvalidRestrictDomainsToCertificate) [X]
        Rule("inbound.restrict-certificate-needs-certificate",
              AllOf(IsSet("restrictDomainsToCertificate"), Not(IsSet("tlsSenderCertificateName"))),
              ("restrictDomainsToCertificate",),
              "restrictDomainsToCertificate needs tlsSenderCertificateName",
              "declare tlsSenderCertificateName, or false"),
        # §2.2 rule 6, §12 (InboundConnectorIncorrectCloudServicesMailEnabled) [X]
        Rule("inbound.cloud-services-mail-needs-onpremises", AllOf(IsSet("cloudServicesMailEnabled"), Not(_ON_PREM)),
              ("cloudServicesMailEnabled", "connectorType"),
              "cloudServicesMailEnabled is only allowed on OnPremises connectors", "connectorType: OnPremises"),
        # §2.2 rule 7 and §2.1 TreatMessagesAsInternal [D]
        Rule("inbound.treat-as-internal-needs-onpremises", AllOf(IsSet("treatMessagesAsInternal"), Not(_ON_PREM)),
              ("treatMessagesAsInternal", "connectorType"),
              "treatMessagesAsInternal is only allowed on OnPremises connectors", "connectorType: OnPremises"),
        Rule("inbound.treat-as-internal-excludes-cloud-services-mail",
              AllOf(IsSet("treatMessagesAsInternal"), IsSet("cloudServicesMailEnabled")),
              ("treatMessagesAsInternal", "cloudServicesMailEnabled"),
              "treatMessagesAsInternal cannot be true while cloudServicesMailEnabled is true",
              "at most one of them true"),
    ),
    "OutboundConnector": (
        # §4.2 rule 1, §12 (OutboundConnectorIncorrectTransportRuleScopedParameters) [X]
        Rule("outbound.rule-scoped-has-no-domains",
              AllOf(IsSet("isTransportRuleScoped"), AnyOf(IsSet("recipientDomains"), IsSet("allAcceptedDomains"))),
              ("recipientDomains", "allAcceptedDomains", "isTransportRuleScoped"),
              "a transport-rule-scoped connector cannot have recipientDomains or allAcceptedDomains",
              "isTransportRuleScoped: true with no domains, or domains with isTransportRuleScoped: false"),
        Rule("outbound.needs-domains-or-rule-scope",
              AllOf(Not(IsSet("isTransportRuleScoped")), Not(IsSet("recipientDomains")),
                    Not(IsSet("allAcceptedDomains"))),
              ("recipientDomains", "allAcceptedDomains", "isTransportRuleScoped"),
              "an outbound connector needs recipientDomains or allAcceptedDomains: true, unless isTransportRuleScoped is true",
              "recipientDomains, allAcceptedDomains: true, or isTransportRuleScoped: true"),
        # §4.2 rule 2, §12 (…InvalidDomainValidationWithoutTlsDomain / …InvalidTlsDomainWithoutDomainValidation) [X]
        Rule("outbound.domain-validation-needs-tls-domain",
              AllOf(Is("tlsSettings", "DomainValidation"), Not(IsSet("tlsDomain"))), ("tlsDomain", "tlsSettings"),
              "tlsSettings DomainValidation needs tlsDomain", "declare tlsDomain"),
        Rule("outbound.tls-domain-needs-domain-validation",
              AllOf(IsSet("tlsDomain"), Not(Is("tlsSettings", "DomainValidation"))), ("tlsSettings", "tlsDomain"),
              "tlsDomain can only be set when tlsSettings is DomainValidation", "tlsSettings: DomainValidation"),
        # §4.2 rule 3, §12 (OutboundConnectorSmartHostShouldBePresentIfUseMXRecordFalse) [D][X]
        Rule("outbound.no-mx-needs-smart-hosts", AllOf(Is("useMxRecord", False), Not(IsSet("smartHosts"))),
              ("smartHosts", "useMxRecord"),
              "useMxRecord false needs smartHosts", "declare smartHosts"),
        # §4.2 rule 3 (…UseMXRecordShouldBeFalseIfSmartHostsIsPresent) [X]: the service silently clears smart hosts
        # when UseMXRecord is true, so declaring both could never be reached.
        Rule("outbound.mx-excludes-smart-hosts", AllOf(Is("useMxRecord", True), IsSet("smartHosts")),
              ("smartHosts", "useMxRecord"),
              "smartHosts are only used with useMxRecord: false (Exchange clears them when useMxRecord is true)",
              "useMxRecord: false"),
        # §4.2 rule 4, §12 (Partner + OnPremises-only flags) [D][X]
        *(
            Rule(f"outbound.{flag}-needs-onpremises", AllOf(IsSet(flag), Not(_ON_PREM)), (flag, "connectorType"),
                  f"{flag} is only allowed on OnPremises connectors", "connectorType: OnPremises")
            for flag in ("routeAllMessagesViaOnPremises", "cloudServicesMailEnabled", "allAcceptedDomains",
                         "senderRewritingEnabled")
        ),
        # §4.2 rule 5, §12 (OnPremisesConnectorHasRouteUsingMX) [X]
        Rule("outbound.onpremises-excludes-mx", AllOf(_ON_PREM, Is("useMxRecord", True)),
              ("useMxRecord", "connectorType"),
              "an OnPremises outbound connector must use smart hosts: set useMxRecord: false", "useMxRecord: false"),
        # §4.2 rule 5, §12 (RecipientDomainStarOnPremiseOutboundConnector) [X]
        Rule("outbound.onpremises-star-needs-route-all",
              AllOf(_ON_PREM, Has("recipientDomains", "*"), Not(IsSet("routeAllMessagesViaOnPremises"))),
              ("recipientDomains", "routeAllMessagesViaOnPremises"),
              "recipientDomains * on an OnPremises connector needs routeAllMessagesViaOnPremises: true",
              "routeAllMessagesViaOnPremises: true, or list the domains"),
        # Not checked offline: RouteAllMessagesViaOnPremises needs an enabled OnPremises inbound connector without
        # AssociatedAcceptedDomains (§4.2 rule 5); the tenant may hold one that the stack does not manage.
    ),
    "AcceptedDomain": (
        # §6.2, §12 (MatchSubDomainsIsInternalRelayOnlyException) [C][X]
        Rule("accepted-domain.match-subdomains-needs-internal-relay",
              AllOf(IsSet("matchSubDomains"), Not(Is("domainType", "InternalRelay"))),
              ("matchSubDomains", "domainType"),
              "matchSubDomains is only allowed on InternalRelay domains", "domainType: InternalRelay"),
        # §6.2 EnableNego2Authentication [X]: not with a wildcard domain name.
        Rule("accepted-domain.nego2-excludes-wildcard",
              AllOf(IsSet("enableNego2Authentication"), StartsWith("domainName", "*")),
              ("enableNego2Authentication",),
              "enableNego2Authentication cannot be used with a wildcard domain", "false"),
        # ExternalRelay is refused by the domainType value kind itself (§6.2, §12).
    ),
}
