"""The emulated tenant answers every accept/reject row of exo-cmdlets.md §12 like the service.

Matrix: one case per row of the table (ids name the row; a row with several inputs has one case per input;
ids starting "beyond-table" are further rules of §2.1/§4.1),
each run against a fresh tenant: optional set-up cmdlets, then the cmdlet under test, then the expected
answer: HTTP 400/403/404 with the rule's ErrorId (or exception type) in ``details[0].message``, or success,
with or without the row's warning (see ``test_cmdlets_support`` for how a tenant is reached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from test_cmdlets_support import Reply, tenant_factory  # noqa: F401  (fixture)

IN = "New-InboundConnector"
OUT = "New-OutboundConnector"

# A valid OnPremises inbound connector with no AssociatedAcceptedDomains: "tenant-scoped".
SCOPED_INBOUND = (IN, {"Name": "On-prem in", "ConnectorType": "OnPremises", "SenderDomains": ["*"],
                       "SenderIPAddresses": ["203.0.113.10"]})
ONPREM_OUT = {"ConnectorType": "OnPremises", "UseMXRecord": False, "SmartHosts": ["mail.contoso.com"]}


@dataclass(frozen=True)
class Row:
    cmdlet: str
    params: dict[str, Any]
    status: int = 200
    error: str = ""  # ErrorId or exception type expected in details[0].message
    warning: str = ""  # substring expected in @adminapi.warnings (success rows)
    setup: tuple[tuple[str, dict[str, Any]], ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    tenant_config: dict[str, Any] = field(default_factory=dict)


def _in(**params: Any) -> dict[str, Any]:
    return {"Name": "Partner in", "SenderDomains": ["contoso.com"], **params}


def _out(**params: Any) -> dict[str, Any]:
    return {"Name": "To partner", "RecipientDomains": ["fabrikam.com"], **params}


ROWS: dict[str, Row] = {
    "new-inbound-without-SenderDomains-is-a-binding-error": Row(
        IN, {"Name": "No domains"}, 400, "ParameterBindingException"),
    "duplicate-inbound-name-any-case-already-exists": Row(
        IN, _in(Name="PARTNER IN"), 400, "ErrorInboundConnectorAlreadyExistsException", setup=((IN, _in()),)),
    "SenderIPAddresses-ipv6-single-rejected": Row(
        IN, _in(SenderIPAddresses=["2001:db8::1"]), 400, "IPv6AddressesRangesAreNotAllowedInConnector"),
    "SenderIPAddresses-ipv6-cidr-rejected": Row(
        IN, _in(SenderIPAddresses=["2001:db8::/64"]), 400, "IPv6AddressesRangesAreNotAllowedInConnector"),
    "SenderIPAddresses-cidr-shorter-than-24-rejected": Row(
        IN, _in(SenderIPAddresses=["10.0.0.0/16"]), 400, "InvalidCidrRange"),
    "SenderIPAddresses-range-format-rejected": Row(
        IN, _in(SenderIPAddresses=["192.168.1.1-192.168.1.20"]), 400, "InvalidIPRangeFormat"),
    "SenderIPAddresses-private-ip-rejected": Row(
        IN, _in(SenderIPAddresses=["10.1.1.1"]), 400, "IPRangeInConnectorContainsReservedIPAddresses"),
    "beyond-table-onpremises-inbound-microsoft-datacenter-ip-rejected": Row(
        IN, _in(ConnectorType="OnPremises", SenderIPAddresses=["40.107.0.0/24"]), 400,
        "IPRangeInConnectorOverlapsFfoDatacenterIPAddresses"),
    "beyond-table-onpremises-inbound-microsoft-certificate-rejected": Row(
        IN, _in(ConnectorType="OnPremises", RequireTls=True, TlsSenderCertificateName="mail.protection.outlook.com"),
        400, "TlsSenderCertificateNameMatchesFfoFDSmtpCertificate"),
    "beyond-table-partner-inbound-microsoft-datacenter-ip-accepted": Row(
        IN, _in(SenderIPAddresses=["40.107.0.0/24"])),
    "SenderDomains-embedded-wildcard-rejected": Row(
        IN, _in(SenderDomains=["domain.*.contoso.com"]), 400, "InvalidAddressSpace"),
    "onpremises-inbound-without-ip-or-cert-rejected": Row(
        IN, _in(ConnectorType="OnPremises"), 400, "InboundConnectorMissingTlsCertificateOrSenderIP"),
    "RestrictDomainsToIPAddresses-without-ips-rejected": Row(
        IN, _in(RestrictDomainsToIPAddresses=True), 400, "InboundConnectorInvalidRestrictDomainsToIPAddresses"),
    "both-RestrictDomainsTo-rejected": Row(
        IN, _in(SenderIPAddresses=["203.0.113.10"], TlsSenderCertificateName="mail.contoso.com", RequireTls=True,
                RestrictDomainsToIPAddresses=True, RestrictDomainsToCertificate=True),
        400, "InboundConnectorInvalidIPCertificateCombinations"),
    "RestrictDomainsToCertificate-without-cert-rejected": Row(
        IN, _in(RestrictDomainsToCertificate=True), 400, "InboundConnectorInvalidRestrictDomainsToCertificate"),
    "TlsSenderCertificateName-with-RequireTls-false-rejected": Row(
        IN, _in(TlsSenderCertificateName="mail.contoso.com", RequireTls=False),
        400, "InboundConnectorRequiredTlsSettingsInvalid"),
    "partner-inbound-CloudServicesMailEnabled-rejected": Row(
        IN, _in(CloudServicesMailEnabled=True), 400, "InboundConnectorIncorrectCloudServicesMailEnabled"),
    "TreatMessagesAsInternal-on-partner-rejected": Row(
        IN, _in(TreatMessagesAsInternal=True), 400, "InboundConnectorIncorrectTreatMessagesAsInternal"),
    "TreatMessagesAsInternal-with-CloudServicesMailEnabled-rejected": Row(
        IN, _in(ConnectorType="OnPremises", SenderIPAddresses=["203.0.113.10"], CloudServicesMailEnabled=True,
                TreatMessagesAsInternal=True), 400, "InboundConnectorIncorrectTreatMessagesAsInternal"),
    "AssociatedAcceptedDomains-not-an-accepted-domain-rejected": Row(
        IN, _in(AssociatedAcceptedDomains=["notmine.com"]), 400, "ErrorDefaultDomainNotFound"),
    "overlapping-SenderIPAddresses-warns-and-succeeds": Row(
        IN, _in(Name="Second", SenderIPAddresses=["203.0.113.0/24"]),
        warning="SenderIPAddressOverlapsExistingTenantInboundConnectors",
        setup=((IN, _in(SenderIPAddresses=["203.0.113.10"])),)),
    "new-outbound-UseMXRecord-false-without-SmartHosts-rejected": Row(
        OUT, _out(UseMXRecord=False), 400, "OutboundConnectorSmartHostShouldBePresentIfUseMXRecordFalse"),
    "SmartHosts-with-port-rejected": Row(
        OUT, _out(UseMXRecord=False, SmartHosts=["mail.contoso.com:587"]), 400, "InvalidSmartHost"),
    "SmartHosts-private-ip-rejected": Row(
        OUT, _out(UseMXRecord=False, SmartHosts=["10.0.0.5"]), 400, "IPRangeInConnectorContainsReservedIPAddresses"),
    "SmartHosts-microsoft-datacenter-ip-rejected": Row(
        OUT, _out(UseMXRecord=False, SmartHosts=["40.107.22.5"]), 400, "SmartHostsIPValidationFailed"),
    "SmartHosts-ipv6-rejected": Row(
        OUT, _out(UseMXRecord=False, SmartHosts=["2001:db8::25"]), 400, "SmartHostsIPValidationFailed"),
    "TlsSettings-DomainValidation-without-TlsDomain-rejected": Row(
        OUT, _out(TlsSettings="DomainValidation"), 400,
        "OutboundConnectorTlsSettingsInvalidDomainValidationWithoutTlsDomain"),
    "TlsDomain-with-CertificateValidation-rejected": Row(
        OUT, _out(TlsSettings="CertificateValidation", TlsDomain="mail.fabrikam.com"), 400,
        "OutboundConnectorTlsSettingsInvalidTlsDomainWithoutDomainValidation"),
    "TlsDomain-with-null-TlsSettings-rejected": Row(
        OUT, _out(TlsDomain="mail.fabrikam.com"), 400,
        "OutboundConnectorTlsSettingsInvalidTlsDomainWithoutDomainValidation"),
    "TlsDomain-wildcard-with-DomainValidation-accepted": Row(
        OUT, _out(TlsSettings="DomainValidation", TlsDomain="*.contoso.com")),
    "TlsDomain-star-rejected": Row(
        OUT, _out(TlsSettings="DomainValidation", TlsDomain="*"), 400, "DisallowStarSmtpDomainWithSubdomains"),
    "partner-outbound-RouteAllMessagesViaOnPremises-rejected": Row(
        OUT, _out(RouteAllMessagesViaOnPremises=True), 400, "OutboundConnectorIncorrectRouteAllMessagesViaOnPremises"),
    "partner-outbound-CloudServicesMailEnabled-rejected": Row(
        OUT, _out(CloudServicesMailEnabled=True), 400, "OutboundConnectorIncorrectCloudServicesMailEnabled"),
    "partner-outbound-AllAcceptedDomains-rejected": Row(
        OUT, _out(AllAcceptedDomains=True), 400, "InboundConnectorIncorrectAllAcceptedDomains"),
    "partner-outbound-SenderRewritingEnabled-rejected": Row(
        OUT, _out(SenderRewritingEnabled=True), 400, "OutboundConnectorIncorrectSenderRewritingEnabled"),
    "onpremises-outbound-UseMXRecord-true-rejected": Row(
        OUT, _out(ConnectorType="OnPremises", UseMXRecord=True), 400, "OnPremisesConnectorHasRouteUsingMX"),
    "onpremises-outbound-star-without-RouteAll-rejected": Row(
        OUT, _out(**ONPREM_OUT, RecipientDomains=["*"]), 400, "RecipientDomainStarOnPremiseOutboundConnector"),
    "RouteAllMessagesViaOnPremises-without-tenant-scoped-inbound-rejected": Row(
        OUT, _out(**ONPREM_OUT, RecipientDomains=["*"], RouteAllMessagesViaOnPremises=True), 400,
        "CMCConnectorRequiresTenantScopedInboundConnector"),
    "RouteAllMessagesViaOnPremises-with-tenant-scoped-inbound-accepted": Row(
        OUT, _out(**ONPREM_OUT, RecipientDomains=["*"], RouteAllMessagesViaOnPremises=True), setup=(SCOPED_INBOUND,)),
    "transport-rule-scoped-with-RecipientDomains-rejected": Row(
        OUT, _out(IsTransportRuleScoped=True), 400, "OutboundConnectorIncorrectTransportRuleScopedParameters"),
    "transport-rule-scoped-with-AllAcceptedDomains-rejected": Row(
        OUT, {"Name": "Scoped", **ONPREM_OUT, "IsTransportRuleScoped": True, "AllAcceptedDomains": True}, 400,
        "OutboundConnectorIncorrectTransportRuleScopedParameters"),
    "neither-scoped-nor-domains-rejected": Row(
        OUT, {"Name": "Nowhere"}, 400, "OutboundConnectorIncorrectTransportRuleScopedParameters"),
    "remove-outbound-referenced-by-transport-rule-rejected": Row(
        "Remove-OutboundConnector", {"Identity": "Rule target"}, 400, "ConnectorIncorrectUsageConnectorStillReferenced",
        setup=((OUT, {"Name": "Rule target", "IsTransportRuleScoped": True}),),
        tenant_config={"transport_rules": [{"Name": "Route legal", "RouteMessageOutboundConnector": "Rule target"}]}),
    "disable-outbound-referenced-by-transport-rule-rejected": Row(
        "Set-OutboundConnector", {"Identity": "Rule target", "Enabled": False}, 400,
        "ConnectorIncorrectUsageConnectorStillReferenced",
        setup=((OUT, {"Name": "Rule target", "IsTransportRuleScoped": True}),),
        tenant_config={"transport_rules": [{"Name": "Route legal", "RouteMessageOutboundConnector": "Rule target"}]}),
    "rename-outbound-referenced-by-transport-rule-rejected": Row(
        "Set-OutboundConnector", {"Identity": "Rule target", "Name": "Renamed"}, 400,
        "ConnectorIncorrectUsageConnectorStillReferenced",
        setup=((OUT, {"Name": "Rule target", "IsTransportRuleScoped": True}),),
        tenant_config={"transport_rules": [{"Name": "Route legal", "RouteMessageOutboundConnector": "Rule target"}]}),
    "unscope-outbound-referenced-by-transport-rule-rejected": Row(
        "Set-OutboundConnector", {"Identity": "Rule target", "IsTransportRuleScoped": False,
                                  "RecipientDomains": ["fabrikam.com"]}, 400,
        "ConnectorIncorrectUsageConnectorStillReferenced",
        setup=((OUT, {"Name": "Rule target", "IsTransportRuleScoped": True}),),
        tenant_config={"transport_rules": [{"Name": "Route legal", "RouteMessageOutboundConnector": "Rule target"}]}),
    "outbound-removal-leaving-internalrelay-unroutable-warns-and-succeeds": Row(
        "Remove-OutboundConnector", {"Identity": "To on-prem"},
        warning="AcceptedDomainsCannotBeRoutedByOutboundConnector",
        setup=((OUT, {"Name": "To on-prem", **ONPREM_OUT, "RecipientDomains": ["fabrikam.com"]}),
               ("Set-AcceptedDomain", {"Identity": "fabrikam.com", "DomainType": "InternalRelay"}))),
    "outbound-disable-leaving-internalrelay-unroutable-warns-and-succeeds": Row(
        "Set-OutboundConnector", {"Identity": "To on-prem", "Enabled": False},
        warning="AcceptedDomainsCannotBeRoutedByOutboundConnector",
        setup=((OUT, {"Name": "To on-prem", **ONPREM_OUT, "RecipientDomains": ["fabrikam.com"]}),
               ("Set-AcceptedDomain", {"Identity": "fabrikam.com", "DomainType": "InternalRelay"}))),
    "new-accepteddomain-not-available-in-exo": Row(
        "New-AcceptedDomain", {"Name": "x", "DomainName": "x.com"}, 403),
    "remove-accepteddomain-not-available-in-exo": Row(
        "Remove-AcceptedDomain", {"Identity": "fabrikam.com"}, 403),
    "new-accepteddomain-command-not-found-when-configured": Row(
        "New-AcceptedDomain", {"Name": "x", "DomainName": "x.com"}, 400, "CommandNotFoundException",
        settings={"unavailable_cmdlet_answer": "command_not_found"}),
    "set-accepteddomain-MatchSubDomains-on-authoritative-rejected": Row(
        "Set-AcceptedDomain", {"Identity": "contoso.com", "MatchSubDomains": True}, 400,
        "MatchSubDomainsIsInternalRelayOnlyException"),
    "set-accepteddomain-ExternalRelay-rejected": Row(
        "Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "ExternalRelay"}, 400,
        "ExternalRelayDomainsAreNotAllowedInDatacenterAndFfo"),
    "set-accepteddomain-InternalRelay-without-connector-warns-and-succeeds": Row(
        "Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "InternalRelay"},
        warning="OutboundConnectorToRouteAcceptedDomainNotFound"),
    "set-accepteddomain-MakeDefault-parameter-not-found": Row(
        "Set-AcceptedDomain", {"Identity": "contoso.com", "MakeDefault": True}, 400, "AmbiguousParameterSetException"),
    "set-accepteddomain-Name-parameter-not-found": Row(
        "Set-AcceptedDomain", {"Identity": "contoso.com", "Name": "other"}, 400, "AmbiguousParameterSetException"),
}


def _details(reply: Reply) -> str:
    error = reply.body["error"]
    if "details" in error:
        return error["details"][0]["message"]
    return error["innererror"]["internalexception"]["type"]


def _identifiers(reply: Reply) -> set[str]:
    """The ErrorId slot and the short exception type name of an error reply."""
    error_id, exception_type, _ = (_details(reply).split("|", 2) + ["", ""])[:3]
    return {error_id, exception_type.rsplit(".", 1)[-1]}


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_the_emulator_answers_each_row_of_the_accept_reject_table(row: Row, tenant_factory: Any) -> None:
    tenant = tenant_factory(settings=row.settings, config=row.tenant_config)
    for cmdlet, params in row.setup:
        done = tenant.invoke(cmdlet, params)
        assert done.status == 200, (cmdlet, done.body)

    reply = tenant.invoke(row.cmdlet, row.params)

    assert reply.status == row.status, reply.body
    if row.status == 403:
        assert reply.body is None
    elif row.status != 200:
        assert row.error in _identifiers(reply), _details(reply)
    else:
        warnings = reply.body["@adminapi.warnings"]
        if row.warning:
            assert any(row.warning in w for w in warnings), warnings
        else:
            assert warnings == []


def test_a_rejected_new_connector_is_not_created(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    reply = tenant.invoke(IN, _in(ConnectorType="OnPremises"))
    assert reply.status == 400
    assert tenant.invoke("Get-InboundConnector", {}).body["value"] == []


def test_set_validates_the_merged_object_so_retyping_without_ip_or_cert_fails(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    assert tenant.invoke(IN, _in()).status == 200
    reply = tenant.invoke("Set-InboundConnector", {"Identity": "Partner in", "ConnectorType": "OnPremises"})
    assert reply.status == 400
    assert "InboundConnectorMissingTlsCertificateOrSenderIP" in _details(reply)
    assert tenant.invoke("Get-InboundConnector", {"Identity": "Partner in"}).body["value"][0]["ConnectorType"] == "Partner"


def test_removing_the_last_ip_of_an_ip_restricted_connector_fails(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    assert tenant.invoke(IN, _in(SenderIPAddresses=["203.0.113.10"], RestrictDomainsToIPAddresses=True)).status == 200
    reply = tenant.invoke("Set-InboundConnector", {"Identity": "Partner in", "SenderIPAddresses": {
        "@odata.type": "#Exchange.GenericHashTable", "Remove": ["203.0.113.10"]}})
    assert reply.status == 400
    assert "InboundConnectorInvalidRestrictDomainsToIPAddresses" in _details(reply)


def test_associating_domains_to_the_last_tenant_scoped_inbound_under_centralized_transport_fails(
    tenant_factory: Any,
) -> None:
    tenant = tenant_factory()
    assert tenant.invoke(*SCOPED_INBOUND).status == 200
    assert tenant.invoke(OUT, _out(**ONPREM_OUT, RecipientDomains=["*"], RouteAllMessagesViaOnPremises=True)).status == 200
    reply = tenant.invoke("Set-InboundConnector", {"Identity": "On-prem in", "AssociatedAcceptedDomains": ["contoso.com"]})
    assert reply.status == 400
    assert "TenantScopedInboundConnectorRequiredForCMCConnector" in _details(reply)


def test_an_internalrelay_domain_covered_by_an_onpremises_connector_gives_no_warning(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    assert tenant.invoke(OUT, {"Name": "Hybrid", **ONPREM_OUT, "RecipientDomains": ["contoso.com"]}).status == 200
    reply = tenant.invoke("Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "InternalRelay"})
    assert reply.status == 200
    assert reply.body["@adminapi.warnings"] == []


def test_matchsubdomains_needs_the_connector_to_cover_subdomains_too(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    assert tenant.invoke(OUT, {"Name": "Hybrid", **ONPREM_OUT, "RecipientDomains": ["contoso.com"]}).status == 200
    reply = tenant.invoke(
        "Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "InternalRelay", "MatchSubDomains": True})
    assert reply.status == 200
    assert any("OutboundConnectorToRouteAcceptedDomainNotFound" in w for w in reply.body["@adminapi.warnings"])
