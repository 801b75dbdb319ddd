"""The field tables: one :class:`ResourceSpec` per resource type, each a table of :class:`Field` rows, the
cross-field rules that the service applies to each type (exo-cmdlets.md §2.2, §4.2, §6.2, §12) and the order in
which the service needs the types written (:class:`After`, :func:`write_order`).

Everything that lists resource types (plan, apply, export, validate's summary, the Pulumi program and its resource
classes, docs and schema) reads :data:`SPECS`, so a new type is one :class:`ResourceSpec` passed to :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import cached_property
from typing import Any, Callable, Mapping

from .kinds import META_KEYS, RENAMED_FROM, UNSET, Bool, Choice, Domain, Email, Kind, ListOf, Mode, SenderDomain
from .kinds import SenderIp, SkipIp, SmartHost
from .kinds import Text, Timestamp
from .rules import AllOf, AnyOf, Cond, Has, Is, IsSet, Not, Rule, StartsWith

__all__ = ["Field", "After", "ResourceSpec", "INBOUND", "OUTBOUND", "ACCEPTED_DOMAIN", "SPECS", "spec_for_stack_key",
           "register", "write_order", "Phase", "write_phases", "late_after", "is_late", "holds"]


# ---------------------------------------------------------------------------------------------------------------------
# Field tables
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One property of a resource type: its names, value kind, default and how the service treats it."""

    name: str  # camelCase stack/Pulumi key
    param: str  # Exchange parameter and Get-* property name
    kind: Kind = dc_field(hash=False)
    default: Any = dc_field(default=UNSET, hash=False)  # the service default, normalised (UNSET if none)
    mode: Mode = Mode.CREATE_AND_SET
    risky: bool = False  # flagged in PR previews
    required_on_create: bool = False
    description: str = ""
    exported: bool = True  # written by `mailflow export`; False for state the service keeps, not configuration


@dataclass(frozen=True)
class After:
    """This type's objects are written after the objects of ``type_name`` (and removed before them).

    ``when`` (on this object's values) limits the dependency to some objects; ``on`` (on the other object's values)
    to some of the objects waited for. Without ``when`` the dependency orders the types themselves (see
    :func:`write_order`); with ``when`` it may point at a type written later: the objects it holds for then wait
    in a late phase (an InternalRelay accepted domain waits for the OnPremises outbound connectors that route it).
    """

    type_name: str
    when: Cond | None = None
    on: Cond | None = None


@dataclass(frozen=True)
class ResourceSpec:
    """One resource type, described once: its fields, rules and how it is named, read and written."""

    type_name: str
    stack_key: str
    noun: str
    identity_field: str
    fields: tuple[Field, ...]
    creatable: bool = True
    deletable: bool = True
    label: str = ""  # what a mail admin calls one ("inbound connector"), in messages; the type name when empty
    # Cross-field rules the service applies to one object of this type (checked on the merged object).
    rules: tuple[Rule, ...] = dc_field(default=(), hash=False, compare=False)
    # Types whose objects are written first (see After and write_order).
    after: tuple[After, ...] = dc_field(default=(), hash=False, compare=False)

    @property
    def what(self) -> str:
        return self.label or self.type_name

    @property
    def force_new(self) -> tuple[str, ...]:
        """Fields that New-* takes and Set-* does not: a change replaces the object (Pulumi ``replaces``; the CLI
        refuses it)."""
        return tuple(f.name for f in self.fields if f.mode is Mode.CREATE_ONLY)

    @cached_property
    def by_name(self) -> Mapping[str, Field]:
        """Each field by its name (read only): plans and loaders ask for fields hundreds of thousands of times,
        so a dict rather than a scan of the table."""
        return {f.name: f for f in self.fields}

    def field(self, name: str) -> Field:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"{self.type_name} has no field {name!r}") from None

    def has_field(self, name: str) -> bool:
        return name in self.by_name

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
    def _defaults_map(self) -> dict[str, Any]:
        return dict(self._defaults)

    @cached_property
    def _list_defaults(self) -> tuple[str, ...]:
        return tuple(name for name, value in self._defaults if isinstance(value, list))

    @cached_property
    def _settable_validators(self) -> dict[str, Any]:
        """Each field a desired object may declare -> its kind's ``validate`` (read once per spec, not per value).
        Read-only fields other than the identity, and names that are also meta keys, are left to the slow path."""
        return {f.name: f.kind.validate for f in self.fields
                if (f.mode is not Mode.READ_ONLY or f.name == self.identity_field)
                and f.name not in META_KEYS and f.name != RENAMED_FROM}

    @cached_property
    def _may_be_required(self) -> tuple[Field, ...]:
        """The fields normalise_desired may report as missing: the identity, and those New-* requires."""
        return tuple(f for f in self.fields if f.name == self.identity_field or f.required_on_create)

    @cached_property
    def _live_key_cache(self) -> dict[tuple[Any, ...], tuple[tuple[str, Any, Any, Any], ...]]:
        return {}


_C, _CO, _S, _R = Mode.CREATE_AND_SET, Mode.CREATE_ONLY, Mode.SET_ONLY, Mode.READ_ONLY
# Columns of a row: name, param, kind, default, mode, risky, required_on_create, description. "risky" marks the
# fields whose change can stop, reject or misroute mail (which connector applies, where mail goes, TLS), so PR
# previews call them out; comments and bookkeeping fields are not risky.

# ---------------------------------------------------------------------------------------------------------------------
# Cross-field rules (on a merged object, as the service validates the merged state, §2.2 / §4.2)
# ---------------------------------------------------------------------------------------------------------------------

_ON_PREM = Is("connectorType", "OnPremises")


_INTERNAL_RELAY = Is("domainType", "InternalRelay")
# Connectors wait for the accepted domains, except those that wait for the connectors (see ACCEPTED_DOMAIN.after).
_NOT_LATE_DOMAIN = Not(_INTERNAL_RELAY)

_INBOUND_RULES: tuple[Rule, ...] = (
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
)

_OUTBOUND_RULES: tuple[Rule, ...] = (
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
)

_ACCEPTED_DOMAIN_RULES: tuple[Rule, ...] = (
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
)


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
    rules=_INBOUND_RULES,
    # Inbound connectors may name accepted domains (AssociatedAcceptedDomains).
    after=(After("AcceptedDomain", on=_NOT_LATE_DOMAIN),),
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
    rules=_OUTBOUND_RULES,
    # Centralized transport (RouteAllMessagesViaOnPremises) needs an enabled OnPremises inbound connector (§4.2
    # rule 5): such a connector waits for those (in Pulumi), and inbound connectors are written first (the CLI).
    after=(After("AcceptedDomain", on=_NOT_LATE_DOMAIN),
           After("InboundConnector", when=IsSet("routeAllMessagesViaOnPremises"),
                 on=AllOf(_ON_PREM, Is("enabled", True)))),
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
        # A validation run's outcome, not configuration: `mailflow export` leaves them out.
        Field("isValidated", "IsValidated", Bool(), False, _S, False, False,
              "Whether the connector was validated; Validate-OutboundConnector does not set it. Set-only.",
              exported=False),
        Field("lastValidationTimestamp", "LastValidationTimestamp", Timestamp(), None, _S, False, False,
              "When the connector was last validated (UTC). Set-only.", exported=False),
    ),
)

ACCEPTED_DOMAIN = ResourceSpec(
    type_name="AcceptedDomain",
    stack_key="acceptedDomains",
    noun="AcceptedDomain",
    identity_field="domainName",
    label="accepted domain",
    rules=_ACCEPTED_DOMAIN_RULES,
    # Mail for an InternalRelay domain's unknown recipients leaves through an OnPremises outbound connector, so the
    # domain turns InternalRelay only once those connectors are written (else the tenant bounces that mail in
    # between, and the service warns that no connector routes the domain).
    after=(After("OutboundConnector", when=_INTERNAL_RELAY, on=_ON_PREM),),
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

SPECS: dict[str, ResourceSpec] = {}


def spec_for_stack_key(stack_key: str) -> ResourceSpec | None:
    for spec in SPECS.values():
        if spec.stack_key == stack_key:
            return spec
    return None


def register(spec: ResourceSpec) -> Callable[[], None]:
    """Add a resource type; returns the function that removes it again (for tests that add a type for a while).

    Its fields, rules and dependencies are checked against each other here, so a mistake fails at import or in the
    test, not in the middle of a plan.
    """
    if spec.type_name in SPECS or spec_for_stack_key(spec.stack_key) is not None:
        raise ValueError(f"a resource type {spec.type_name} or stack key {spec.stack_key} is already registered")
    if not spec.has_field(spec.identity_field):
        raise ValueError(f"{spec.type_name}: identity field {spec.identity_field!r} is not one of its fields")
    for dep in spec.after:
        if dep.type_name not in SPECS:
            raise ValueError(f"{spec.type_name} is written after {dep.type_name}, which is not registered")
    SPECS[spec.type_name] = spec
    try:
        write_order()
    except ValueError:
        del SPECS[spec.type_name]
        raise
    return lambda: _unregister(spec)


def _unregister(spec: ResourceSpec) -> None:
    if SPECS.get(spec.type_name) is spec:
        del SPECS[spec.type_name]


def write_order(specs: Mapping[str, ResourceSpec] | None = None) -> tuple[ResourceSpec, ...]:
    """Every type in the order its objects are written (creates, updates); deletes go in the reverse order.

    A type comes after every type it has an :class:`After` for, except a conditional one (with ``when``) on a type
    that itself waits for this one: that dependency is late (see :func:`late_after`). Otherwise registration order
    holds.
    """
    specs = SPECS if specs is None else specs
    done: list[str] = []
    pending = list(specs.values())
    while pending:
        ready = next((s for s in pending
                      if all(d.type_name in done or _is_late(s, d, specs) for d in s.after)), None)
        if ready is None:
            raise ValueError("resource types wait for each other in a circle: "
                             + ", ".join(s.type_name for s in pending))
        done.append(ready.type_name)
        pending.remove(ready)
    return tuple(specs[name] for name in done)


def _is_late(spec: ResourceSpec, dep: After, specs: Mapping[str, ResourceSpec]) -> bool:
    """A conditional dependency on a type that waits, unconditionally and maybe through others, for ``spec``."""
    if dep.when is None:
        return False
    seen: set[str] = set()
    todo = [dep.type_name]
    while todo:
        name = todo.pop()
        if name == spec.type_name:
            return True
        if name in seen or name not in specs:
            continue
        seen.add(name)
        todo += [d.type_name for d in specs[name].after if d.when is None]
    return False


@dataclass(frozen=True)
class Phase:
    """One step of a write: the objects of ``spec`` that are ``late`` (or not)."""

    spec: ResourceSpec
    late: bool


def late_after(spec: ResourceSpec) -> tuple[After, ...]:
    """The conditional dependencies of ``spec`` on a type written after it: the objects they hold for are late."""
    return tuple(d for d in spec.after if _is_late(spec, d, SPECS))


def holds(cond: Cond | None, values: Mapping[str, Any]) -> bool:
    """Whether ``cond`` holds on ``values``; a condition on a field ``values`` lacks does not (it is unknown)."""
    if cond is None:
        return True
    return all(name in values for name in cond.fields()) and cond.test(values)


def is_late(spec: ResourceSpec, values: Mapping[str, Any]) -> bool:
    """Whether an object of ``spec`` with these (new) values waits for a type written after its own."""
    return any(holds(d.when, values) for d in late_after(spec))


def write_phases() -> tuple[Phase, ...]:
    """The write phases in order: each type's objects, then the late objects of each type with a late dependency
    (after the last type they wait for)."""
    order = write_order()
    phases = [Phase(s, False) for s in order]
    for spec in order:
        waits = late_after(spec)
        if waits:
            last = max(i for i, p in enumerate(phases) if any(p.spec.type_name == d.type_name for d in waits))
            phases.insert(last + 1, Phase(spec, True))
    return tuple(phases)


for _spec in (INBOUND, OUTBOUND, ACCEPTED_DOMAIN):
    SPECS[_spec.type_name] = _spec


