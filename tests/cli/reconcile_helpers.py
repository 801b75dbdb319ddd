"""Helpers for the reconciler's end-to-end tests: a project directory with its own stack files, pointed at a
fresh emulated tenant, and the ``mailflow`` CLI run in-process through click's runner.

The tenant comes from the shared ``emulator_tenant`` fixture (``tests/conftest.py``); the emulator's request
log and fault knobs are read through its HTTP control endpoints (``/_emulator/requests``, ``/_emulator/faults``),
which is what a test can rely on whatever the fixture object offers besides.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner, Result

from o365_mailflow.cli import main
from o365_mailflow.tenant import TenantConfig

WRITE_VERBS = ("New-", "Set-", "Remove-")


@dataclass
class Tenant:
    """A fresh emulated tenant: how to reach it, the app's credentials, and the emulator's control endpoints."""

    config: TenantConfig
    client_id: str
    client_secret: str
    base_url: str
    ca_path: str
    domains: tuple[str, ...]

    def _control(self, method: str, path: str, **kw: Any) -> requests.Response:
        response = requests.request(method, f"{self.base_url}{path}", verify=self.ca_path, timeout=30, **kw)
        response.raise_for_status()
        return response

    def requests(self) -> list[dict[str, Any]]:
        """The admin API calls this tenant received: ``{cmdlet, parameters, status, ...}``, oldest first."""
        return list(self._control("GET", "/_emulator/requests", params={"tenant": self.config.tenant_id}).json()["value"])

    def clear_requests(self) -> None:
        self._control("DELETE", "/_emulator/requests", params={"tenant": self.config.tenant_id})

    def faults(self, **knobs: Any) -> None:
        self._control("POST", "/_emulator/faults", json={"tenant": self.config.tenant_id, **knobs})

    def clear_faults(self) -> None:
        self._control("DELETE", "/_emulator/faults", params={"tenant": self.config.tenant_id})

    @property
    def env(self) -> dict[str, str]:
        return {"AZURE_CLIENT_ID": self.client_id, "AZURE_CLIENT_SECRET": self.client_secret}

    def admin_client(self) -> Any:
        """An admin API client of its own, for changes made "out of band" (as an admin in PowerShell would)."""
        from o365_mailflow.tenant import open_client

        return open_client(self.config, env=self.env)

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if str(r.get("cmdlet") or "").startswith(WRITE_VERBS)]


def tenant_from_fixture(value: Any) -> Tenant:
    """Adapt the shared fixture's object (a TenantConfig plus credentials) to :class:`Tenant`."""
    config: TenantConfig = value.config
    base = (config.endpoint or "").rstrip("/")
    client_id = getattr(value, "client_id", None) or value.credential.client_id
    secret = getattr(value, "client_secret", None) or getattr(value.credential, "secret", None)
    domains = tuple(getattr(value, "verified_domains", None) or getattr(value, "domains", None) or ())
    return Tenant(config, client_id, secret, base, str(config.ca_file), domains)


@dataclass
class Project:
    """A project directory (``stacks/`` and local state) whose stacks point at one emulated tenant."""

    root: Path
    tenant: Tenant
    runner: CliRunner = field(default_factory=CliRunner)

    def tenant_yaml(self) -> str:
        c = self.tenant.config
        return textwrap.dedent(f"""\
            tenant:
              id: {c.tenant_id}
              initialDomain: {c.initial_domain}
              endpoint: {c.endpoint}
              authority: {c.authority or c.endpoint}
              caFile: {c.ca_file}
            """)

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

    def plan_json(self, *args: str) -> dict[str, Any]:
        result = self.run("plan", "--stack", "test", "--format", "json", *args)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))


