"""The real Pulumi CLI against the emulated tenant: ``pulumi preview``, ``up``, a no-change preview, ``destroy``.

Skipped where no ``pulumi`` binary is on PATH (the build machines cannot install it); the engine's side is then
covered by test_engine_protocol.py, which speaks the same gRPC protocol to the same provider host.
The project is copied to a temporary directory with a local file backend and a passphrase secrets provider,
and its virtualenv pointed at this interpreter's, so nothing touches a user's Pulumi account or state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .host import ROOT, provider_config

PULUMI = shutil.which("pulumi")
pytestmark = [
    pytest.mark.skipif(PULUMI is None, reason="no `pulumi` binary on PATH: the Pulumi CLI is not installed here "
                       "(the engine protocol is tested by test_engine_protocol.py instead)"),
    pytest.mark.slow,
]

STACK = """\
tenant:
  emulator: true
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
inboundConnectors:
  - name: Relay from office printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "__main__.py", project / "__main__.py")
    venv = Path(sys.executable).resolve().parents[1]
    (project / "Pulumi.yaml").write_text(
        "name: o365-mailflow\nruntime:\n  name: python\n  options:\n"
        f"    toolchain: pip\n    virtualenv: {venv}\n", encoding="utf-8")
    (project / "stacks" / "cli.yaml").write_text(STACK, encoding="utf-8")
    return project


def _run(project: Path, env: dict[str, str], *args: str, input_text: str | None = None) -> str:
    result = subprocess.run([PULUMI or "pulumi", *args, "--non-interactive"], cwd=project, env=env,
                            input=input_text, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"pulumi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_pulumi_preview_up_and_destroy_against_the_emulated_tenant(tmp_path: Path, emulator_tenant: Any) -> None:
    project = _project(tmp_path)
    env = dict(os.environ)
    env.update({
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "tests-only",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
    })
    (tmp_path / "state").mkdir()
    _run(project, env, "stack", "init", "cli")
    config = provider_config(emulator_tenant)
    for key, value in config.items():
        secret = ["--secret"] if key == "clientSecret" else []
        _run(project, env, "config", "set", *secret, f"o365-mailflow:{key}", "--", value)

    preview = _run(project, env, "preview", "--diff")
    assert "Relay from office printers" in preview
    assert [e for e in emulator_tenant.requests() if not e["cmdlet"].startswith("Get-")] == []

    _run(project, env, "up", "--yes", "--skip-preview")
    made = emulator_tenant.invoke("Get-InboundConnector", {"Identity": "Relay from office printers"})
    assert made.status_code == 200 and made.json()["value"][0]["SenderIPAddresses"] == ["203.0.113.10"]
    state = (tmp_path / "state").rglob("*.json")
    assert not any(config["clientSecret"] in p.read_text(encoding="utf-8", errors="ignore") for p in state)

    _run(project, env, "preview", "--expect-no-changes")

    _run(project, env, "destroy", "--yes", "--skip-preview")
    gone = emulator_tenant.invoke("Get-InboundConnector", {"Identity": "Relay from office printers"})
    assert gone.status_code == 404 or not gone.json().get("value")
    domain = emulator_tenant.invoke("Get-AcceptedDomain", {"Identity": "contoso.com"}).json()["value"][0]
    assert domain["DomainType"] == "Authoritative"  # restored, never removed
