"""Get-* records of the emulated tenant have the shapes of the live captures (exo-admin-api.md §3.2).

Matrix: for each type (inbound connector, outbound connector, accepted domain) an object is made the way the
captured one was made, read back with Get-*, and compared with the capture key by key: every captured key is
present with the captured value (names, GUIDs and timestamps by format instead), lists are ``[]`` when empty,
enums are strings, ``Identity`` = ``Name``; inbound-only keys never appear on outbound records; the ``@``
sidecar annotations describe the values they sit next to.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from test_cmdlets_support import tenant_factory  # noqa: F401  (fixture)

UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")

# exo-admin-api.md §3.2, Get-InboundConnector (live, 2026-07-23), verbatim.
INBOUND_CAPTURE: dict[str, Any] = {
    "Enabled": False, "ConnectorType": "OnPremises", "ConnectorSource": "AdminUI", "Comment": "",
    "SenderIPAddresses": ["81.187.237.31"], "SenderDomains": ["smtp:*;1"], "TrustedOrganizations": [],
    "ClientHostNames": [], "AssociatedAcceptedDomains": [], "RequireTls": False,
    "RestrictDomainsToIPAddresses": False, "RestrictDomainsToCertificate": False,
    "CloudServicesMailEnabled": False, "TreatMessagesAsInternal": False, "TlsSenderCertificateName": None,
    "EFTestMode": False, "ScanAndDropRecipients": [], "EFSkipLastIP": False, "EFSkipIPs": [],
    "EFSkipMailGateway": [], "EFUsers": [], "AdminDisplayName": "", "Name": "myorgemail",
    "Identity": "myorgemail", "WhenChangedUTC": "2026-07-23T22:55:49.0000000Z",
    "WhenCreatedUTC": "2026-07-23T22:55:43.0000000Z", "Guid": "acc2eccd-…", "IsValid": True,
}

# exo-admin-api.md §3.2, Get-OutboundConnector (live, 2026-07-24), verbatim but for the elided comment/recipient.
OUTBOUND_CAPTURE: dict[str, Any] = {
    "Enabled": True, "UseMXRecord": False, "Comment": "relay via google", "ConnectorType": "OnPremises",
    "ConnectorSource": "AdminUI", "RecipientDomains": [], "SmartHosts": ["smtp-relay.gmail.com"],
    "TlsDomain": None, "TlsSettings": "CertificateValidation", "IsTransportRuleScoped": True,
    "RouteAllMessagesViaOnPremises": False, "CloudServicesMailEnabled": True, "AllAcceptedDomains": False,
    "SenderRewritingEnabled": False, "MtaStsMode": "Opportunistic", "SmtpDaneMode": "Opportunistic",
    "TestMode": False, "ValidationRecipients": ["rob@contoso.com"], "IsValidated": False,
    "LastValidationTimestamp": "2026-07-24T18:59:12.0000000", "AdminDisplayName": "",
    "Name": "outbourconnection", "Identity": "outbourconnection",
    "WhenChangedUTC": "2026-07-24T19:01:54.0000000Z", "WhenCreatedUTC": "2026-07-24T18:58:31.0000000Z",
    "Guid": "d0d71cb9-…", "IsValid": True,
}

# exo-admin-api.md §3.2, Get-AcceptedDomain (live, sanitised, 25 of 56 fields).
DOMAIN_CAPTURE: dict[str, Any] = {
    "DomainName": "example.onmicrosoft.com", "DomainType": "Authoritative", "Default": False,
    "InitialDomain": True, "MatchSubDomains": False, "SmtpDaneStatus": "Disabled",
    "AuthenticationType": "Managed", "RawAuthenticationType": "Managed", "ExternallyManaged": False,
    "PendingRemoval": False, "PendingCompletion": False, "OutboundOnly": False, "EmailOnly": False,
    "AddressBookEnabled": True, "SendingFromDomainDisabled": False, "SendingToDomainDisabled": False,
    "IsCoexistenceDomain": False, "CatchAllRecipientID": None, "FederatedOrganizationLink": "Federation",
    "Name": "example.onmicrosoft.com", "DistinguishedName": "CN=example.onmicrosoft.com,CN=Accepted Domains",
    "ExchangeVersion": "0.20 (15.0.0.0)", "AdminDisplayName": "", "MailFlowRegion": "", "AzureProvisioningRegion": "",
}

# Keys compared by format or relation, not by value.
BY_FORMAT = {"Name", "Identity", "WhenChangedUTC", "WhenCreatedUTC", "Guid", "DomainName", "DistinguishedName"}


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if "@" not in k}


def _compare(record: dict[str, Any], capture: dict[str, Any], *, differ: set[str]) -> None:
    plain = _plain(record)
    missing = sorted(set(capture) - set(plain))
    assert missing == []
    wrong = {
        k: (plain[k], capture[k]) for k in capture if k not in BY_FORMAT | differ and plain[k] != capture[k]
    }
    assert wrong == {}
    assert UTC.match(plain["WhenCreatedUTC"]) and UTC.match(plain["WhenChangedUTC"])
    assert str(uuid.UUID(plain["Guid"])) == plain["Guid"]
    assert plain["Identity"] == plain["Name"]
    for key, value in plain.items():  # annotations describe their neighbours
        if isinstance(value, list):
            assert record[f"{key}@odata.type"] == "#Collection(String)"
    assert record["Guid@odata.type"] == "#Guid"


def _only(reply: Any) -> dict[str, Any]:
    assert reply.status == 200, reply.body
    assert len(reply.body["value"]) == 1
    return reply.body["value"][0]


def test_an_inbound_connector_reads_back_in_the_captured_shape(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    created = tenant.invoke("New-InboundConnector", {
        "Name": "myorgemail", "ConnectorType": "OnPremises", "SenderDomains": ["*"],
        "SenderIPAddresses": ["81.187.237.31"], "Enabled": False,
    })
    assert created.status == 200, created.body
    record = _only(tenant.invoke("Get-InboundConnector", {"Identity": "myorgemail"}))

    # ConnectorSource: the captured object was made in the admin center (AdminUI); a cmdlet-made one is Default.
    _compare(record, INBOUND_CAPTURE, differ={"ConnectorSource"})
    assert record["ConnectorSource"] == "Default"
    assert record["Name"] == "myorgemail"
    assert _plain(created.body["value"][0]) == _plain(record)


def test_an_outbound_connector_reads_back_in_the_captured_shape_without_inbound_keys(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    created = tenant.invoke("New-OutboundConnector", {
        "Name": "outbourconnection", "ConnectorType": "OnPremises", "UseMXRecord": False,
        "SmartHosts": ["smtp-relay.gmail.com"], "TlsSettings": "CertificateValidation",
        "IsTransportRuleScoped": True, "CloudServicesMailEnabled": True, "Comment": "relay via google",
    })
    assert created.status == 200, created.body
    updated = tenant.invoke("Set-OutboundConnector", {
        "Identity": "outbourconnection", "ValidationRecipients": ["rob@contoso.com"],
        "LastValidationTimestamp": "2026-07-24T18:59:12.0000000",
    })
    assert updated.status == 200 and updated.body["value"] == []
    record = _only(tenant.invoke("Get-OutboundConnector", {"Identity": "outbourconnection"}))

    _compare(record, OUTBOUND_CAPTURE, differ={"ConnectorSource"})
    inbound_only = {"RequireTls", "SenderDomains", "SenderIPAddresses", "EFSkipIPs", "EFUsers", "EFSkipLastIP"}
    assert inbound_only & set(record) == set()
    assert record["LinkForModifiedConnector"] == "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("domain", "initial"),
    [("initial", True), ("fabrikam.com", False)],
    ids=["initial-domain", "verified-custom-domain"],
)
def test_seeded_domains_are_authoritative_accepted_domains_in_the_captured_shape(
    tenant_factory: Any, domain: str, initial: bool
) -> None:
    tenant = tenant_factory()
    domain = tenant.initial_domain if domain == "initial" else domain
    record = _only(tenant.invoke("Get-AcceptedDomain", {"Identity": domain}))

    # Default: the seeded tenant keeps its initial domain as default; FederatedOrganizationLink is sanitised.
    _compare(record, DOMAIN_CAPTURE, differ={"Default", "FederatedOrganizationLink", "InitialDomain"})
    assert record["DomainName"] == record["Name"] == domain
    assert record["InitialDomain"] is initial
    assert record["Default"] is initial
    assert record["DistinguishedName"].startswith(f"CN={domain},CN=Accepted Domains,")


def test_every_verified_domain_is_listed_once_and_exactly_one_is_default(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    values = tenant.invoke("Get-AcceptedDomain", {}).body["value"]
    names = [d["DomainName"] for d in values]
    assert sorted(names) == sorted([tenant.initial_domain, "contoso.com", "sales.contoso.com", "fabrikam.com"])
    assert [d["Default"] for d in values].count(True) == 1


@pytest.mark.parametrize(
    ("given", "stored"),
    [("*", "smtp:*;1"), ("Contoso.com", "smtp:Contoso.com;1"), ("*.contoso.com", "smtp:*.contoso.com;1"),
     ("smtp:fabrikam.com;1", "smtp:fabrikam.com;1")],
    ids=["star", "domain", "wildcard-subdomains", "address-space-form"],
)
def test_sender_domains_are_stored_and_returned_as_address_spaces(
    tenant_factory: Any, given: str, stored: str
) -> None:
    tenant = tenant_factory()
    created = tenant.invoke("New-InboundConnector", {"Name": "in", "SenderDomains": given})
    assert created.status == 200, created.body
    assert _only(tenant.invoke("Get-InboundConnector", {"Identity": "in"}))["SenderDomains"] == [stored]
