"""The emulated cmdlets bind parameters and behave like the service (exo-admin-api.md §2.1, §7.3, §8).

Matrix:
- binding: case-insensitive cmdlet and parameter names; a single value or an array for multi-valued
  parameters; the ``#Exchange.GenericHashTable`` Add/Remove form; ``null`` clears; boolean strings; a bad enum
  (ParameterTransformationException, no ``details``); an unknown parameter (AmbiguousParameterSetException);
  an unknown cmdlet (403);
- reads: Get by Name (any case), Guid or DN; not found is a 404 envelope; ResultSize truncates with the
  "more results" warning; read-after-write lag hides a new object; test-mode listing under both readings;
- writes: New returns the object, Set returns nothing, a no-op Set warns, a rename moves Identity, setting
  UseMXRecord clears smart hosts, Remove with Confirm deletes nothing and returns the confirmation message,
  Validate-OutboundConnector changes nothing, the RequireTls default follows its setting.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_cmdlets_support import tenant_factory  # noqa: F401  (fixture)

HASH = "#Exchange.GenericHashTable"


def _ok(reply: Any) -> Any:
    assert reply.status == 200, reply.body
    return reply.body


def _inbound(tenant: Any, name: str = "Partner in", **params: Any) -> dict[str, Any]:
    body = _ok(tenant.invoke("New-InboundConnector", {"Name": name, "SenderDomains": ["contoso.com"], **params}))
    return body["value"][0]


def _get_in(tenant: Any, identity: str) -> dict[str, Any]:
    return _ok(tenant.invoke("Get-InboundConnector", {"Identity": identity}))["value"][0]


def _message(reply: Any) -> str:
    return reply.body["error"]["innererror"]["internalexception"]["message"]


# -- binding ------------------------------------------------------------------------------------------------


def test_cmdlet_and_parameter_names_are_case_insensitive(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _ok(tenant.invoke("new-INBOUNDconnector", {"name": "Lower", "senderdomains": "contoso.com", "ENABLED": "false"}))
    record = _get_in(tenant, "lower")
    assert (record["Name"], record["SenderDomains"], record["Enabled"]) == ("Lower", ["smtp:contoso.com;1"], False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"@odata.type": HASH, "Add": ["198.51.100.7"]}, ["203.0.113.10", "198.51.100.7"]),
        ({"@odata.type": HASH, "remove": ["203.0.113.10"], "add": "198.51.100.7"}, ["198.51.100.7"]),
        (["198.51.100.7"], ["198.51.100.7"]),
        ("198.51.100.7", ["198.51.100.7"]),
        (None, []),
        ([], []),
    ],
    ids=["hashtable-add", "hashtable-remove-and-add-lowercase-keys", "array-replaces", "single-value-replaces",
         "null-clears", "empty-array-clears"],
)
def test_multi_valued_parameters_take_arrays_single_values_add_remove_and_null(
    tenant_factory: Any, value: Any, expected: list[str]
) -> None:
    tenant = tenant_factory()
    _inbound(tenant, SenderIPAddresses=["203.0.113.10"])
    _ok(tenant.invoke("Set-InboundConnector", {"Identity": "Partner in", "SenderIPAddresses": value}))
    assert _get_in(tenant, "Partner in")["SenderIPAddresses"] == expected


def test_null_clears_a_string_and_comment_becomes_empty(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _inbound(tenant, RequireTls=True, TlsSenderCertificateName="mail.contoso.com", Comment="note")
    _ok(tenant.invoke("Set-InboundConnector", {"Identity": "Partner in", "TlsSenderCertificateName": None,
                                               "Comment": None}))
    record = _get_in(tenant, "Partner in")
    assert (record["TlsSenderCertificateName"], record["Comment"]) == (None, "")


def test_sender_domains_cannot_be_cleared(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _inbound(tenant)
    reply = tenant.invoke("Set-InboundConnector", {"Identity": "Partner in", "SenderDomains": None})
    assert reply.status == 400
    assert _message(reply) == "Sender Domain cannot be null."


def test_a_bad_enum_value_is_a_transformation_error_listing_the_valid_names(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    reply = tenant.invoke("New-InboundConnector", {"Name": "x", "SenderDomains": "*", "ConnectorType": "Nonsense"})
    assert reply.status == 400
    error = reply.body["error"]
    assert "details" not in error
    assert error["innererror"]["internalexception"]["type"].endswith("ParameterTransformationException")
    assert "Specify one of the following enumerator names and try again: OnPremises, Partner" in _message(reply)


def test_an_enum_value_in_any_case_is_stored_in_its_canonical_case(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _inbound(tenant, ConnectorType="onpremises", SenderIPAddresses="203.0.113.10")
    assert _get_in(tenant, "Partner in")["ConnectorType"] == "OnPremises"


def test_an_unknown_parameter_is_an_ambiguous_parameter_set_error_naming_it(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    reply = tenant.invoke("Get-InboundConnector", {"BogusParameter": 1})
    assert reply.status == 400
    detail = reply.body["error"]["details"][0]["message"]
    assert detail.startswith("|Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException|")
    assert detail.endswith("Invalid cmdlet parameters specified. BogusParameter")


def test_an_unknown_cmdlet_is_forbidden(tenant_factory: Any) -> None:
    assert tenant_factory().invoke("Get-Mailbox", {}).status == 403


def test_a_non_boolean_for_a_boolean_parameter_is_a_transformation_error(tenant_factory: Any) -> None:
    reply = tenant_factory().invoke("New-InboundConnector", {"Name": "x", "SenderDomains": "*", "Enabled": "maybe"})
    assert reply.status == 400
    assert "System.Boolean" in _message(reply)


# -- reads --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["name-other-case", "guid", "distinguished-name"], ids=str)
def test_get_finds_a_connector_by_name_guid_or_dn(tenant_factory: Any, how: str) -> None:
    tenant = tenant_factory()
    created = _inbound(tenant)
    identity = {"name-other-case": "PARTNER IN", "guid": created["Guid"],
                "distinguished-name": created["DistinguishedName"]}[how]
    assert _get_in(tenant, identity)["Guid"] == created["Guid"]


@pytest.mark.parametrize(
    "cmdlet",
    ["Get-InboundConnector", "Get-OutboundConnector", "Get-AcceptedDomain", "Set-InboundConnector",
     "Remove-OutboundConnector", "Set-AcceptedDomain"],
    ids=str,
)
def test_an_identity_that_does_not_exist_is_a_404_not_found_envelope(tenant_factory: Any, cmdlet: str) -> None:
    reply = tenant_factory().invoke(cmdlet, {"Identity": "nothing-here"})
    assert reply.status == 404
    assert reply.body["error"]["code"] == "NotFound"
    assert reply.body["error"]["details"][0]["message"].startswith(
        "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|"
        "The operation couldn't be performed because object 'nothing-here' couldn't be found on '")


def test_result_size_truncates_the_list_with_the_more_results_warning(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    for n in range(3):
        _inbound(tenant, f"in-{n}")
    limited = _ok(tenant.invoke("Get-InboundConnector", {"ResultSize": 2}))
    assert [c["Name"] for c in limited["value"]] == ["in-0", "in-1"]
    assert any("There are more results available" in w for w in limited["@adminapi.warnings"])
    unlimited = _ok(tenant.invoke("Get-InboundConnector", {"ResultSize": "Unlimited"}))
    assert [c["Name"] for c in unlimited["value"]] == ["in-0", "in-1", "in-2"]
    assert unlimited["@adminapi.warnings"] == []


def test_read_after_write_lag_hides_a_new_object_from_get_and_lists(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    tenant.read_lag = 3600.0
    _inbound(tenant)
    assert tenant.invoke("Get-InboundConnector", {"Identity": "Partner in"}).status == 404
    assert _ok(tenant.invoke("Get-InboundConnector", {}))["value"] == []
    tenant.read_lag = 0.0
    assert _get_in(tenant, "Partner in")["Name"] == "Partner in"


@pytest.mark.parametrize(
    ("listing", "switch", "expected"),
    [("only", None, ["live"]), ("only", True, ["trial"]), ("only", False, ["live"]),
     ("include", None, ["live"]), ("include", True, ["live", "trial"])],
    ids=["only-plain", "only-with-switch", "only-switch-false", "include-plain", "include-with-switch"],
)
def test_test_mode_connectors_are_listed_per_the_test_mode_setting(
    tenant_factory: Any, listing: str, switch: bool | None, expected: list[str]
) -> None:
    tenant = tenant_factory(settings={"test_mode_listing": listing})
    for name, test_mode in (("live", False), ("trial", True)):
        _ok(tenant.invoke("New-OutboundConnector", {"Name": name, "RecipientDomains": "fabrikam.com",
                                                    "TestMode": test_mode}))
    params = {} if switch is None else {"IncludeTestModeConnectors": switch}
    listed = _ok(tenant.invoke("Get-OutboundConnector", params))["value"]
    assert [c["Name"] for c in listed] == expected
    assert _ok(tenant.invoke("Get-OutboundConnector", {"Identity": "trial"}))["value"][0]["TestMode"] is True


# -- writes -------------------------------------------------------------------------------------------------


def test_set_returns_nothing_and_a_no_op_set_warns_without_writing(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    created = _inbound(tenant, Comment="same")
    changed = _ok(tenant.invoke("Set-InboundConnector", {"Identity": "Partner in", "Comment": "other"}))
    assert changed == {**changed, "value": [], "@adminapi.warnings": []}
    after_change = _get_in(tenant, "Partner in")
    noop = _ok(tenant.invoke("Set-InboundConnector", {"Identity": "Partner in", "Comment": "other"}))
    assert noop["@adminapi.warnings"] == [
        "The command completed successfully but no settings of 'Partner in' have been modified."]
    assert _get_in(tenant, "Partner in")["WhenChangedUTC"] == after_change["WhenChangedUTC"]
    assert after_change["WhenCreatedUTC"] == created["WhenCreatedUTC"]


def test_a_rename_moves_identity_and_refuses_an_existing_name(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    created = _inbound(tenant)
    _inbound(tenant, "Other")
    _ok(tenant.invoke("Set-InboundConnector", {"Identity": created["Guid"], "Name": "Renamed"}))
    record = _get_in(tenant, "renamed")
    assert (record["Identity"], record["Guid"]) == ("Renamed", created["Guid"])
    clash = tenant.invoke("Set-InboundConnector", {"Identity": "Renamed", "Name": "OTHER"})
    assert clash.status == 400
    assert "ErrorInboundConnectorAlreadyExistsException" in clash.body["error"]["details"][0]["message"]


def test_inbound_and_outbound_connectors_may_share_a_name(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _inbound(tenant, "Shared")
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "shared", "RecipientDomains": "fabrikam.com"}))


def test_setting_usemxrecord_true_clears_the_smart_hosts(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "o", "RecipientDomains": "fabrikam.com",
                                                "UseMXRecord": False, "SmartHosts": "mx.fabrikam.com"}))
    _ok(tenant.invoke("Set-OutboundConnector", {"Identity": "o", "UseMXRecord": True}))
    record = _ok(tenant.invoke("Get-OutboundConnector", {"Identity": "o"}))["value"][0]
    assert (record["UseMXRecord"], record["SmartHosts"]) == (True, [])


def test_smart_hosts_without_usemxrecord_false_are_refused(tenant_factory: Any) -> None:
    reply = tenant_factory().invoke("New-OutboundConnector", {"Name": "o", "RecipientDomains": "fabrikam.com",
                                                              "SmartHosts": "mx.fabrikam.com"})
    assert reply.status == 400
    assert reply.body["error"]["details"][0]["message"].startswith(
        "OutboundConnectorUseMXRecordShouldBeFalseIfSmartHostsIsPresent|")


@pytest.mark.parametrize("cmdlet", ["Remove-InboundConnector", "Remove-OutboundConnector"], ids=str)
def test_remove_with_confirm_deletes_nothing_and_returns_the_confirmation_message(
    tenant_factory: Any, cmdlet: str
) -> None:
    tenant = tenant_factory()
    if cmdlet == "Remove-InboundConnector":
        _inbound(tenant, "Doomed")
    else:
        _ok(tenant.invoke("New-OutboundConnector", {"Name": "Doomed", "RecipientDomains": "fabrikam.com"}))
    getter = cmdlet.replace("Remove-", "Get-")

    asked = _ok(tenant.invoke(cmdlet, {"Identity": "Doomed", "Confirm": True}))
    assert asked["value"] == []
    assert "Doomed" in asked["@adminapi.confirmationmessage"]
    assert tenant.invoke(getter, {"Identity": "Doomed"}).status == 200

    done = _ok(tenant.invoke(cmdlet, {"Identity": "Doomed", "Confirm": False}))
    assert done["value"] == [] and "@adminapi.confirmationmessage" not in done
    assert tenant.invoke(getter, {"Identity": "Doomed"}).status == 404


def test_validate_outbound_connector_returns_a_result_and_changes_nothing(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "o", "RecipientDomains": "fabrikam.com",
                                                "UseMXRecord": False, "SmartHosts": "mx.fabrikam.com"}))
    before = _ok(tenant.invoke("Get-OutboundConnector", {"Identity": "o"}))["value"]
    result = _ok(tenant.invoke("Validate-OutboundConnector", {"Identity": "o", "Recipients": "a@fabrikam.com"}))
    assert set(result["value"][0]) == {"IsTaskSuccessful", "TaskName", "TaskDetail", "SubTaskResults"}
    assert _ok(tenant.invoke("Get-OutboundConnector", {"Identity": "o"}))["value"] == before


@pytest.mark.parametrize("default", [False, True], ids=["require-tls-false", "require-tls-true"])
def test_the_inbound_require_tls_default_follows_its_setting(tenant_factory: Any, default: bool) -> None:
    tenant = tenant_factory(settings={"inbound_require_tls_default": default})
    assert _inbound(tenant)["RequireTls"] is default


def test_set_accepted_domain_changes_the_routing_fields(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    _ok(tenant.invoke("Set-AcceptedDomain", {"Identity": "FABRIKAM.com", "DomainType": "internalrelay",
                                             "MatchSubDomains": True, "OutboundOnly": True}))
    record = _ok(tenant.invoke("Get-AcceptedDomain", {"Identity": "fabrikam.com"}))["value"][0]
    assert (record["DomainType"], record["MatchSubDomains"], record["OutboundOnly"]) == ("InternalRelay", True, True)
    back = tenant.invoke("Set-AcceptedDomain", {"Identity": "fabrikam.com", "DomainType": "Authoritative"})
    assert back.status == 400  # MatchSubDomains is still true on the merged object


@pytest.mark.parametrize(
    ("order", "domain", "chosen"),
    [("specific_wildcard_first", "sales.contoso.com", "C3"), ("all_accepted_first", "sales.contoso.com", "C1"),
     ("specific_wildcard_first", "contoso.com", "C2"), ("specific_wildcard_first", "fabrikam.com", "C1")],
    ids=["worked-example-wildcard-wins", "literal-list-all-accepted-wins", "exact-match-wins", "all-accepted"],
)
def test_validate_reports_the_route_per_the_wildcard_routing_order_setting(
    tenant_factory: Any, order: str, domain: str, chosen: str
) -> None:
    # exo-cmdlets.md §10 item 2: C1 all accepted domains, C2 contoso.com, C3 *.contoso.com.
    tenant = tenant_factory(settings={"wildcard_routing_order": order})
    _ok(tenant.invoke("New-InboundConnector", {"Name": "on-prem", "ConnectorType": "OnPremises",
                                               "SenderDomains": "*", "SenderIPAddresses": "203.0.113.10"}))
    hosts = {"UseMXRecord": False, "SmartHosts": "mail.contoso.com"}
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "C1", "ConnectorType": "OnPremises", "AllAcceptedDomains": True,
                                                **hosts}))
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "C2", "RecipientDomains": "contoso.com", **hosts}))
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "C3", "RecipientDomains": "*.contoso.com", **hosts}))

    result = _ok(tenant.invoke("Validate-OutboundConnector", {"Identity": chosen, "Recipients": f"x@{domain}"}))

    details = [t["TaskDetail"] for t in result["value"][0]["SubTaskResults"]]
    assert any(f"Mail to {domain} is routed through this connector." in d for d in details), details


def test_seeded_admin_center_objects_read_back_with_connector_source_adminui(tenant_factory: Any) -> None:
    tenant = tenant_factory(config={"objects": [
        {"cmdlet": "New-InboundConnector", "parameters": {"Name": "From EAC", "SenderDomains": "*"}},
        {"cmdlet": "New-OutboundConnector", "parameters": {"Name": "Hybrid", "ConnectorType": "OnPremises",
                                                           "UseMXRecord": False, "SmartHosts": "mail.contoso.com",
                                                           "IsTransportRuleScoped": True}},
        {"cmdlet": "Set-AcceptedDomain", "parameters": {"Identity": "fabrikam.com", "DomainType": "InternalRelay"}},
    ]})
    assert _get_in(tenant, "From EAC")["ConnectorSource"] == "AdminUI"
    hybrid = _ok(tenant.invoke("Get-OutboundConnector", {"Identity": "Hybrid"}))["value"][0]
    assert hybrid["ConnectorSource"] == "AdminUI"
    domain = _ok(tenant.invoke("Get-AcceptedDomain", {"Identity": "fabrikam.com"}))["value"][0]
    assert domain["DomainType"] == "InternalRelay"
    made = _inbound(tenant, "From cmdlet")
    assert made["ConnectorSource"] == "Default"


@pytest.mark.parametrize(("scoped", "expected"), [(True, ["rule"]), (False, ["domains"])], ids=["scoped", "unscoped"])
def test_get_outbound_filters_on_is_transport_rule_scoped(tenant_factory: Any, scoped: bool, expected: list[str]) -> None:
    tenant = tenant_factory()
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "rule", "IsTransportRuleScoped": True}))
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "domains", "RecipientDomains": "fabrikam.com"}))
    listed = _ok(tenant.invoke("Get-OutboundConnector", {"IsTransportRuleScoped": scoped}))["value"]
    assert [c["Name"] for c in listed] == expected


def test_whatif_on_new_validates_but_creates_nothing(tenant_factory: Any) -> None:
    tenant = tenant_factory()
    asked = _ok(tenant.invoke("New-InboundConnector", {"Name": "maybe", "SenderDomains": "*", "WhatIf": True}))
    assert asked["value"] == [] and "maybe" in asked["@adminapi.confirmationmessage"]
    assert _ok(tenant.invoke("Get-InboundConnector", {}))["value"] == []
    refused = tenant.invoke("New-InboundConnector", {"Name": "bad", "SenderDomains": "*", "WhatIf": True,
                                                     "ConnectorType": "OnPremises"})
    assert refused.status == 400


OUTBOUND_OK = {"Name": "x", "RecipientDomains": "fabrikam.com"}


@pytest.mark.parametrize(
    ("cmdlet", "base", "param", "value"),
    [("New-OutboundConnector", OUTBOUND_OK, "ValidationRecipients", ["a@fabrikam.com"]),
     ("New-OutboundConnector", OUTBOUND_OK, "IsValidated", True),
     ("Set-InboundConnector", {"Identity": "x"}, "ClientHostNames", ["host.contoso.com"]),
     ("Get-InboundConnector", {}, "IncludeTestModeConnectors", True)],
    ids=["validation-recipients-is-set-only", "is-validated-is-set-only", "client-host-names-is-new-only",
         "test-mode-switch-is-outbound-only"],
)
def test_a_parameter_outside_the_cmdlets_set_is_refused(
    tenant_factory: Any, cmdlet: str, base: dict[str, Any], param: str, value: Any
) -> None:
    tenant = tenant_factory()
    assert tenant.invoke(cmdlet, base).status in (200, 404)  # the base call binds
    reply = tenant.invoke(cmdlet, {**base, param: value})
    assert reply.status == 400
    assert reply.body["error"]["details"][0]["message"].endswith(f"Invalid cmdlet parameters specified. {param}")


def test_widening_an_internalrelay_domain_to_subdomains_warns_when_no_connector_covers_them(
    tenant_factory: Any,
) -> None:
    tenant = tenant_factory()
    _ok(tenant.invoke("New-OutboundConnector", {"Name": "Hybrid", "ConnectorType": "OnPremises", "UseMXRecord": False,
                                                "SmartHosts": "mail.contoso.com", "RecipientDomains": "contoso.com"}))
    first = _ok(tenant.invoke("Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "InternalRelay"}))
    assert first["@adminapi.warnings"] == []
    widened = _ok(tenant.invoke("Set-AcceptedDomain", {"Identity": "contoso.com", "MatchSubDomains": True}))
    assert any("OutboundConnectorToRouteAcceptedDomainNotFound" in w for w in widened["@adminapi.warnings"])
