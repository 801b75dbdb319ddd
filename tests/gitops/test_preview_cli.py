"""`mailflow plan --format markdown`, end to end: the preview step of the pull-request workflow against the
emulated tenant, with the committed dev stack.

Matrix: a first plan (creates and a risky accepted-domain change: banner naming the risky parameters that the
spec tables flag); after `apply`, a quiet "no changes" comment; and a change made in the tenant outside the
stack shows up in the Drift section when the plan is given the merged stack as `--baseline`; and what
`mailflow export` writes validates against the generated JSON Schema.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from o365_mailflow.cli import main
from o365_mailflow.render.markdown import marker
from o365_mailflow.specs import SPECS

from mailflow_testing import stack_tenant

ROOT = Path(__file__).resolve().parents[2]

# `mailflow apply` asks click for stdout through a helper click 8.2 deprecates (reconciler's cli/reconcile.py,
# reported to its owner); not what these tests are about.


@pytest.fixture
def project(tmp_path, monkeypatch, emulator_tenant):
    """A scratch project whose stacks/dev.yaml is the committed dev stack pointed at a fresh emulated tenant,
    with the tenant's app credentials in AZURE_* variables, as the workflow provides them."""
    doc = yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text(encoding="utf-8"))
    doc["tenant"] = stack_tenant(emulator_tenant.config)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name, value in emulator_tenant.env.items():
        monkeypatch.setenv(name, value)
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def mailflow(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def markdown_plan(*extra: str) -> str:
    mailflow("plan", "--stack", "dev", "--format", "markdown", "--out", "plan.md", *extra)
    return Path("plan.md").read_text(encoding="utf-8")


def test_the_first_preview_names_the_stack_and_warns_about_the_risky_fields_the_specs_flag(project):
    text = markdown_plan()
    lines = text.splitlines()
    assert lines[0] == marker("dev")
    assert "`dev`" in lines[1]  # the title names the stack...
    tenant = yaml.safe_load(Path("stacks/dev.yaml").read_text(encoding="utf-8"))["tenant"]["initialDomain"]
    assert f"`{tenant}`" in lines[1]  # ...and the tenant
    banner = "\n".join(line for line in lines if line.startswith(">"))
    assert "[!CAUTION]" in banner
    outbound_risky = {f.param for f in SPECS["OutboundConnector"].fields if f.risky}
    assert "`SmartHosts`" in banner and "SmartHosts" in outbound_risky
    assert "`DomainType`" in banner  # contoso.com goes from Authoritative to InternalRelay
    assert "| `DomainType` ⚠️ | `domainType` | `Authoritative` | `InternalRelay` |" in text
    assert len(text) <= 65000


def test_after_apply_the_preview_says_there_are_no_changes_and_stays_quiet(project):
    mailflow("apply", "--stack", "dev", "--auto-approve")
    text = markdown_plan()
    assert "**No changes.**" in text and "[!CAUTION]" not in text
    assert "#### Changes" not in text


def test_a_change_made_outside_the_stack_is_reported_as_drift(project):
    merged = project / "merged-dev.yaml"
    shutil.copy(project / "stacks" / "dev.yaml", merged)
    mailflow("apply", "--stack", "dev", "--auto-approve")

    # Someone edits the tenant directly: here, by applying a different stack file to the same tenant.
    doc = yaml.safe_load((project / "stacks" / "dev.yaml").read_text(encoding="utf-8"))
    doc["outboundConnectors"][0]["smartHosts"] = ["mx9.example.net"]
    (project / "stacks" / "elsewhere.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    mailflow("apply", "--stack", "elsewhere", "--auto-approve")

    text = markdown_plan("--baseline", str(merged))
    drift = text.split("#### Drift", 1)[1].split("<details>", 1)[0]
    assert "`SmartHosts` ⚠️ | `mx9.example.net` | `mail.contoso.com` |" in drift
    assert "[!CAUTION]" in text


def test_a_stack_written_by_export_validates_against_the_generated_schema(project):
    mailflow("apply", "--stack", "dev", "--auto-approve")
    mailflow("export", "--stack", "dev", "--out", "exported.yaml")
    exported = yaml.safe_load(Path("exported.yaml").read_text(encoding="utf-8"))
    assert exported["outboundConnectors"]  # the export really holds the applied objects
    schema = json.loads((ROOT / "docs" / "stack.schema.json").read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(exported)]
    assert errors == []


def test_apply_with_the_reviewed_plan_applies_it_and_refuses_a_plan_that_changed_since(project):
    # The mailflow CLI path's rule (docs/gitops.md): the PR reviews `plan --format json`, apply checks it.
    mailflow("plan", "--stack", "dev", "--format", "json", "--out", "reviewed.json")
    doc = yaml.safe_load((project / "stacks" / "dev.yaml").read_text(encoding="utf-8"))
    doc["outboundConnectors"][0]["smartHosts"] = ["mx9.example.net"]  # a commit after the review
    (project / "stacks" / "dev.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    refused = CliRunner().invoke(main, ["apply", "--stack", "dev", "--auto-approve", "--reviewed", "reviewed.json"])
    assert refused.exit_code == 1
    assert "planned now but never reviewed: create OutboundConnector" in refused.output
    assert "Nothing was changed" in refused.output
    creates = [c["name"] for c in json.loads(Path("reviewed.json").read_text())["changes"] if c["action"] == "create"]
    mailflow("plan", "--stack", "dev", "--format", "json", "--out", "now.json")
    assert creates and creates == [c["name"] for c in json.loads(Path("now.json").read_text())["changes"]
                                   if c["action"] == "create"]  # the tenant is untouched

    mailflow("plan", "--stack", "dev", "--format", "json", "--out", "reviewed.json")
    mailflow("apply", "--stack", "dev", "--auto-approve", "--reviewed", "reviewed.json")
    assert "**No changes.**" in markdown_plan()
