"""``pulumi preview / up / refresh / destroy`` with the real engine, secrets, config, and the listing cost.

Each test is one user story run with the real CLI against a fresh emulated tenant; the tenant's request log
says what reached Exchange Online.
"""

from __future__ import annotations

from typing import Any

from .conftest import Project, ops, pr_stack

HYBRID = pr_stack(name="Relay from office printers", comment="printers")
RELAY = "relay from office printers"
OUT = "to on-premises exchange"


def _get(tenant: Any, noun: str, identity: str) -> dict[str, Any] | None:
    response = tenant.invoke(f"Get-{noun}", {"Identity": identity})
    values = response.json().get("value") if response.status_code == 200 else None
    return dict(values[0]) if values else None


def _writes(tenant: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(e["cmdlet"], e.get("parameters") or {}) for e in tenant.requests()
            if not str(e.get("cmdlet", "")).startswith("Get-")]


def test_preview_up_drift_refresh_and_destroy(project: Project) -> None:
    tenant = project.tenant
    project.write_stack(HYBRID)
    assert sorted(ops(project.preview())) == [("create", "contoso.com"), ("create", RELAY), ("create", OUT)]
    assert _writes(tenant) == []  # a preview writes nothing

    project.up()
    relay = project.resources("InboundConnector")[0]
    assert _get(tenant, "InboundConnector", relay["id"])["Name"] == "Relay from office printers"
    assert ops(project.preview()) == []  # converged: nothing to do

    # A change made in the admin center: preview shows it without a refresh (the diff reads the tenant).
    tenant.invoke("Set-InboundConnector", {"Identity": relay["id"], "SenderIPAddresses": ["203.0.113.99"]})
    steps = project.preview()
    assert ops(steps) == [("update", RELAY)]
    text = project.run("preview", "--diff").stdout
    assert "senderIpAddresses" in text or "update" in text

    # refresh takes the drift into state; up then puts the declared value back with one minimal Set.
    project.run("refresh", "--yes", "--skip-preview")
    refreshed = project.resources("InboundConnector")[0]
    assert refreshed["outputs"]["senderIpAddresses"] == ["203.0.113.99"]
    tenant.clear_requests()
    project.up()
    assert _writes(tenant) == [("Set-InboundConnector", {"Identity": relay["id"], "SenderIPAddresses": ["203.0.113.10"]})]

    # destroy removes the connectors and puts the accepted domain back as it was found.
    project.run("destroy", "--yes", "--skip-preview")
    assert _get(tenant, "InboundConnector", relay["id"]) is None
    assert _get(tenant, "AcceptedDomain", "contoso.com")["DomainType"] == "Authoritative"
    assert project.resources("InboundConnector") == []


def test_secrets_stay_encrypted_and_a_plain_credential_is_warned_about(project: Project) -> None:
    secret = project.tenant.client_secret
    project.write_stack(HYBRID)
    up = project.up()
    for text in (project.raw_state(), up.stdout, up.stderr, (project.root / "Pulumi.test.yaml").read_text()):
        assert secret not in text
    assert "stored in plain text" not in up.stdout

    # The same credential set without --secret: the program warns, naming the key and the fix.
    project.config("clientSecret", secret)
    preview = project.run("preview")
    assert "o365-mailflow:clientSecret is stored in plain text" in preview.stdout
    assert "pulumi config set --secret o365-mailflow:clientSecret" in preview.stdout


def test_config_of_another_project_namespace_is_not_taken_for_ours(make_project: Any) -> None:
    # A program in a project called "myinfra" with its own keys named like ours: only o365-mailflow:* counts.
    project = make_project("myinfra", name="myinfra")
    project.run("config", "set", "myinfra:tenantId", "00000000-0000-0000-0000-000000000000")
    project.run("config", "set", "myinfra:cloud", "china")
    project.write_stack(HYBRID)
    project.up()
    assert project.resources("InboundConnector")[0]["id"]


def test_up_lists_each_type_once_however_many_resources_it_writes(project: Project) -> None:
    tenant = project.tenant
    connectors = "".join(
        f"  - name: Relay {i:02d}\n    connectorType: OnPremises\n    senderDomains: ['*']\n"
        f"    senderIpAddresses: [203.0.113.{i + 10}]\n" for i in range(12))
    project.write_stack("inboundConnectors:\n" + connectors)
    tenant.clear_requests()
    project.up()
    lists = [e for e in tenant.requests() if e["cmdlet"] == "Get-InboundConnector"
             and "Identity" not in (e.get("parameters") or {}) and not e.get("page")]
    assert len(lists) == 1, f"{len(lists)} list calls for 12 creates"
    assert sum(1 for c, _ in _writes(tenant) if c == "New-InboundConnector") == 12
