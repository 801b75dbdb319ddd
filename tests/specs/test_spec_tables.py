"""The spec tables drive validation, normalisation of Get-* records and cmdlet parameters.

Matrix:
- a field added to one table is validated, normalised (desired and live) and sent as a parameter, and a stack
  file may declare it, with no other edit;
- every table row is consistent: its default is a normalised value of its own kind;
- the live Get-* records of exo-admin-api.md §3.2 normalise (``smtp:*;1``, ``AdminUI``, offset-less timestamps,
  ``@odata`` sidecar keys), and a stack written from them loads back to the same values (an export plans clean);
- parameters: read-only fields are never sent, create-only fields cannot be updated, and sets are sent normalised.

Which fields each cmdlet carries, per field of every table, is the conformance matrix's (tests/conformance).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from o365_mailflow import specs
from o365_mailflow.errors import StackError
from o365_mailflow.specs import (
    ACCEPTED_DOMAIN,
    INBOUND,
    OUTBOUND,
    SPECS,
    UNSET,
    Bool,
    Choice,
    Field,
    ListOf,
    Mode,
    ResourceSpec,
    SenderIp,
    check_rules,
    effective,
    normalise_desired,
    normalise_live,
    to_parameters,
)
from o365_mailflow.stack import load_stack_text

ALL_FIELDS = [(spec, fld) for spec in SPECS.values() for fld in spec.fields]


@pytest.mark.parametrize(("spec", "fld"), ALL_FIELDS, ids=[f"{s.type_name}.{f.name}" for s, f in ALL_FIELDS])
def test_every_default_is_a_normalised_value_of_its_own_kind(spec: ResourceSpec, fld: Field) -> None:
    assert fld.name[0].islower() and fld.param[0].isupper()
    if fld.default is UNSET:
        return
    value, problems = fld.kind.validate(fld.default)
    assert problems == [] and value == fld.default


# A new Exchange parameter, added as one row of a copy of the inbound table.
NEW_FIELD = Field("spoofProtection", "SpoofProtection", Choice(["Strict", "Relaxed"]), "Relaxed", Mode.CREATE_AND_SET,
                  False, False, "A parameter Exchange might add one day.")
EXTENDED = dataclasses.replace(INBOUND, fields=INBOUND.fields + (NEW_FIELD,))


def test_a_field_added_to_a_table_is_validated_normalised_and_sent_without_other_edits() -> None:
    declared, diags = normalise_desired(EXTENDED, {"name": "R", "senderDomains": ["*"], "spoofProtection": "STRICT"})
    assert diags == [] and declared["spoofProtection"] == "Strict"
    _, diags = normalise_desired(EXTENDED, {"name": "R", "senderDomains": ["*"], "spoofProtection": "Loose"})
    assert [d.dotted_path for d in diags] == ["spoofProtection"]
    _, diags = normalise_desired(EXTENDED, {"name": "R", "senderDomains": ["*"], "spoofProtecton": "Strict"})
    assert "did you mean spoofProtection?" in diags[0].summary
    assert effective(EXTENDED, {})["spoofProtection"] == "Relaxed"
    assert normalise_live(EXTENDED, {"Name": "R", "SpoofProtection": "strict"})["spoofProtection"] == "Strict"
    assert normalise_live(EXTENDED, {"Name": "R"})["spoofProtection"] == "Relaxed"
    assert to_parameters(EXTENDED, declared, create=True)["SpoofProtection"] == "Strict"
    assert to_parameters(EXTENDED, {"spoofProtection": "Strict"}, create=False) == {"SpoofProtection": "Strict"}


def test_a_field_added_to_a_table_can_be_declared_in_a_stack_file(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "tenant: {emulator: true}\n"
        "inboundConnectors:\n  - name: R\n    senderDomains: ['*']\n    spoofProtection: strict\n"
    )
    with pytest.raises(StackError):
        load_stack_text(text, file="s.yaml", name="s")
    monkeypatch.setitem(SPECS, "InboundConnector", EXTENDED)
    stack = load_stack_text(text, file="s.yaml", name="s")
    (obj,) = stack.of_type("InboundConnector")
    assert obj.fields["spoofProtection"] == "Strict" and obj.field_lines["spoofProtection"] == 5


# exo-admin-api.md §3.2 records, as the admin API returns them (sidecar annotations included).
INBOUND_RECORD: dict[str, Any] = {
    "Enabled": False, "ConnectorType": "OnPremises", "ConnectorSource": "AdminUI", "Comment": "",
    "SenderIPAddresses@odata.type": "#Collection(String)", "SenderIPAddresses": ["81.187.237.31"],
    "SenderDomains": ["smtp:*;1"], "TrustedOrganizations": [], "ClientHostNames": [], "AssociatedAcceptedDomains": [],
    "RequireTls": False, "RestrictDomainsToIPAddresses": False, "RestrictDomainsToCertificate": False,
    "CloudServicesMailEnabled": False, "TreatMessagesAsInternal": False, "TlsSenderCertificateName": None,
    "EFTestMode": False, "ScanAndDropRecipients": [], "EFSkipLastIP": False, "EFSkipIPs": [],
    "EFSkipMailGateway": [], "EFUsers": [], "AdminDisplayName": "", "Name": "myorgemail", "Identity": "myorgemail",
    "WhenChangedUTC": "2026-07-23T22:55:49.0000000Z", "WhenCreatedUTC": "2026-07-23T22:55:43.0000000Z",
    "Guid": "acc2eccd-0000-0000-0000-000000000000", "IsValid": True,
}
OUTBOUND_RECORD: dict[str, Any] = {
    "Enabled": True, "UseMXRecord": False, "Comment": "relay", "ConnectorType": "OnPremises",
    "ConnectorSource": "AdminUI", "RecipientDomains": [], "SmartHosts": ["smtp-relay.gmail.com"],
    "TlsDomain": None, "TlsSettings": "CertificateValidation", "IsTransportRuleScoped": True,
    "RouteAllMessagesViaOnPremises": False, "CloudServicesMailEnabled": True, "AllAcceptedDomains": False,
    "SenderRewritingEnabled": False, "MtaStsMode": "Opportunistic", "SmtpDaneMode": "Opportunistic",
    "TestMode": False, "ValidationRecipients": ["rob@example.com"], "IsValidated": False,
    "LastValidationTimestamp": "2026-07-24T18:59:12.0000000", "AdminDisplayName": "",
    "Name": "outbourconnection", "Identity": "outbourconnection", "Guid": "d0d71cb9-0000-0000-0000-000000000000",
}
ACCEPTED_RECORD: dict[str, Any] = {
    "DomainName": "Contoso.com", "DomainType": "InternalRelay", "Default": False, "InitialDomain": False,
    "MatchSubDomains": True, "SmtpDaneStatus": "Disabled", "OutboundOnly": False, "EmailOnly": False,
    "SendingFromDomainDisabled": False, "SendingToDomainDisabled": False, "Name": "contoso.com",
    "MailFlowRegion": "", "AzureProvisioningRegion": "",
}


def test_live_records_normalise_to_the_stack_vocabulary() -> None:
    inbound = normalise_live(INBOUND, INBOUND_RECORD)
    assert inbound["senderDomains"] == ["*"]
    assert inbound["connectorSource"] == "Default"
    assert inbound["tlsSenderCertificateName"] is None and inbound["efSkipIps"] == []
    assert set(inbound) == set(INBOUND.names)
    outbound = normalise_live(OUTBOUND, OUTBOUND_RECORD)
    assert outbound["lastValidationTimestamp"] == "2026-07-24T18:59:12Z"  # no offset: read as UTC
    assert outbound["tlsSettings"] == "CertificateValidation" and outbound["tlsDomain"] is None
    domain = normalise_live(ACCEPTED_DOMAIN, ACCEPTED_RECORD)
    assert (domain["domainName"], domain["domainType"], domain["matchSubDomains"]) == ("contoso.com",
                                                                                       "InternalRelay", True)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"SenderDomains": ["smtp:Contoso.COM;1", "smtp:*.contoso.com;1", "smtp:contoso.com;1"]},
         {"senderDomains": ["*.contoso.com", "contoso.com"]}),
        ({"ConnectorSource": None}, {"connectorSource": "Default"}),
        ({"ConnectorSource": "hybridwizard"}, {"connectorSource": "HybridWizard"}),
        ({"SenderIPAddresses": ["203.0.113.9/24", "198.51.100.1/32"]},
         {"senderIpAddresses": ["198.51.100.1", "203.0.113.0/24"]}),
        ({"EFUsers": None}, {"efUsers": []}),
        ({"Enabled": "False", "RequireTls": "true"}, {"enabled": False, "requireTls": True}),
        ({"TlsSenderCertificateName": ""}, {"tlsSenderCertificateName": None}),
        ({"TlsSenderCertificateName": "*.Contoso.COM"}, {"tlsSenderCertificateName": "*.contoso.com"}),
    ],
    ids=["smtp-address-space", "null-source", "source-case", "ip-forms", "null-list", "bool-as-text",
         "empty-certificate-name", "certificate-name-case"],
)
def test_live_values_in_other_shapes_normalise_like_desired_ones(record: dict[str, Any],
                                                                 expected: dict[str, Any]) -> None:
    live = normalise_live(INBOUND, {"Name": "x", **record})
    assert {k: live[k] for k in expected} == expected


def _exported(spec: ResourceSpec, live: dict[str, Any]) -> dict[str, Any]:
    """What an export writes: every writable field the tenant holds a value for."""
    return {f.name: live[f.name] for f in spec.fields
            if live.get(f.name) is not None and (f.mode is not Mode.READ_ONLY or f.name == spec.identity_field)}


def test_a_stack_written_from_live_records_loads_back_to_the_same_values() -> None:
    live = {spec.type_name: normalise_live(spec, record)
            for spec, record in ((INBOUND, INBOUND_RECORD), (OUTBOUND, OUTBOUND_RECORD),
                                 (ACCEPTED_DOMAIN, ACCEPTED_RECORD))}
    document = {"tenant": {"emulator": True}}
    for spec in (INBOUND, OUTBOUND, ACCEPTED_DOMAIN):
        document[spec.stack_key] = [_exported(spec, live[spec.type_name])]
    stack = load_stack_text(yaml.safe_dump(document, sort_keys=False), file="export.yaml", name="export")
    for obj in stack.objects:
        mismatched = {k: (v, live[obj.spec.type_name][k]) for k, v in obj.fields.items()
                      if live[obj.spec.type_name][k] != v}
        assert mismatched == {}, obj.spec.type_name
        assert obj.fields == _exported(obj.spec, live[obj.spec.type_name])


def test_read_only_fields_are_never_sent_and_create_only_fields_cannot_be_updated() -> None:
    assert to_parameters(ACCEPTED_DOMAIN, {"domainName": "contoso.com", "domainType": "InternalRelay"},
                         create=False) == {"DomainType": "InternalRelay"}
    create_only = dataclasses.replace(
        INBOUND, fields=INBOUND.fields + (Field("region", "Region", Bool(), False, Mode.CREATE_ONLY),))
    assert to_parameters(create_only, {"region": True}, create=True) == {"Region": True}
    with pytest.raises(ValueError, match="only be set when the object is created"):
        to_parameters(create_only, {"region": True}, create=False)
    with pytest.raises(KeyError):
        to_parameters(INBOUND, {"noSuchField": 1}, create=False)


def test_rules_skip_fields_that_are_unknown_for_an_adopted_object() -> None:
    # Only tlsDomain declared on an existing connector: its tlsSettings is not known until the tenant is read.
    assert check_rules(OUTBOUND, {"tlsDomain": "mail.contoso.com"}) == []
    assert [d.code for d in check_rules(OUTBOUND, {"tlsDomain": "mail.contoso.com", "tlsSettings": None})] == [
        "outbound.tls-domain-needs-domain-validation"]


def test_sets_are_sorted_in_address_order_and_deduplicated() -> None:
    kind = ListOf(SenderIp())
    value, problems = kind.validate(["203.0.113.10", "203.0.113.9", "203.0.113.10/32", "198.51.100.0/24"])
    assert problems == [] and value == ["198.51.100.0/24", "203.0.113.9", "203.0.113.10"]


def test_the_module_lists_its_public_names() -> None:
    assert {"Mode", "Field", "ResourceSpec", "SPECS", "INBOUND", "OUTBOUND", "ACCEPTED_DOMAIN", "normalise_desired",
            "check_rules", "effective", "normalise_live", "to_parameters"} <= set(specs.__all__)


def test_write_order_and_force_new_come_from_the_specs() -> None:
    """Accepted domains first (inbound connectors may name them), inbound before outbound (centralized transport
    needs an OnPremises inbound connector); an accepted domain made InternalRelay waits in a late phase for the
    outbound connectors. Create-only fields are the ones a change replaces."""
    assert [s.type_name for s in specs.write_order()] == ["AcceptedDomain", "InboundConnector", "OutboundConnector"]
    assert [(p.spec.type_name, p.late) for p in specs.write_phases()][-1] == ("AcceptedDomain", True)
    assert specs.is_late(ACCEPTED_DOMAIN, {"domainType": "InternalRelay"})
    assert not specs.is_late(ACCEPTED_DOMAIN, {"domainType": "Authoritative"})
    assert not specs.is_late(ACCEPTED_DOMAIN, {"matchSubDomains": True})  # domainType unknown: not late
    assert INBOUND.force_new == ()
    fields = tuple(dataclasses.replace(f, mode=Mode.CREATE_ONLY) if f.name == "comment" else f for f in INBOUND.fields)
    assert dataclasses.replace(INBOUND, fields=fields).force_new == ("comment",)


def test_register_refuses_a_type_twice_and_orders_a_new_type_after_what_it_waits_for() -> None:
    looping = dataclasses.replace(ACCEPTED_DOMAIN, type_name="Looping", stack_key="looping",
                                  after=(specs.After("OutboundConnector"),))
    blocked = dataclasses.replace(looping, type_name="Blocked", stack_key="blocked",
                                  after=(specs.After("Looping"),))
    remove = specs.register(looping)
    try:
        with pytest.raises(ValueError, match="already registered"):
            specs.register(looping)
        assert [s.type_name for s in specs.write_order()][-1] == "Looping"
        with pytest.raises(ValueError, match="not registered"):
            specs.register(dataclasses.replace(blocked, after=(specs.After("Nowhere"),)))
        specs.register(blocked)
        assert [s.type_name for s in specs.write_order()][-2:] == ["Looping", "Blocked"]
    finally:
        specs.SPECS.pop("Blocked", None)
        remove()
    assert "Looping" not in specs.SPECS
