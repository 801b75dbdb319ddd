"""A sequence of pull requests: the comment a reviewer approves is what ``pulumi up`` then does.

Each step is one pull request (or one change made in the admin center): ``mailflow pulumi-preview`` renders the
comment and writes the reviewed JSON plan, ``mailflow pulumi-deploy --reviewed`` deploys it. The set of actions
in the comment must equal the set of writes the emulated tenant then receives (its request log), for: add,
edit, rename with renamedFrom, a change of case only, drift, removing a connector from the stack (Pulumi deletes
it, whatever ``prune`` says), an unmanaged connector with prune on and off (never touched), and an accepted
domain leaving the stack (its values are restored). A last step proves that the deploy stops when the tenant
changed after the review.
"""

from __future__ import annotations

from typing import Any

from .conftest import Project, pr_stack


def _expected(plan: dict[str, Any]) -> set[tuple[str, str, str]]:
    """The writes the reviewed plan announces: (cmdlet verb, type, name or identity)."""
    out: set[tuple[str, str, str]] = set()
    for change in plan["changes"]:
        action, type_name = change["action"], change["type"]
        ident = str(change.get("identity") or "").lower()
        name = str(change["name"]).lower()
        if action == "create":
            out.add(("New", type_name, name))
        elif action in ("update", "adopt", "restore") and change["changes"]:
            out.add(("Set", type_name, ident))
        elif action == "delete":
            out.add(("Remove", type_name, ident))
        elif action == "replace":
            out |= {("Remove", type_name, ident), ("New", type_name, name)}
    return out


def _performed(tenant: Any, known: set[str]) -> set[tuple[str, str, str]]:
    """The writes the tenant received, from its request log. ``known``: ids in state before the deploy; a Set
    of any other id is the follow-up of a create (fields New-* does not take), part of that create."""
    out: set[tuple[str, str, str]] = set()
    for entry in tenant.requests():
        verb, _, noun = str(entry["cmdlet"]).partition("-")
        params = entry.get("parameters") or {}
        if verb == "Get":
            continue
        if verb == "New":
            out.add(("New", noun, str(params.get("Name", "")).lower()))
            continue
        ident = str(params.get("Identity", "")).lower()
        if verb == "Set" and noun != "AcceptedDomain" and ident not in known:
            continue
        out.add((verb, noun, ident))
    return out


def _ids(project: Project) -> set[str]:
    return {str(r.get("id", "")).lower() for t in ("InboundConnector", "OutboundConnector")
            for r in project.resources(t)}


def _pull_request(project: Project, stack: str) -> tuple[str, set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """Review then deploy one change; returns the comment, the announced and the performed writes."""
    project.write_stack(stack)
    reviewed = project.root / "reviewed.json"
    comment, plan = project.review(reviewed)
    assert plan["engine"] == "pulumi"
    known = _ids(project)
    project.tenant.clear_requests()
    project.deploy(reviewed)
    return comment, _expected(plan), _performed(project.tenant, known)


def _guid(project: Project, type_name: str, name: str) -> str:
    return project.id_of(type_name, name).lower()  # as _expected and _performed spell ids


def test_every_pull_request_deploys_exactly_what_its_comment_showed(project: Project) -> None:
    tenant = project.tenant

    comment, expected, performed = _pull_request(project, pr_stack())  # add
    assert expected == performed == {("New", "InboundConnector", "relay from printers"),
                                     ("New", "OutboundConnector", "to on-premises exchange"),
                                     ("Set", "AcceptedDomain", "contoso.com")}
    assert "Computed by:** `pulumi preview`" in comment
    assert "#### Mail flow" in comment and "```mermaid" in comment  # what the change does to mail, not only objects
    relay = _guid(project, "InboundConnector", "Relay from printers")

    _, expected, performed = _pull_request(project, pr_stack(ips="203.0.113.10, 203.0.113.11"))  # edit
    assert expected == performed == {("Set", "InboundConnector", relay)}

    _, expected, performed = _pull_request(project, pr_stack(name="Relay from copiers", renamed="Relay from printers",
                                                             ips="203.0.113.10, 203.0.113.11"))  # rename
    assert expected == performed == {("Set", "InboundConnector", relay)}

    _, expected, performed = _pull_request(project, pr_stack(name="RELAY from copiers",
                                                             ips="203.0.113.10, 203.0.113.11"))
    assert expected == performed == {("Set", "InboundConnector", relay)}  # a change of case only

    tenant.invoke("Set-InboundConnector", {"Identity": relay, "SenderIPAddresses": ["198.51.100.7"]})  # drift
    comment, expected, performed = _pull_request(project, pr_stack(name="RELAY from copiers",
                                                                   ips="203.0.113.10, 203.0.113.11"))
    assert expected == performed == {("Set", "InboundConnector", relay)}
    assert "drift" in comment.lower()

    out = _guid(project, "OutboundConnector", "To on-premises Exchange")
    comment, expected, performed = _pull_request(project, pr_stack(name="RELAY from copiers", out=False,
                                                                   ips="203.0.113.10, 203.0.113.11", prune=False))
    assert expected == performed == {("Remove", "OutboundConnector", out)}  # removed: deleted, prune or not
    assert "Delete" in comment

    made = tenant.invoke("New-InboundConnector", {"Name": "Made by hand", "ConnectorType": "Partner",
                                                  "SenderDomains": ["smtp:partner.example.com;1"]})
    assert made.status_code == 200
    for prune in (True, False):  # an object Pulumi never managed: listed, never touched
        comment, expected, performed = _pull_request(project, pr_stack(name="RELAY from copiers", out=False,
                                                                        prune=prune, ips="203.0.113.10, 203.0.113.11"))
        assert expected == performed == set()
        assert "Made by hand" in comment

    _, expected, performed = _pull_request(project, pr_stack(domain=False, name="RELAY from copiers", out=False,
                                                             ips="203.0.113.10, 203.0.113.11"))
    assert expected == performed == {("Set", "AcceptedDomain", "contoso.com")}  # restored, never deleted
    live = tenant.invoke("Get-AcceptedDomain", {"Identity": "contoso.com"}).json()["value"][0]
    assert live["DomainType"] == "Authoritative"


def test_the_deploy_stops_when_the_tenant_changed_after_the_review(project: Project) -> None:
    project.write_stack(pr_stack())
    project.up()
    relay = _guid(project, "InboundConnector", "Relay from printers")
    project.write_stack(pr_stack(ips="203.0.113.10, 203.0.113.11"))
    reviewed = project.root / "reviewed.json"
    assert project.mailflow("pulumi-preview", "--json-out", str(reviewed)).returncode == 0

    project.tenant.invoke("Set-InboundConnector", {"Identity": relay, "SenderIPAddresses": ["198.51.100.7"]})
    project.tenant.invoke("Set-OutboundConnector", {"Identity": _guid(project, "OutboundConnector",
                                                                      "To on-premises Exchange"),
                                                    "SmartHosts": ["other.contoso.com"]})
    project.tenant.clear_requests()
    result = project.mailflow("pulumi-deploy", "--reviewed", str(reviewed))
    assert result.returncode == 1
    assert "planned now but never reviewed: update OutboundConnector" in result.stderr
    assert _performed(project.tenant, _ids(project)) == set()
