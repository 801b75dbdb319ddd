"""``mailflow doctor`` against the emulator, each failure injected, each reported with its fix.

Matrix:
- a healthy tenant: every check passes, exit 0; ``--format json`` has the same checks;
- no Exchange.ManageAsApp: "app permission" fails naming the permission; exit 1;
- no directory role (403 declared gzip): "directory role" and each Get-* fail naming the Exchange Administrator role;
- a regional redirect: followed, reported with the tenant's host;
- initialDomain that is not the tenant's: "anchor" fails and names the right value;
- a server clock an hour ahead: "clock" fails and says to synchronise;
- the token endpoint down: "sign-in" fails with the typed, admin-facing error;
- a certificate that expires within 30 days: "credential expiry" warns (tests/client/test_first_contact.py);
- ``--record DIR``: the answers are saved without the tenant id, its domains, IPs or addresses.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from reconcile_helpers import Project, Tenant

from mailflow_testing import CASession
from o365_mailflow.client import ExoClient, RetryPolicy
from o365_mailflow.credentials import ClientSecret
from o365_mailflow.doctor import run_doctor

STACK = "inboundConnectors: []\n"


def _statuses(report: Any) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.fix) for c in report.checks}


def _doctor(tenant: Any, *, config: Any = None, credential: Any = None, session: Any = None) -> Any:
    def factory(observer: Any) -> ExoClient:
        return ExoClient(config or tenant.config, credential or ClientSecret(tenant.client_id, tenant.client_secret),
                         session=session, observer=observer, retry=RetryPolicy(sleep=lambda _s: None, max_retries=1))

    report, _ = run_doctor(config or tenant.config, factory)
    return report


def test_a_healthy_tenant_passes_every_check_and_exits_0(tmp_path: Path, emulator_tenant: Any) -> None:
    project = Project(tmp_path, Tenant(emulator_tenant))
    project.write_stack(STACK)
    result = project.run("doctor", "--stack", "test")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout and "All checks passed." in result.stdout
    data = json.loads(project.run("doctor", "--stack", "test", "--format", "json").stdout)
    assert data["ok"] is True
    names = {c["name"] for c in data["checks"]}
    assert {"sign-in", "app permission", "directory role", "Get-AcceptedDomain", "Get-InboundConnector",
            "Get-OutboundConnector", "regional host", "anchor", "clock", "credential expiry", "cloud"} <= names


def test_a_missing_app_permission_fails_with_the_permission_to_grant(
    tmp_path: Path, emulator_tenant_factory: Callable[..., Any]
) -> None:
    project = Project(tmp_path, Tenant(emulator_tenant_factory(apps=[{"client_secret": True, "app_roles": []}])))
    project.write_stack(STACK)
    result = project.run("doctor", "--stack", "test", "--format", "json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["app permission"]["status"] == "fail"
    assert "Exchange.ManageAsApp" in checks["app permission"]["fix"]
    assert "Grant admin consent" in checks["app permission"]["fix"]


def test_a_missing_directory_role_fails_with_the_role_to_assign(roleless_project: Project) -> None:
    roleless_project.write_stack(STACK)
    result = roleless_project.run("doctor", "--stack", "test")
    assert result.exit_code == 1
    assert "FAIL  directory role" in result.stdout
    assert "FAIL  Get-InboundConnector: HTTP 403" in result.stdout
    assert "Exchange Administrator > Add assignments" in result.stdout


def test_a_regional_redirect_is_followed_and_reported(emulator: Any, emulator_tenant: Any) -> None:
    from tests_client_portmap import LoopbackPortMap

    emulator_tenant.faults(redirect_to="localhost:446")
    session = CASession(emulator_tenant.ca_path)
    session.mount("https://", LoopbackPortMap(urlsplit(emulator.base_url).port or 0))
    report = _doctor(emulator_tenant, session=session)
    assert report.ok, report.to_dict()
    region = next(c for c in report.checks if c.name == "regional host")
    assert region.status == "info" and "https://localhost" in region.detail


def test_a_wrong_initial_domain_fails_the_anchor_check_with_the_right_value(emulator_tenant: Any) -> None:
    config = replace(emulator_tenant.config, initial_domain="someone-else.onmicrosoft.com")
    status, fix = _statuses(_doctor(emulator_tenant, config=config))["anchor"]
    assert status == "fail" and fix == f"set tenant.initialDomain to {emulator_tenant.initial_domain}"


def test_a_skewed_clock_fails_with_the_fix(emulator_tenant: Any) -> None:
    emulator_tenant.faults(clock_skew=-3600)
    status, fix = _statuses(_doctor(emulator_tenant))["clock"]
    assert status == "fail" and "NTP" in fix


def test_a_token_endpoint_outage_fails_sign_in_with_an_admin_message(emulator_tenant: Any) -> None:
    emulator_tenant.faults(token_error_next=100, error_status=503)
    report = _doctor(emulator_tenant)
    sign_in = next(c for c in report.checks if c.name == "sign-in")
    assert sign_in.status == "fail" and "token endpoint" in sign_in.detail and "wait" in sign_in.detail
    assert not report.ok


def test_record_saves_sanitised_answers(tmp_path: Path, emulator_tenant: Any) -> None:
    admin = Tenant(emulator_tenant).admin_client()
    admin.new("InboundConnector", {"Name": "Relay", "ConnectorType": "OnPremises", "SenderDomains": ["*"],
                                   "SenderIPAddresses": ["203.0.113.10"]})
    project = Project(tmp_path, Tenant(emulator_tenant))
    project.write_stack(STACK)
    out = tmp_path / "fixture"
    result = project.run("doctor", "--stack", "test", "--record", str(out))
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["01-Get-AcceptedDomain.json", "02-Get-InboundConnector.json", "03-Get-OutboundConnector.json",
                     "doctor.json"]
    text = "".join(p.read_text() for p in out.iterdir())
    for secret in (emulator_tenant.tenant_id, emulator_tenant.initial_domain, "contoso.com", "203.0.113.10",
                   emulator_tenant.client_secret):
        assert secret not in text
    inbound = json.loads((out / "02-Get-InboundConnector.json").read_text())
    assert inbound["body"]["value"][0]["Name"] == "Relay"
    assert inbound["body"]["value"][0]["SenderIPAddresses"][0].startswith("192.0.2.")
    kept = project.run("doctor", "--stack", "test", "--record", str(tmp_path / "full"), "--include-addresses")
    assert kept.exit_code == 0
    assert "203.0.113.10" in (tmp_path / "full" / "02-Get-InboundConnector.json").read_text()
