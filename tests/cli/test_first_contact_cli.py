"""First contact with a real tenant, through the CLI and the reconcile core (issue #14).

Matrix:
- plan with an app that has no directory role, 403 declared gzip: the role advice, exit 1, never a Python error;
- apply whose New-InboundConnector commits but loses its answer: one connector, reported done, next plan empty;
- plan while the token endpoint answers 503 once: retried, exit 0;
- apply while the token endpoint goes down between two steps: the first step is reported done, the failure is a
  typed error that says to wait, and the rest is listed as not done (the report is not lost).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconcile_helpers import Project, Tenant

from o365_mailflow.apply import apply_plan
from o365_mailflow.client import ExoClient, RetryPolicy, TokenEndpointUnavailable
from o365_mailflow.credentials import ClientSecret
from o365_mailflow.plan import compute_plan
from o365_mailflow.snapshot import take_snapshot
from o365_mailflow.stack import load_stack

TWO = """\
inboundConnectors:
  - name: First
    connectorType: Partner
    senderDomains: [first.example.com]
  - name: Second
    connectorType: Partner
    senderDomains: [second.example.com]
"""


def test_plan_without_a_directory_role_and_a_gzip_declared_403_gives_the_role_advice(
    roleless_project: Project,
) -> None:
    roleless_project.write_stack(TWO)
    result = roleless_project.run("plan", "--stack", "test")
    assert result.exit_code == 1, result.output
    assert "Exchange Administrator" in result.stderr and "HTTP 403" in result.stderr, result.stderr
    assert "ContentDecodingError" not in result.stderr and "bug" not in result.stderr, result.stderr


def test_apply_adopts_the_connector_a_lost_answer_created_instead_of_failing_or_duplicating(
    tmp_path: Path, emulator_tenant: Any
) -> None:
    project = Project(tmp_path, Tenant(emulator_tenant))
    project.write_stack(TWO)
    emulator_tenant.faults(drop_after_next=1, cmdlets=["New-InboundConnector"])
    result = project.apply()
    assert "Not done" not in result.output
    news = [e for e in emulator_tenant.requests() if e["cmdlet"] == "New-InboundConnector"]
    assert [e["fault"] for e in news][:2] == ["drop_after", None]
    emulator_tenant.clear_faults()
    names = sorted(c["Name"] for c in Tenant(emulator_tenant).admin_client().list("InboundConnector"))
    assert names == ["First", "Second"]
    assert project.plan_json()["summary"].get("create", 0) == 0


def test_plan_survives_a_token_endpoint_503(tmp_path: Path, emulator_tenant: Any) -> None:
    project = Project(tmp_path, Tenant(emulator_tenant))
    project.write_stack(TWO)
    emulator_tenant.faults(token_error_next=1, error_status=503)
    result = project.run("plan", "--stack", "test")
    assert result.exit_code == 0, result.output
    assert [t["status"] for t in emulator_tenant.requests("token")][:2] == [503, 200]


class _TokenOutageAfterFirstStep:
    """A Progress that takes the token endpoint down when the second step begins (tokens live 60 s, so MSAL asks
    for a new one on every call: the outage is met mid-apply)."""

    def __init__(self, tenant: Any) -> None:
        self.tenant = tenant
        self.began = 0
        self.errors: list[Exception] = []

    def started(self, change: Any) -> None:
        self.began += 1
        if self.began == 2:
            self.tenant.faults(token_error_next=1000, error_status=503)

    def finished(self, step: Any, number: int, total: int) -> None: ...

    def failed(self, change: Any, error: Exception, number: int, total: int) -> None:
        self.errors.append(error)

    def warning(self, change: Any, text: str) -> None: ...

    def verifying(self, text: str) -> None: ...


def test_a_token_outage_mid_apply_keeps_the_done_and_not_done_report(tmp_path: Path, emulator_tenant: Any) -> None:
    project = Project(tmp_path, Tenant(emulator_tenant))
    stack = load_stack(project.write_stack(TWO + """\
  - name: Third
    connectorType: Partner
    senderDomains: [third.example.com]
"""))
    emulator_tenant.faults(token_lifetime=60)
    client = ExoClient(emulator_tenant.config, ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret),
                       retry=RetryPolicy(sleep=lambda _s: None, max_retries=2))
    plan = compute_plan(stack, take_snapshot(client))
    progress = _TokenOutageAfterFirstStep(emulator_tenant)
    report = apply_plan(plan, stack, client, progress=progress, sleep=lambda _s: None, parallelism=1)
    assert [s.change.name for s in report.done] == ["First"]
    assert report.failed is not None and report.failed[0].name == "Second"
    assert isinstance(report.failed[1], TokenEndpointUnavailable)
    assert "wait" in str(report.failed[1])
    assert [c.name for c in report.not_done] == ["Third"]


def test_a_name_with_sharp_s_is_not_the_connector_named_with_ss(tmp_path: Path, emulator_tenant: Any) -> None:
    """Exchange compares names OrdinalIgnoreCase: 'Straße' and 'STRASSE' are two connectors (casefold merged them)."""
    Tenant(emulator_tenant).admin_client().new("InboundConnector", {
        "Name": "STRASSE", "ConnectorType": "Partner", "SenderDomains": ["ss.example.com"]})
    project = Project(tmp_path, Tenant(emulator_tenant))
    project.write_stack("""\
inboundConnectors:
  - name: Straße
    connectorType: Partner
    senderDomains: [sharp-s.example.com]
""")
    plan = project.plan_json()
    assert plan["summary"].get("create") == 1, plan["summary"]
    project.apply()
    names = sorted(c["Name"] for c in Tenant(emulator_tenant).admin_client().list("InboundConnector"))
    assert names == ["STRASSE", "Straße"]


def test_a_cidr_smart_host_is_accepted_and_round_trips(tmp_path: Path, emulator_tenant: Any) -> None:
    project = Project(tmp_path, Tenant(emulator_tenant))
    project.write_stack("""\
outboundConnectors:
  - name: To relay range
    connectorType: Partner
    useMxRecord: false
    smartHosts: [203.0.113.0/28]
    recipientDomains: [partner.example.net]
""")
    project.apply()
    assert project.plan_json()["summary"].get("update", 0) == 0


def test_clearing_a_list_sends_null(tmp_path: Path, emulator_tenant: Any) -> None:
    project = Project(tmp_path, Tenant(emulator_tenant))
    body = """\
inboundConnectors:
  - name: Partner
    connectorType: Partner
    senderDomains: [partner.example.com]
    senderIpAddresses: {ips}
"""
    project.write_stack(body.format(ips="[203.0.113.10]"))
    project.apply()
    emulator_tenant.clear_requests()
    project.write_stack(body.format(ips="[]"))
    project.apply()
    sets = [e for e in emulator_tenant.requests() if e["cmdlet"] == "Set-InboundConnector"]
    assert sets and sets[0]["parameters"]["SenderIPAddresses"] is None
