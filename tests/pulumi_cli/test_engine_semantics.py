"""What the engine decides by itself, and that the providers must survive without losing a connector.

Replacements (``--target-replace``, ``replaceOnChanges``), logical renames with and without an alias, a change
of case only, two stacks declaring one connector, the accepted domain's restore values across a replacement,
``ignoreChanges``, ``protect`` and ``retainOnDelete``. Every one of these deleted or reverted something in the
tenant before the providers were fixed (see o365_mailflow/providers/base.py).
"""

from __future__ import annotations

from typing import Any

from .conftest import Project, ops

RELAY_STACK = """\
inboundConnectors:
  - name: Relay from office printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
"""
RELAY = "relay from office printers"

# A program of a user's own, with the resource classes and Pulumi options (the stack file has no options).
PROGRAM = """\
import pulumi
from o365_mailflow.providers import InboundConnector, InboundConnectorArgs

InboundConnector({logical!r}, InboundConnectorArgs(
    name="Relay from office printers", connector_type="OnPremises", sender_domains=["*"],
    sender_ip_addresses=["203.0.113.10"], comment={comment!r}),
    opts=pulumi.ResourceOptions({options}))
"""


def _program(logical: str = "relay", comment: str = "printers", options: str = "") -> str:
    return PROGRAM.format(logical=logical, comment=comment, options=options)


def _connectors(tenant: Any, name: str = "Relay from office printers") -> list[dict[str, Any]]:
    values = tenant.invoke("Get-InboundConnector").json()["value"]
    return [v for v in values if str(v["Name"]).lower() == name.lower()]


def _cmdlets(tenant: Any) -> list[str]:
    return [e["cmdlet"] for e in tenant.requests() if not str(e["cmdlet"]).startswith("Get-")]


def test_a_forced_replacement_deletes_first_and_leaves_the_connector_in_the_tenant(project: Project) -> None:
    tenant = project.tenant
    project.write_stack(RELAY_STACK)
    project.up()
    old_id = project.resources("InboundConnector")[0]["id"]

    tenant.clear_requests()
    project.up("--target-replace", project.urn("InboundConnector", RELAY))
    new_id = project.resources("InboundConnector")[0]["id"]
    live = _connectors(tenant)
    assert [c["Guid"] for c in live] == [new_id], "the connector Pulumi's state holds must exist in the tenant"
    assert new_id != old_id
    assert _cmdlets(tenant) == ["Remove-InboundConnector", "New-InboundConnector"]


def test_replace_on_changes_keeps_the_connector(project: Project) -> None:
    tenant = project.tenant
    project.write_program(_program(options="replace_on_changes=['comment']"))
    project.up()
    project.write_program(_program(comment="printers and apps", options="replace_on_changes=['comment']"))
    assert ops(project.preview()) == [("replace", "relay")]
    project.up()
    state = project.resources("InboundConnector")[0]
    assert [c["Guid"] for c in _connectors(tenant)] == [state["id"]]
    assert _connectors(tenant)[0]["Comment"] == "printers and apps"


def test_a_logical_rename_without_alias_stops_before_touching_the_connector(project: Project) -> None:
    tenant = project.tenant
    project.write_program(_program(logical="relay"))
    project.up()
    guid = project.resources("InboundConnector")[0]["id"]

    # New logical name, same connector name, no alias: the engine creates "printers" and deletes "relay".
    project.write_program(_program(logical="printers"))
    result = project.up(check=False)
    assert result.returncode != 0
    assert "already exists" in result.stdout and "adopt: true" in result.stdout
    assert [c["Guid"] for c in _connectors(tenant)] == [guid], "the connector must survive"

    # With an alias the engine knows it is the same resource: nothing is created or deleted.
    project.write_program(_program(logical="printers", options="aliases=[pulumi.Alias(name='relay')]"))
    tenant.clear_requests()
    project.up()
    assert [c["Guid"] for c in _connectors(tenant)] == [guid]
    assert project.resources("InboundConnector")[0]["id"] == guid
    assert _cmdlets(tenant) == []


def test_a_change_of_case_is_an_in_place_rename_of_the_same_connector(project: Project) -> None:
    tenant = project.tenant
    project.write_stack(RELAY_STACK)
    project.up()
    guid = project.resources("InboundConnector")[0]["id"]

    project.write_stack(RELAY_STACK.replace("Relay from office printers", "Relay from Office Printers"))
    assert ops(project.preview()) == [("update", RELAY)]
    tenant.clear_requests()
    project.up()
    assert [(c["Guid"], c["Name"]) for c in _connectors(tenant)] == [(guid, "Relay from Office Printers")]
    assert _cmdlets(tenant) == ["Set-InboundConnector"]


def test_a_second_stack_cannot_take_over_a_connector_and_destroying_it_leaves_the_connector(
    make_project: Any,
) -> None:
    first = make_project("first")
    first.write_stack(RELAY_STACK)
    first.up()
    guid = first.resources("InboundConnector")[0]["id"]
    tenant = first.tenant

    second = make_project("second", name="other-project")
    second.write_stack(RELAY_STACK)
    result = second.up(check=False)
    assert result.returncode != 0 and "already exists" in result.stdout
    assert second.resources("InboundConnector") == []
    second.run("destroy", "--yes", "--skip-preview")
    assert [c["Guid"] for c in _connectors(tenant)] == [guid]


def test_an_accepted_domain_replacement_keeps_the_values_to_restore(project: Project) -> None:
    tenant = project.tenant
    project.write_stack("acceptedDomains:\n  - domainName: contoso.com\n    domainType: InternalRelay\n")
    project.up()
    project.up("--target-replace", project.urn("AcceptedDomain", "contoso.com"))
    state = project.resources("AcceptedDomain")[0]
    assert state["outputs"]["domainType"] == "InternalRelay"
    assert state["outputs"]["restoreValues"] == {"domainType": "Authoritative"}
    live = tenant.invoke("Get-AcceptedDomain", {"Identity": "contoso.com"}).json()["value"][0]
    assert live["DomainType"] == "InternalRelay"
    project.run("destroy", "--yes", "--skip-preview")
    live = tenant.invoke("Get-AcceptedDomain", {"Identity": "contoso.com"}).json()["value"][0]
    assert live["DomainType"] == "Authoritative"


def test_ignore_changes_protects_a_hand_made_change(project: Project) -> None:
    tenant = project.tenant
    project.write_program(_program(options="ignore_changes=['comment']"))
    project.up()
    guid = project.resources("InboundConnector")[0]["id"]
    tenant.invoke("Set-InboundConnector", {"Identity": guid, "Comment": "changed by the mail team"})

    assert ops(project.preview()) == []
    tenant.clear_requests()
    project.up()
    assert _cmdlets(tenant) == []
    assert _connectors(tenant)[0]["Comment"] == "changed by the mail team"

    # A field that is not ignored is still corrected.
    tenant.invoke("Set-InboundConnector", {"Identity": guid, "SenderIPAddresses": ["203.0.113.99"]})
    assert ops(project.preview()) == [("update", "relay")]


def test_protect_and_retain_on_delete_are_the_engine_s_and_keep_the_connector(project: Project) -> None:
    tenant = project.tenant
    project.write_program(_program(options="protect=True"))
    project.up()
    guid = project.resources("InboundConnector")[0]["id"]
    result = project.run("destroy", "--yes", "--skip-preview", check=False)
    assert result.returncode != 0
    assert [c["Guid"] for c in _connectors(tenant)] == [guid]

    project.write_program(_program(options="retain_on_delete=True"))
    project.up()
    project.run("destroy", "--yes", "--skip-preview")
    assert project.resources("InboundConnector") == []
    assert [c["Guid"] for c in _connectors(tenant)] == [guid]  # left in the tenant, as asked
