"""Renaming a connector with ``renamedFrom``, through the CLI against a fresh emulated tenant per test.

What the emulator's request log and the tenant must show (not what the code says it did):
- a rename is ONE Set-*Connector on the old Guid carrying Name (and any other changed field): no New-*, no
  Remove-*, no second connector, the Guid is kept; the plan shows one update with the name change;
- leaving renamedFrom in the file afterwards is harmless: the next plan is empty;
- under prune: true the old connector is not deleted (it is the renamed one);
- with a baseline (the stack as last merged, old name) the rename is an update, not an adoption refusal;
- when the tenant has both the old and the new name, the plan stops, names both, and nothing is written.
"""

from __future__ import annotations

import pytest

from o365_mailflow.errors import NotFound

from reconcile_helpers import Project

BEFORE = """\
inboundConnectors:
  - name: Relay from printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
outboundConnectors:
  - name: To partner
    recipientDomains: [partner.example.com]
"""

# The same connectors, renamed; the inbound one also gets a comment, which must travel in the same Set.
AFTER = """\
inboundConnectors:
  - name: Relay from copiers
    renamedFrom: Relay from printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
    comment: renamed with the building move
outboundConnectors:
  - name: To partner (TLS)
    renamedFrom: to PARTNER
    recipientDomains: [partner.example.com]
"""


def _names(project: Project, noun: str) -> list[str]:
    return sorted(str(c["Name"]) for c in project.tenant.admin_client().list(noun))


def test_a_rename_is_one_set_on_the_same_guid_and_leaves_no_duplicate(project: Project) -> None:
    project.write_stack(BEFORE)
    project.apply()
    admin = project.tenant.admin_client()
    inbound_guid = admin.get("InboundConnector", "Relay from printers")["Guid"]
    outbound_guid = admin.get("OutboundConnector", "To partner")["Guid"]

    project.write_stack(AFTER)
    plan = project.plan_json()
    assert plan["summary"]["update"] == 2 and plan["summary"]["create"] == 0 and plan["summary"]["delete"] == 0
    assert not [u for u in plan["unmanaged"] if u["type"] != "AcceptedDomain"]  # the old names are not left over
    inbound = next(c for c in plan["changes"] if c["type"] == "InboundConnector")
    assert (inbound["action"], inbound["name"], inbound["identity"]) == ("update", "Relay from copiers", inbound_guid)
    assert [(c["field"], c["before"], c["after"]) for c in inbound["changes"]] == [
        ("name", "Relay from printers", "Relay from copiers"),
        ("comment", "", "renamed with the building move"),
    ]
    outbound = next(c for c in plan["changes"] if c["type"] == "OutboundConnector")
    assert (outbound["action"], outbound["identity"]) == ("update", outbound_guid)
    assert [(c["field"], c["before"], c["after"]) for c in outbound["changes"]] == [
        ("name", "To partner", "To partner (TLS)")]
    text = project.run("plan", "--stack", "test").stdout
    assert 'name: "Relay from printers" -> "Relay from copiers"' in text
    assert "renamed from 'Relay from printers'" in text

    project.tenant.clear_requests()
    project.apply()
    writes = project.tenant.writes()
    assert [w["cmdlet"] for w in writes] == ["Set-InboundConnector", "Set-OutboundConnector"]
    assert writes[0]["parameters"] == {"Identity": inbound_guid, "Name": "Relay from copiers",
                                       "Comment": "renamed with the building move"}
    assert writes[1]["parameters"] == {"Identity": outbound_guid, "Name": "To partner (TLS)"}

    assert admin.get("InboundConnector", "Relay from copiers")["Guid"] == inbound_guid
    assert admin.get("OutboundConnector", "To partner (TLS)")["Guid"] == outbound_guid
    with pytest.raises(NotFound):
        admin.get("InboundConnector", "Relay from printers")
    assert _names(project, "InboundConnector") == ["Relay from copiers"]
    assert _names(project, "OutboundConnector") == ["To partner (TLS)"]

    # renamedFrom left in the file: ignored now that the old name is gone.
    project.tenant.clear_requests()
    again = project.run("plan", "--stack", "test", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes" in again.stdout
    project.apply()
    assert project.tenant.writes() == []


def test_under_prune_the_old_connector_is_renamed_not_deleted(project: Project) -> None:
    project.write_stack(BEFORE, prune=True)
    project.apply()
    guid = project.tenant.admin_client().get("InboundConnector", "Relay from printers")["Guid"]

    project.write_stack(AFTER, prune=True)
    plan = project.plan_json()
    assert plan["summary"]["delete"] == 0 and plan["summary"]["create"] == 0
    project.tenant.clear_requests()
    project.apply()
    cmdlets = [w["cmdlet"] for w in project.tenant.writes()]
    assert not any(c.startswith(("New-", "Remove-")) for c in cmdlets), cmdlets
    assert project.tenant.admin_client().get("InboundConnector", "Relay from copiers")["Guid"] == guid


def test_with_the_old_stack_as_baseline_the_rename_is_an_update_not_an_adoption(project: Project) -> None:
    old_file = project.write_stack(BEFORE, name="merged")
    project.run("apply", "--stack", "merged", "--auto-approve")
    project.write_stack(AFTER)

    plan = project.plan_json("--baseline", str(old_file))
    actions = {(c["type"], c["name"]): c["action"] for c in plan["changes"]}
    assert actions == {("InboundConnector", "Relay from copiers"): "update",
                       ("OutboundConnector", "To partner (TLS)"): "update"}
    inbound = next(c for c in plan["changes"] if c["type"] == "InboundConnector")
    assert not any(c["drift"] for c in inbound["changes"])  # the stack changed the name, not the tenant


def test_when_the_tenant_has_both_names_the_plan_stops_and_nothing_is_written(project: Project) -> None:
    project.write_stack(BEFORE)
    project.apply()
    project.tenant.admin_client().new("InboundConnector", {
        "Name": "Relay from copiers", "ConnectorType": "OnPremises", "SenderDomains": ["*"],
        "SenderIPAddresses": ["198.51.100.7"]})
    project.write_stack(AFTER)

    project.tenant.clear_requests()
    for command in ("plan", "apply"):
        result = project.run(command, "--stack", "test", "--auto-approve") if command == "apply" else \
            project.run(command, "--stack", "test")
        assert result.exit_code == 1, result.output
        assert "'Relay from printers'" in result.output and "'Relay from copiers'" in result.output
        assert "renamedFrom" in result.output and "Nothing was changed" in result.output
        assert "stacks/test.yaml:10: inboundConnectors[0].renamedFrom: " in result.output  # the renamedFrom line
    assert project.tenant.writes() == []
    assert _names(project, "InboundConnector") == ["Relay from copiers", "Relay from printers"]
