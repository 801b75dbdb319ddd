"""`mailflow plan | apply | export` end to end, through the CLI, against a fresh emulated tenant per test.

Matrix (what the emulator's request log must show, not what the code says it did):
- first apply creates everything; a second plan is empty and makes only the three list calls;
- an out-of-band change through the admin API is drift on that exact field, and apply's Set carries only it;
- an unmanaged connector survives apply; prune: true deletes it; an accepted domain leaving a pruning stack
  gets back the values found before the stack changed it, and is never removed;
- a failure mid-apply stops with done / not done and exit 1; a re-run converges with no duplicate;
- replication lag (a new object invisible for a while) is waited out by the read-back;
- a read failure stops the plan (never read as "absent"), and nothing is written;
- a stack with one invalid object (offline or against the tenant) writes nothing;
- an accepted domain missing from the tenant is an error pointing at the Microsoft 365 admin center;
- with a baseline, a declared object that already exists must say adopt: true, and adoption sets only what differs;
- export then plan shows no change; JSON plans follow docs/plan-schema.json; apply refuses to run unattended
  without --auto-approve.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from o365_mailflow.errors import NotFound

from reconcile_helpers import Project

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "plan-schema.json").read_text(encoding="utf-8"))

BASE = """\
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
inboundConnectors:
  - name: Relay from printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10, 198.51.100.0/28]
  - name: From partner
    connectorType: Partner
    senderDomains: [partner.example.com]
    requireTls: true
outboundConnectors:
  - name: To on-premises
    connectorType: OnPremises
    recipientDomains: [contoso.com]
    useMxRecord: false
    smartHosts: [mail.contoso.com]
"""

LISTS = ["Get-AcceptedDomain", "Get-InboundConnector", "Get-OutboundConnector"]


def _cmdlets(entries: list[dict[str, Any]]) -> list[str]:
    return [str(e["cmdlet"]) for e in entries]


def _change(plan: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in plan["changes"] if c["name"] == name)


def test_first_apply_creates_everything_and_the_next_plan_is_empty_with_only_list_calls(project: Project) -> None:
    project.write_stack(BASE)
    first = project.run("plan", "--stack", "test", "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert "3 to create, 1 to update" in first.stdout

    project.tenant.clear_requests()
    result = project.apply()
    assert "Apply complete" in result.stdout and "Verified: the tenant shows all 4 write(s)." in result.stdout
    writes = project.tenant.writes()
    assert sorted(_cmdlets(writes)) == [
        "New-InboundConnector", "New-InboundConnector", "New-OutboundConnector", "Set-AcceptedDomain"]
    # Dependency order: inbound, then outbound, then contoso.com becomes InternalRelay once the outbound
    # connector that relays its unknown recipients exists.
    assert _cmdlets(writes)[:2] == ["New-InboundConnector", "New-InboundConnector"]
    assert _cmdlets(writes)[2:] == ["New-OutboundConnector", "Set-AcceptedDomain"]
    # k writes + one listing per type for the plan and one for the verification; no read by identity.
    requests = project.tenant.requests()
    assert len(requests) == 4 + 2 * 4 and all("Identity" not in (e.get("parameters") or {}) or
                                              e["cmdlet"].startswith("Set-") for e in requests)

    project.tenant.clear_requests()
    again = project.run("plan", "--stack", "test", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes" in again.stdout
    # One list per type (the client lists outbound connectors twice, with and without test-mode ones), no Get
    # by identity and no write.
    requests = project.tenant.requests()
    assert sorted(set(_cmdlets(requests))) == LISTS and len(requests) <= 4
    assert all("Identity" not in (e.get("parameters") or {}) for e in requests)


def test_an_out_of_band_change_is_drift_on_that_field_and_apply_sets_only_that_field(project: Project) -> None:
    stack_file = project.write_stack(BASE)
    project.apply()
    project.tenant.admin_client().set("InboundConnector", "Relay from printers",
                                      {"SenderIPAddresses": ["203.0.113.10"], "Comment": "edited in the portal"})

    plan = project.plan_json("--baseline", str(stack_file))
    jsonschema.validate(plan, SCHEMA)
    change = _change(plan, "Relay from printers")
    assert change["action"] == "update"
    assert [(c["field"], c["before"], c["after"], c["drift"]) for c in change["changes"]] == [
        ("senderIpAddresses", ["203.0.113.10"], ["198.51.100.0/28", "203.0.113.10"], True)]
    text = project.run("plan", "--stack", "test", "--baseline", str(stack_file)).stdout
    assert "drift" in text and "senderIpAddresses" in text
    assert "comment" not in text  # not declared, so not managed and never drift

    project.tenant.clear_requests()
    project.apply()
    (write,) = project.tenant.writes()
    assert write["cmdlet"] == "Set-InboundConnector"
    assert set(write["parameters"]) == {"Identity", "SenderIPAddresses"}
    assert sorted(write["parameters"]["SenderIPAddresses"]) == ["198.51.100.0/28", "203.0.113.10"]
    assert project.run("plan", "--stack", "test", "--detailed-exitcode").exit_code == 0


def test_an_unmanaged_connector_survives_apply_and_is_deleted_only_with_prune(project: Project) -> None:
    admin = project.tenant.admin_client()
    admin.new("InboundConnector", {"Name": "Made by hand", "ConnectorType": "Partner",
                                   "SenderDomains": ["other.example.com"]})
    project.write_stack(BASE)
    plan = project.plan_json()
    assert {"type": "InboundConnector", "name": "Made by hand"}.items() <= next(
        u for u in plan["unmanaged"] if u["name"] == "Made by hand").items()
    project.apply()
    assert "Remove-InboundConnector" not in _cmdlets(project.tenant.writes())
    assert admin.get("InboundConnector", "Made by hand")["Name"] == "Made by hand"

    project.write_stack(BASE, prune=True)
    plan = project.plan_json()
    assert _change(plan, "Made by hand")["action"] == "delete"
    assert plan["summary"]["delete"] == 1
    project.tenant.clear_requests()
    result = project.apply()
    assert "deletes 1 connector" in result.stdout
    assert _cmdlets(project.tenant.writes()) == ["Remove-InboundConnector"]
    with pytest.raises(NotFound):
        admin.get("InboundConnector", "Made by hand")


def test_an_accepted_domain_leaving_a_pruning_stack_gets_back_the_values_found(project: Project) -> None:
    project.write_stack("""\
        acceptedDomains:
          - domainName: sales.contoso.com
            domainType: InternalRelay
            matchSubDomains: true
        outboundConnectors:
          - name: To on-premises
            connectorType: OnPremises
            recipientDomains: ["*.contoso.com", sales.contoso.com]
            useMxRecord: false
            smartHosts: [mail.contoso.com]
        """)
    project.apply()
    project.write_stack("""\
        outboundConnectors:
          - name: To on-premises
            connectorType: OnPremises
            recipientDomains: ["*.contoso.com", sales.contoso.com]
            useMxRecord: false
            smartHosts: [mail.contoso.com]
        """, prune=True)
    plan = project.plan_json()
    restore = _change(plan, "sales.contoso.com")
    assert restore["action"] == "restore"
    assert {c["field"]: c["after"] for c in restore["changes"]} == {"domainType": "Authoritative",
                                                                   "matchSubDomains": False}
    assert {u["name"] for u in plan["unmanaged"]} >= {"contoso.com", "fabrikam.com"}  # never changed: left alone
    project.tenant.clear_requests()
    project.apply()
    (write,) = project.tenant.writes()
    assert write["cmdlet"] == "Set-AcceptedDomain"
    assert set(write["parameters"]) == {"Identity", "DomainType", "MatchSubDomains"}
    assert project.run("plan", "--stack", "test", "--detailed-exitcode").exit_code == 0


def test_a_failure_mid_apply_stops_reports_and_a_rerun_converges_without_duplicates(project: Project) -> None:
    project.write_stack(BASE)
    project.tenant.faults(error_next=1, error_status=500, cmdlets=["New-OutboundConnector"])
    failed = project.run("apply", "--stack", "test", "--auto-approve")
    assert failed.exit_code == 1
    assert "Done (2)" in failed.stderr and "Failed (1)" in failed.stderr and "Not started (1)" in failed.stderr
    assert "create OutboundConnector 'To on-premises'" in failed.stderr
    assert "Not done" not in failed.stderr  # every write whose answer came back is reported as done

    project.tenant.clear_faults()
    project.tenant.clear_requests()
    project.apply()
    assert _cmdlets(project.tenant.writes()) == ["New-OutboundConnector", "Set-AcceptedDomain"]
    admin = project.tenant.admin_client()
    names = [c["Name"] for c in admin.list("InboundConnector")] + [c["Name"] for c in admin.list("OutboundConnector")]
    assert sorted(names) == ["From partner", "Relay from printers", "To on-premises"]
    assert project.run("plan", "--stack", "test", "--detailed-exitcode").exit_code == 0


def test_apply_waits_out_replication_lag_before_reporting_success(project: Project) -> None:
    project.write_stack(BASE)
    time.sleep(1.2)  # the lag applies to every new object, and the tenant's own accepted domains are new too
    project.tenant.faults(read_lag=1.0)
    result = project.apply()
    assert "FAILED" not in result.stdout
    assert "not yet visible" in result.stdout and "Verified: the tenant shows all 4 write(s)." in result.stdout
    project.tenant.clear_faults()
    assert project.run("plan", "--stack", "test", "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize("command", ["plan", "apply"], ids=["plan", "apply"])
def test_a_read_failure_stops_everything_and_is_never_taken_as_absent(project: Project, command: str) -> None:
    project.write_stack(BASE)
    project.tenant.faults(error_next=1, error_status=500, cmdlets=["Get-OutboundConnector"])
    args = ["--auto-approve"] if command == "apply" else []
    result = project.run(command, "--stack", "test", *args)
    assert result.exit_code == 1
    assert "never taken to mean the objects are absent" in result.stderr
    assert "create" not in result.stdout
    assert project.tenant.writes() == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (BASE.replace("[203.0.113.10, 198.51.100.0/28]", "[203.0.113.10, 10.1.2.3]"),
         "inboundConnectors[0].senderIpAddresses[1]"),
        (BASE + "  - name: Broken\n    connectorType: OnPremises\n    recipientDomains: [contoso.com]\n",
         "outboundConnectors[1]"),
    ],
    ids=["bad-value", "broken-rule"],
)
def test_a_stack_with_one_invalid_object_writes_nothing(project: Project, body: str, expected: str) -> None:
    path = project.write_stack(body)
    result = project.run("apply", "--stack", "test", "--auto-approve")
    assert result.exit_code == 1
    assert expected in result.stderr and str(path) in result.stderr
    assert "nothing was sent to the tenant" in result.stderr
    assert project.tenant.writes() == []


def test_a_rule_broken_only_against_the_tenant_writes_nothing(project: Project) -> None:
    project.tenant.admin_client().new("InboundConnector", {"Name": "Partner in", "ConnectorType": "Partner",
                                                           "SenderDomains": ["p.example.com"]})
    project.tenant.clear_requests()
    project.write_stack(BASE.replace(
        "inboundConnectors:\n",
        "inboundConnectors:\n  - name: Partner in\n    adopt: true\n    treatMessagesAsInternal: true\n", 1))
    result = project.run("apply", "--stack", "test", "--auto-approve")
    assert result.exit_code == 1, result.output
    assert "treatMessagesAsInternal" in result.stderr and "OnPremises" in result.stderr
    assert project.tenant.writes() == []


def test_an_accepted_domain_the_tenant_lacks_is_an_error_that_says_to_add_it_in_the_admin_center(
    project: Project,
) -> None:
    project.write_stack(BASE.replace("domainName: contoso.com", "domainName: northwind.example.com"))
    result = project.run("apply", "--stack", "test", "--auto-approve")
    assert result.exit_code == 1
    assert "northwind.example.com" in result.stderr and "Microsoft 365 admin center" in result.stderr
    assert project.tenant.writes() == []


def test_with_a_baseline_an_existing_object_must_be_adopted_and_adoption_sets_only_what_differs(
    project: Project, tmp_path: Path
) -> None:
    project.tenant.admin_client().new("OutboundConnector", {
        "Name": "To on-premises", "ConnectorType": "OnPremises", "RecipientDomains": ["contoso.com"],
        "UseMXRecord": False, "SmartHosts": ["old.contoso.com"], "Comment": "hand made"})
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(project.tenant_yaml(), encoding="utf-8")
    project.write_stack(BASE)
    refused = project.run("plan", "--stack", "test", "--baseline", str(baseline))
    assert refused.exit_code == 1
    assert "adopt: true" in refused.stderr and "To on-premises" in refused.stderr

    project.write_stack(BASE.replace("  - name: To on-premises\n", "  - name: To on-premises\n    adopt: true\n"))
    plan = project.plan_json("--baseline", str(baseline))
    adopt = _change(plan, "To on-premises")
    assert adopt["action"] == "adopt"
    assert [c["field"] for c in adopt["changes"]] == ["smartHosts"]
    project.tenant.clear_requests()
    project.apply("--baseline", str(baseline))
    sets = [w for w in project.tenant.writes() if w["cmdlet"] == "Set-OutboundConnector"]
    assert [set(w["parameters"]) for w in sets] == [{"Identity", "SmartHosts"}]


def test_export_then_plan_shows_no_change(project: Project) -> None:
    admin = project.tenant.admin_client()
    admin.new("InboundConnector", {"Name": "Partner TLS", "ConnectorType": "Partner", "SenderDomains": ["*.p.example.com"],
                                   "RequireTls": True, "TlsSenderCertificateName": "mail.p.example.com",
                                   "RestrictDomainsToCertificate": True})
    admin.new("OutboundConnector", {"Name": "Smart host", "ConnectorType": "Partner", "RecipientDomains": ["p.example.com"],
                                    "UseMXRecord": False, "SmartHosts": ["198.51.100.25"],
                                    "TlsSettings": "EncryptionOnly"})
    project.write_stack(BASE)
    project.apply()
    path = project.write_stack("")  # the tenant section only: export fills in the rest
    result = project.run("export", "--stack", "test")
    assert result.exit_code == 0, result.output
    exported = path.read_text(encoding="utf-8")
    assert "Partner TLS" in exported and "Smart host" in exported and "AZURE" not in exported
    plan = project.run("plan", "--stack", "test", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert "No changes" in plan.stdout


def test_apply_refuses_to_run_unattended_without_auto_approve(project: Project) -> None:
    project.write_stack(BASE)
    result = project.run("apply", "--stack", "test", input="y\n")
    assert result.exit_code == 1
    assert "--auto-approve" in result.stderr
    assert project.tenant.requests() == []


@pytest.mark.parametrize("fmt", ["json", "markdown", "text"], ids=["json", "markdown", "text"])
def test_plan_writes_each_format_to_a_file(project: Project, tmp_path: Path, fmt: str) -> None:
    project.write_stack(BASE)
    out = tmp_path / f"plan.{fmt}"
    result = project.run("plan", "--stack", "test", "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "To on-premises" in text
    assert "\x1b[" not in text  # never colour in a file
    if fmt == "json":
        jsonschema.validate(json.loads(text), SCHEMA)


@pytest.mark.parametrize("adopt", [False, True], ids=["refused-without-adopt", "adopted-with-adopt"])
def test_a_create_that_meets_an_object_made_since_the_plan_adopts_it_only_when_the_stack_says_so(
    project: Project, adopt: bool
) -> None:
    """The plan said create, but someone made an object of that name meanwhile (a New whose answer was lost is
    the client's business: it reads that one back). Taking over a connector nobody reviewed is adoption, which
    the stack must ask for (DESIGN): without adopt: true the write is refused and the object left as it is; with
    it, the declared values are set. Never a duplicate."""
    from o365_mailflow.apply import apply_plan
    from o365_mailflow.plan import compute_plan
    from o365_mailflow.reconcile import AdoptionRequired
    from o365_mailflow.snapshot import take_snapshot
    from o365_mailflow.stack import load_stack

    body = BASE.replace("  - name: From partner\n", "  - name: From partner\n    adopt: true\n") if adopt else BASE
    stack = load_stack(project.write_stack(body))
    admin = project.tenant.admin_client()
    snapshot = take_snapshot(admin)
    plan = compute_plan(stack, snapshot)
    admin.new("InboundConnector", {"Name": "From partner", "ConnectorType": "Partner",
                                   "SenderDomains": ["partner.example.com"], "RequireTls": False})
    report = apply_plan(plan, stack, admin)
    matching = [c for c in admin.list("InboundConnector") if c["Name"] == "From partner"]
    assert len(matching) == 1
    if adopt:
        assert report.ok, report.failed
        outcome = next(s.outcome for s in report.done if s.change.name == "From partner")
        assert outcome.startswith("already existed, adopted")
        assert matching[0]["RequireTls"] is True
    else:
        assert report.failed is not None and report.failed[0].name == "From partner"
        assert isinstance(report.failed[1], AdoptionRequired) and "adopt: true" in str(report.failed[1])
        assert matching[0]["RequireTls"] is False


def test_a_domain_leaving_a_pruning_stack_with_no_recorded_values_is_left_alone_with_a_warning(
    project: Project, tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(project.tenant_yaml() + "acceptedDomains:\n  - domainName: fabrikam.com\n", encoding="utf-8")
    project.write_stack("inboundConnectors: []\n", prune=True)
    plan = project.plan_json("--baseline", str(baseline))
    assert plan["hasChanges"] is False
    (warning,) = [w for w in plan["warnings"] if w["code"] == "plan.found-values-unknown"]
    assert "fabrikam.com" in warning["summary"]


def test_export_never_overwrites_a_declared_stack_unless_forced_and_can_print_to_stdout(project: Project) -> None:
    path = project.write_stack(BASE)
    before = path.read_text(encoding="utf-8")
    refused = project.run("export", "--stack", "test")
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert path.read_text(encoding="utf-8") == before
    printed = project.run("export", "--stack", "test", "--out", "-")
    assert printed.exit_code == 0, printed.output
    assert "acceptedDomains:" in printed.stdout and f"endpoint: {project.tenant.config.endpoint}" in printed.stdout
    assert path.read_text(encoding="utf-8") == before
