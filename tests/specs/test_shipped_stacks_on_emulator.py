"""The shipped stacks are accepted by the (emulated) service, not only by our own validation.

Matrix: for dev.yaml and prod.yaml (their objects, pointed at a fresh emulated tenant through the tenant
section's id / initialDomain / endpoint / authority / caFile):
- ``apply`` succeeds, and a ``plan`` right after shows no change (exit 0 with ``--detailed-exitcode``);
- ``export`` of that tenant writes a stack file that ``validate`` accepts and that plans clean.
This catches a spec table that validates a value the service refuses, or normalises it differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from o365_mailflow.cli import main

from mailflow_testing import stack_tenant

REPO = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, tenant: Any, source: str) -> Path:
    document = yaml.safe_load((REPO / "stacks" / f"{source}.yaml").read_text(encoding="utf-8"))
    document["tenant"] = stack_tenant(tenant.config)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "lab.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("source", ["dev", "prod"], ids=["dev", "prod"])
def test_a_shipped_stack_applies_and_then_plans_clean_and_exports_clean(
    tmp_path: Path, emulator_tenant: Any, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    root = _project(tmp_path, emulator_tenant, source)
    monkeypatch.chdir(root)
    env = {"AZURE_CLIENT_ID": emulator_tenant.client_id, "AZURE_CLIENT_SECRET": emulator_tenant.client_secret}
    runner = CliRunner()

    applied = runner.invoke(main, ["apply", "--stack", "lab", "--auto-approve"], env=env)
    assert applied.exit_code == 0, applied.output
    planned = runner.invoke(main, ["plan", "--stack", "lab", "--detailed-exitcode"], env=env)
    assert planned.exit_code == 0, planned.output

    exported = runner.invoke(main, ["export", "--stack", "lab", "--out", "stacks/exported.yaml"], env=env)
    assert exported.exit_code == 0, exported.output
    validated = runner.invoke(main, ["validate", "stacks/exported.yaml"])
    assert validated.exit_code == 0, validated.output
    replanned = runner.invoke(main, ["plan", "--stack", "exported", "--detailed-exitcode"], env=env)
    assert replanned.exit_code == 0, replanned.output
