"""``mailflow route --live``: routing with what the (emulated) tenant holds, not what the stack declares.

Matrix: objects created in the tenant out of band (through the admin API, as an admin in PowerShell would) and
absent from the stack drive the outbound and inbound answers; the stack file only says which tenant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from o365_mailflow.cli import main

from mailflow_testing import stack_tenant_yaml


def _ok(response: Any) -> None:
    assert response.status_code == 200, response.text


def _stack(tmp_path: Path, tenant: Any) -> Path:
    path = tmp_path / "stacks" / "live.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(stack_tenant_yaml(tenant.config), encoding="utf-8")
    return path


def test_live_routing_uses_the_tenants_connectors_and_domains(tmp_path: Path, emulator_tenant: Any) -> None:
    t = emulator_tenant
    _ok(t.invoke("Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "InternalRelay"}))
    _ok(t.invoke("New-OutboundConnector", {"Name": "To on-premises", "ConnectorType": "OnPremises",
                                           "RecipientDomains": ["contoso.com"], "UseMXRecord": False,
                                           "SmartHosts": ["mail.contoso.com"]}))
    _ok(t.invoke("New-InboundConnector", {"Name": "Printers", "ConnectorType": "OnPremises", "SenderDomains": ["*"],
                                          "SenderIPAddresses": ["203.0.113.10"]}))
    stack = _stack(tmp_path, t)
    env = {**t.env, "MAILFLOW_STATE_DIR": str(tmp_path / "state")}
    runner = CliRunner()

    result = runner.invoke(main, ["route", "--stack", str(stack), "user@contoso.com", "--live", "--format", "json"],
                           env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == "live"
    assert (data["decision"]["path"], data["decision"]["connector"]) == ("internal-relay", "To on-premises")

    result = runner.invoke(main, ["route", "--stack", str(stack), "--from-ip", "203.0.113.10", "--sender",
                                  "scanner@fabrikam.com", "--live", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)["decision"]
    assert (decision["connector"], decision["relayAllowed"]) == ("Printers", True)

    # Without --live the stack declares nothing: no connector, MX delivery.
    result = runner.invoke(main, ["route", "--stack", str(stack), "user@contoso.com", "--format", "json"], env=env)
    assert json.loads(result.stdout)["decision"]["path"] == "mx"


def test_an_unreachable_tenant_is_an_error_not_an_empty_tenant(tmp_path: Path, emulator_tenant: Any) -> None:
    stack = _stack(tmp_path, emulator_tenant)
    env = {"AZURE_CLIENT_ID": emulator_tenant.client_id, "AZURE_CLIENT_SECRET": "wrong-secret",
           "MAILFLOW_STATE_DIR": str(tmp_path / "state")}
    result = CliRunner().invoke(main, ["route", "--stack", str(stack), "user@contoso.com", "--live"], env=env)
    assert result.exit_code == 1
    assert "could not read the tenant" in result.stderr
    assert "wrong-secret" not in result.output + result.stderr
