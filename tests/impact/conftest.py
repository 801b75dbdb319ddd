"""A scratch project on a fresh emulated tenant, driven through the ``mailflow`` CLI as an admin would.

``Project.apply(stack)`` writes stacks/impact.yaml and runs ``mailflow apply --auto-approve``, so the tenant holds
what a stack declares; ``Project.plan(stack, fmt)`` writes the next version and returns ``mailflow plan``'s output.
The stack bodies below are the routing worked example and the relay scenarios of docs/routing.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mailflow_testing import stack_tenant_yaml

from o365_mailflow.cli import main

# Microsoft's worked example (docs/routing.md, "Precedence"): C1 for all accepted domains, C2 for contoso.com,
# C3 for *.contoso.com; plus the relay connectors of the dev stack.
WORKED_EXAMPLE = """\
acceptedDomains:
  - domainName: contoso.com
    domainType: Authoritative
  - domainName: sales.contoso.com
    domainType: Authoritative
  - domainName: fabrikam.com
    domainType: Authoritative
inboundConnectors:
  - name: Printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10, 203.0.113.11, 198.51.100.0/28]
  - name: Exchange
    connectorType: OnPremises
    senderDomains: ["*"]
    requireTls: true
    tlsSenderCertificateName: mail.contoso.com
outboundConnectors:
  - name: C1
    connectorType: OnPremises
    allAcceptedDomains: true
    useMxRecord: false
    smartHosts: [onprem.contoso.com]
  - name: C2
    recipientDomains: [contoso.com]
    useMxRecord: false
    smartHosts: [c2.partner.example]
  - name: C3
    recipientDomains: ["*.contoso.com"]
    useMxRecord: false
    smartHosts: [c3.partner.example]
"""


@dataclass
class Project:
    root: Path
    tenant_section: str

    def write(self, body: str) -> None:
        (self.root / "stacks" / "impact.yaml").write_text(self.tenant_section + body, encoding="utf-8")

    def run(self, *args: str) -> str:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code in (0, 2), result.output
        return result.stdout

    def apply(self, body: str) -> None:
        self.write(body)
        self.run("apply", "--stack", "impact", "--auto-approve")

    def plan(self, body: str, fmt: str = "json") -> Any:
        self.write(body)
        text = self.run("plan", "--stack", "impact", "--format", fmt)
        return json.loads(text) if fmt == "json" else text

    def sentences(self, body: str) -> list[str]:
        return [row["sentence"] for row in self.plan(body)["impact"]["rows"]]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_tenant: Any) -> Project:
    section = stack_tenant_yaml(emulator_tenant.config)
    (tmp_path / "stacks").mkdir()
    monkeypatch.chdir(tmp_path)
    for name, value in emulator_tenant.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_COLOR", "1")
    return Project(tmp_path, section)
