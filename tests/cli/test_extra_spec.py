"""A resource type added at run time is one spec plus its emulator cmdlets, and nothing else.

The test registers a small RemoteDomain-like type (``specs.register``: three fields, one set-only with a ``true``
default, written after the outbound connectors) and its New-/Get-/Set-/Remove- cmdlets through the emulator's
own extension point (``register_object_type``), then runs it through every front end:

- ``mailflow validate``: the stack key is known, its fields are checked, the summary counts the type;
- ``plan`` / ``apply``: created after the outbound connector it is declared to wait for, its set-only field in a
  follow-up Set-*; the next plan is empty;
- ``export``: the object comes back with its non-default ``false`` set-only value; a plan of the export is empty;
- ``prune``: removal goes in the reverse order (the new type before the outbound connector);
- the Pulumi program (under ``pulumi.runtime.set_mocks``): one resource with its own type token, depending on the
  outbound connector, and its ids as a stack output; the type's provider creates, updates and deletes it.

If any of those places kept its own list of types, the new type would be missing there and this test fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from pulumi.dynamic import Config
from reconcile_helpers import Project

from o365_mailflow.cli import main
from o365_mailflow.emulator.cmdlets import ObjectType, register_object_type
from o365_mailflow.emulator.params import Param
from o365_mailflow.specs import UNSET, After, Bool, Domain, Field, Mode, ResourceSpec, Text, register

from providers.host import provider_config
from providers.mocks import TOKEN, run_program

REMOTE_DOMAIN = ResourceSpec(
    type_name="RemoteDomain",
    stack_key="remoteDomains",
    noun="RemoteDomain",
    identity_field="name",
    label="remote domain",
    fields=(
        Field("name", "Name", Text(64, min_length=1, what="a remote domain name"), UNSET, Mode.CREATE_AND_SET,
              False, True, "Unique name."),
        Field("domainName", "DomainName", Domain(wildcard=True), UNSET, Mode.CREATE_AND_SET, True, True,
              "The remote domain."),
        Field("autoReplyEnabled", "AutoReplyEnabled", Bool(), True, Mode.SET_ONLY, False, False,
              "Whether automatic replies reach the domain. Set-only."),
    ),
    after=(After("OutboundConnector"),),
)

EMULATED = ObjectType("RemoteDomain", (Param("Name", "str"), Param("DomainName", "str"),
                                       Param("AutoReplyEnabled", "bool", nullable=False)),
                      {"AutoReplyEnabled": True})

STACK = """\
outboundConnectors:
  - name: To Fabrikam
    recipientDomains: [fabrikam.com]
remoteDomains:
  - name: Fabrikam
    domainName: Fabrikam.com
    autoReplyEnabled: false
"""


@pytest.fixture
def remote_domains() -> Iterator[None]:
    remove_spec = register(REMOTE_DOMAIN)
    remove_cmdlets = register_object_type(EMULATED)
    try:
        yield
    finally:
        remove_cmdlets()
        remove_spec()


def _validate(project: Project, path: Path, *args: str) -> Any:
    return project.runner.invoke(main, ["validate", str(path), *args], catch_exceptions=False)


def _cmdlets(project: Project) -> list[str]:
    return [str(w["cmdlet"]) for w in project.tenant.writes()]


def test_a_registered_type_goes_through_validate_plan_apply_export_and_prune(
    remote_domains: None, project: Project
) -> None:
    path = project.write_stack(STACK)
    checked = _validate(project, path)
    assert checked.exit_code == 0, checked.output
    assert "1 RemoteDomain" in checked.output

    bad = project.write_stack(STACK.replace("domainName: Fabrikam.com", "domainNme: fabrikam.com"), name="bad")
    refused = _validate(project, bad, "--format", "json")
    assert refused.exit_code == 1
    codes = {(d["code"], d["path"]) for d in yaml.safe_load(refused.stdout)["files"][0]["diagnostics"]}
    assert ("field.unknown", "remoteDomains[0].domainNme") in codes
    assert ("field.required", "remoteDomains[0].domainName") in codes

    plan = project.plan_json()
    creates = [(c["type"], c["name"], c["action"]) for c in plan["changes"]]
    assert ("RemoteDomain", "Fabrikam", "create") in creates

    project.tenant.clear_requests()
    project.apply()
    writes = project.tenant.writes()
    assert _cmdlets(project) == ["New-OutboundConnector", "New-RemoteDomain", "Set-RemoteDomain"]
    assert writes[1]["parameters"]["DomainName"] == "fabrikam.com"
    assert writes[2]["parameters"]["AutoReplyEnabled"] is False
    assert [c for c in project.plan_json()["changes"] if c["action"] != "no-op"] == []

    exported = project.run("export", "--stack", "test", "--out", "-")
    assert exported.exit_code == 0, exported.output
    doc = yaml.safe_load(exported.stdout)
    assert doc["remoteDomains"] == [{"name": "Fabrikam", "domainName": "fabrikam.com", "autoReplyEnabled": False}]
    path.write_text(exported.stdout, encoding="utf-8")
    assert [c for c in project.plan_json()["changes"] if c["action"] != "no-op"] == []

    project.write_stack("", prune=True)
    project.tenant.clear_requests()
    project.apply()
    assert _cmdlets(project) == ["Remove-RemoteDomain", "Remove-OutboundConnector"]


def test_the_pulumi_program_declares_a_registered_type_after_what_it_waits_for(
    remote_domains: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "extra.yaml").write_text("tenant:\n  emulator: true\n" + STACK, encoding="utf-8")
    from o365_mailflow.providers.program import run

    registered, outputs = run_program(monkeypatch, "extra", lambda: run(tmp_path))

    fabrikam = registered[(TOKEN + "RemoteDomain", "fabrikam")]
    assert fabrikam["inputs"]["domainName"] == "fabrikam.com" and fabrikam["inputs"]["autoReplyEnabled"] is False
    assert fabrikam["deps"] == {"to fabrikam"}
    assert outputs["remoteDomainIds"] == {"Fabrikam": "fabrikam-id"}


def test_the_provider_of_a_registered_type_creates_updates_and_deletes_it(
    remote_domains: None, monkeypatch: pytest.MonkeyPatch, emulator_tenant: Any
) -> None:
    from o365_mailflow.providers.config import register_settings, settings_from_config
    from o365_mailflow.providers.resources import provider_class, resource_class

    assert resource_class(REMOTE_DOMAIN)._provider_class is provider_class(REMOTE_DOMAIN)
    monkeypatch.setenv("PULUMI_PROJECT", "extra-spec-test")
    raw = {f"o365-mailflow:{k}": v for k, v in provider_config(emulator_tenant).items()}
    register_settings(settings_from_config(Config(raw, "extra-spec-test")))
    provider = provider_class(REMOTE_DOMAIN)()
    declared = {"name": "Fabrikam", "domainName": "fabrikam.com", "autoReplyEnabled": False}

    created = provider.create(provider.check({}, dict(declared)).inputs)
    assert created.outs["live"]["autoReplyEnabled"] is False
    same = provider.diff(created.id, created.outs, provider.check({}, dict(declared)).inputs)
    assert not same.changes

    changed = provider.check({}, {**declared, "autoReplyEnabled": True}).inputs
    assert provider.diff(created.id, created.outs, changed).changes
    updated = provider.update(created.id, created.outs, changed)
    assert updated.outs["live"]["autoReplyEnabled"] is True

    provider.delete(created.id, updated.outs)
    removed = [r["parameters"].get("Identity") for r in emulator_tenant.requests()
               if r["cmdlet"] == "Remove-RemoteDomain"]
    assert removed == [created.id]
