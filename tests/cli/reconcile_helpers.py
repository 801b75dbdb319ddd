"""Helpers for the reconciler's end-to-end tests: a project directory with its own stack files, pointed at a
fresh emulated tenant (the shared ``emulator_tenant`` fixture), and the ``mailflow`` CLI run in-process through
click's runner. The emulator's request log (``emulator_tenant.requests()``) is what the tests check.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from o365_mailflow.cli import main

from mailflow_testing import stack_tenant_yaml

WRITE_VERBS = ("New-", "Set-", "Remove-")

# One partner connector: the smallest stack that writes something.
PARTNER_STACK = """\
inboundConnectors:
  - name: From partner
    connectorType: Partner
    senderDomains: [partner.example.com]
    requireTls: true
"""


@dataclass
class Tenant:
    """The shared fixture's tenant, plus what these tests ask of it: the writes it received, an admin client."""

    fixture: Any  # tests/conftest.py EmulatedTenant

    @property
    def config(self) -> Any:
        return self.fixture.config

    @property
    def env(self) -> dict[str, str]:
        return {"AZURE_CLIENT_ID": self.fixture.client_id, "AZURE_CLIENT_SECRET": self.fixture.client_secret}

    def requests(self) -> list[dict[str, Any]]:
        """The admin API calls this tenant received: ``{cmdlet, parameters, status, ...}``, oldest first."""
        return list(self.fixture.requests())

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if str(r.get("cmdlet") or "").startswith(WRITE_VERBS)]

    def clear_requests(self) -> None:
        self.fixture.clear_requests()

    def faults(self, **knobs: Any) -> None:
        self.fixture.faults(**knobs)

    def clear_faults(self) -> None:
        self.fixture.clear_faults()

    def admin_client(self) -> Any:
        """An admin API client of its own, for changes made "out of band" (as an admin in PowerShell would)."""
        from o365_mailflow.connect import open_client

        return open_client(self.config, env=self.env)


@dataclass
class Project:
    """A project directory (``stacks/`` and local state) whose stacks point at one emulated tenant."""

    root: Path
    tenant: Tenant
    runner: CliRunner = field(default_factory=CliRunner)

    def tenant_yaml(self) -> str:
        return stack_tenant_yaml(self.tenant.config)

    def write_stack(self, body: str, name: str = "test", *, prune: bool = False) -> Path:
        path = self.root / "stacks" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.tenant_yaml() + f"prune: {'true' if prune else 'false'}\n" + textwrap.dedent(body),
                        encoding="utf-8")
        return path

    def run(self, *args: str, input: str | None = None) -> Result:  # noqa: A002 - click's name
        env = {**self.tenant.env, "MAILFLOW_STATE_DIR": str(self.root / ".state"), "NO_COLOR": "1"}
        return self.runner.invoke(main, [*args, "--root", str(self.root)], input=input, env=env,
                                  catch_exceptions=False)

    def apply(self, *args: str) -> Result:
        """``mailflow apply --stack test --auto-approve``, which must succeed."""
        result = self.run("apply", "--stack", "test", "--auto-approve", *args)
        assert result.exit_code == 0, result.output
        return result

    def plan_json(self, *args: str) -> dict[str, Any]:
        result = self.run("plan", "--stack", "test", "--format", "json", *args)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))


