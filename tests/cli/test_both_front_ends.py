"""The same scenario through `mailflow apply` and through the Pulumi providers makes the same writes (issue #15).

Both front ends write through one reconcile core (o365_mailflow/reconcile.py). Each test runs one scenario twice,
against two fresh emulated tenants: once with the CLI (stack files, ``mailflow apply``), once with the providers
through the engine's protocol (``python -m pulumi.dynamic`` over gRPC, tests/providers/host.py), and compares the
writes in each tenant's request log (Guids replaced by the connector's name, order within a step ignored: apply
runs writes in parallel, the engine in its own order).

Matrix, step by step, each compared:
- create (an outbound connector with a Set-only field: New-* plus its follow-up Set-*), and an accepted domain
  taken over (Set-* only);
- minimal update (exactly the changed parameter) and rename (Set-* -Name on the same Guid);
- adoption of an existing connector with adopt: true (Set-* of the differing field only);
- delete (Remove-*) and restore (an accepted domain leaving gets back the values found, never Remove-*);
- unconverged read-back: a new connector the tenant does not show within the verification budget is still done
  (New-* once, nothing else written, no failure) through both;
- a force-new field (the one list): the CLI refuses to change it, Pulumi replaces, the core never sends it;
- faults: a create (or its follow-up Set-*) committed and then its answer dropped: no duplicate through either
  front end (503/504 and dropped connections at random rates are tests/cli/test_apply_parallel_and_lag.py's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from providers.host import CONTOSO, DOMAIN, INBOUND, OUTBOUND, RELAY, TO_ONPREM, Pulumi, Res, provider_config
from reconcile_helpers import WRITE_VERBS, Project, Tenant

from o365_mailflow.reconcile import BUDGET_ENV

OUT = {**TO_ONPREM, "validationRecipients": ["postmaster@contoso.com"]}  # Set-only: New-* then Set-*
LEGACY = {"name": "Legacy relay", "connectorType": "OnPremises", "senderDomains": ["*"],
          "senderIpAddresses": ["203.0.113.50"]}

Write = tuple[str, str]  # (cmdlet, parameters as sorted repr, Guids replaced by names)


class Run:
    """One front end against its own tenant: ``step(...)`` applies a declaration and returns the writes."""

    def __init__(self, fixture: Any) -> None:
        self.fixture = fixture
        self.names: dict[str, str] = {}

    def remember_names(self) -> None:
        for noun in ("InboundConnector", "OutboundConnector"):
            response = self.fixture.invoke(f"Get-{noun}", {})
            if response.status_code != 200:
                continue  # a fault meant for the front end; the names are known from an earlier read
            for record in response.json().get("value") or []:
                self.names[str(record["Guid"])] = str(record["Name"])

    def writes(self) -> list[Write]:
        self.remember_names()
        out = []
        for entry in self.fixture.requests():
            if not str(entry.get("cmdlet") or "").startswith(WRITE_VERBS) or entry.get("status") != 200:
                continue
            params = {k: self.names.get(str(v), v) if k == "Identity" else v
                      for k, v in (entry.get("parameters") or {}).items()}
            out.append((str(entry["cmdlet"]), repr(sorted(params.items()))))
        return sorted(out)

    def connectors(self, noun: str) -> list[str]:
        return sorted(str(r["Name"]) for r in self.fixture.invoke(f"Get-{noun}", {}).json().get("value") or [])


class CliRun(Run):
    def __init__(self, fixture: Any, root: Path) -> None:
        super().__init__(fixture)
        self.project = Project(root, Tenant(fixture))

    def step(self, domains: list[dict[str, Any]], inbound: list[dict[str, Any]], outbound: list[dict[str, Any]],
             *, prune: bool = False) -> tuple[list[Write], str]:
        self.remember_names()
        self.fixture.clear_requests()
        body = {"acceptedDomains": domains, "inboundConnectors": inbound, "outboundConnectors": outbound}
        self.project.write_stack(yaml.safe_dump(body, sort_keys=False), prune=prune)
        stdout = self.project.apply().stdout
        return self.writes(), stdout


class PulumiRun(Run):
    """The engine's view: resources by logical name; a resource left out of a step is destroyed."""

    def __init__(self, fixture: Any) -> None:
        super().__init__(fixture)
        self.driver = Pulumi(provider_config(fixture))
        self.resources: dict[str, Res] = {}

    def step(self, declared: dict[str, tuple[str, dict[str, Any]]]) -> list[Write]:
        self.remember_names()
        self.fixture.clear_requests()
        for key in [k for k in self.resources if k not in declared]:
            self.driver.destroy(self.resources.pop(key))
        for key, (type_name, program) in declared.items():
            res = self.resources.setdefault(key, Res(type_name, key, program))
            res.program = program
            self.driver.up(res)
        return self.writes()


@pytest.fixture
def runs(emulator_tenant_factory: Callable[..., Any], tmp_path: Path) -> Any:
    cli, pulumi = CliRun(emulator_tenant_factory(), tmp_path), PulumiRun(emulator_tenant_factory())
    try:
        yield cli, pulumi
    finally:
        pulumi.driver.close()


def _legacy_in(tenant: Any) -> None:
    made = tenant.invoke("New-InboundConnector", {"Name": "Legacy relay", "ConnectorType": "OnPremises",
                                                  "SenderDomains": ["smtp:*;1"], "SenderIPAddresses": ["203.0.113.50"],
                                                  "Comment": "made in the admin center"})
    assert made.status_code == 200, made.text


def test_create_update_rename_adopt_delete_and_restore_make_the_same_writes(runs: Any) -> None:
    cli, pulumi = runs
    renamed = {**OUT, "name": "To on-premises (renamed)"}
    relay2 = {**RELAY, "comment": "printers only"}
    adopted = {**LEGACY, "comment": "managed as code"}

    # create: the outbound connector's Set-only field is a follow-up Set-*; the domain is taken over.
    cli_writes, output = cli.step([CONTOSO], [RELAY], [OUT])
    pulumi_writes = pulumi.step({"contoso": (DOMAIN, CONTOSO), "relay": (INBOUND, RELAY), "out": (OUTBOUND, OUT)})
    assert cli_writes == pulumi_writes, output
    assert [c for c, _ in cli_writes] == sorted(["New-InboundConnector", "New-OutboundConnector",
                                                 "Set-OutboundConnector", "Set-AcceptedDomain"])

    # minimal update and rename (the same Guid: Set-* -Name)
    cli_writes, _ = cli.step([CONTOSO], [relay2], [{**renamed, "renamedFrom": OUT["name"]}])
    pulumi_writes = pulumi.step({"contoso": (DOMAIN, CONTOSO), "relay": (INBOUND, relay2),
                                 "out": (OUTBOUND, renamed)})
    assert cli_writes == pulumi_writes == sorted([
        ("Set-InboundConnector", repr(sorted({"Identity": RELAY["name"], "Comment": "printers only"}.items()))),
        ("Set-OutboundConnector", repr(sorted({"Identity": renamed["name"], "Name": renamed["name"]}.items()))),
    ])

    # adoption: only the differing declared field is written
    _legacy_in(cli.fixture)
    _legacy_in(pulumi.fixture)
    cli_writes, _ = cli.step([CONTOSO], [relay2, {**adopted, "adopt": True}], [renamed])
    pulumi_writes = pulumi.step({"contoso": (DOMAIN, CONTOSO), "relay": (INBOUND, relay2),
                                 "out": (OUTBOUND, renamed), "legacy": (INBOUND, {**adopted, "adopt": True})})
    assert cli_writes == pulumi_writes == [
        ("Set-InboundConnector", repr(sorted({"Identity": "Legacy relay", "Comment": "managed as code"}.items())))]

    # delete and restore: the relay goes, the domain gets back what it held before (never Remove-AcceptedDomain)
    cli_writes, _ = cli.step([], [adopted], [renamed], prune=True)
    pulumi_writes = pulumi.step({"out": (OUTBOUND, renamed), "legacy": (INBOUND, {**adopted, "adopt": True})})
    assert cli_writes == pulumi_writes == sorted([
        ("Remove-InboundConnector", repr(sorted({"Identity": RELAY["name"], "Confirm": False}.items()))),
        ("Set-AcceptedDomain", repr(sorted({"Identity": "contoso.com", "DomainType": "Authoritative"}.items()))),
    ])
    for run in (cli, pulumi):
        assert run.connectors("InboundConnector") == ["Legacy relay"]


def test_a_create_the_tenant_does_not_show_within_the_budget_is_done_through_both(
    runs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, pulumi = runs
    monkeypatch.setenv(BUDGET_ENV, "2")  # the verification's budget, in seconds, for both front ends
    for run in (cli, pulumi):
        run.fixture.faults(read_lag_reads=100_000)
    late = {"name": "Late partner", "connectorType": "Partner", "senderDomains": ["late.example.com"]}

    cli_writes, output = cli.step([], [late], [])
    pulumi.driver.restart()  # a new host process, which reads the budget from the environment
    pulumi_writes = pulumi.step({"late": (INBOUND, late)})
    assert cli_writes == pulumi_writes and [c for c, _ in cli_writes] == ["New-InboundConnector"]
    assert "Accepted but not yet visible (1)" in output
    res = pulumi.resources["late"]
    assert res.id and res.outputs["guid"] == res.id  # the Guid New-* answered with
    assert res.outputs["senderDomains"] == ["late.example.com"]  # the values written, trusted


@pytest.mark.parametrize("knobs", [
    {"drop_after_next": 1, "cmdlets": ["New-InboundConnector", "New-OutboundConnector"]},
    {"drop_after_next": 2, "cmdlets": ["New-OutboundConnector", "Set-OutboundConnector"]},
], ids=["commit-then-drop", "commit-then-drop-twice-with-a-follow-up-set"])
def test_faults_during_creates_leave_no_duplicate_through_either_front_end(runs: Any, knobs: dict[str, Any]) -> None:
    cli, pulumi = runs
    partners = [{"name": f"Partner {i}", "connectorType": "Partner", "senderDomains": [f"p{i}.example.com"]}
                for i in range(3)]
    cli.project.write_stack(yaml.safe_dump({"inboundConnectors": partners, "outboundConnectors": [OUT]}))
    cli.fixture.faults(**knobs)
    cli.project.apply()
    pulumi.fixture.faults(**knobs)
    pulumi.driver.up(*[Res(INBOUND, f"p{i}", p) for i, p in enumerate(partners)], Res(OUTBOUND, "out", OUT))
    for run in (cli, pulumi):
        run.fixture.clear_faults()
        assert run.connectors("InboundConnector") == ["Partner 0", "Partner 1", "Partner 2"]
        assert run.connectors("OutboundConnector") == [OUT["name"]]


def test_a_force_new_field_is_refused_by_the_cli_and_a_replacement_in_pulumi_from_the_one_field_list(
    runs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No field of today's tables forces replacement, so the inbound connector's comment is given that mode. The
    providers run in-process here (a monkeypatched table does not reach a host process)."""
    import dataclasses

    from pulumi.dynamic import Config

    from o365_mailflow import reconcile
    from o365_mailflow.plan import FieldChange
    from o365_mailflow.providers import InboundConnectorProvider
    from o365_mailflow.providers.config import register_settings, settings_from_config
    from o365_mailflow.specs import SPECS, Mode

    cli, pulumi = runs
    cli.step([], [RELAY], [])
    spec = SPECS["InboundConnector"]
    fields = tuple(dataclasses.replace(f, mode=Mode.CREATE_ONLY) if f.name == "comment" else f for f in spec.fields)
    monkeypatch.setitem(SPECS, "InboundConnector", dataclasses.replace(spec, fields=fields))

    # The CLI: the plan refuses the change, pointing at the field; nothing is written.
    cli.fixture.clear_requests()
    cli.project.write_stack(yaml.safe_dump({"inboundConnectors": [{**RELAY, "comment": "new"}]}))
    refused = cli.project.run("apply", "--stack", "test", "--auto-approve")
    assert refused.exit_code == 1 and "inboundConnectors[0].comment: " in refused.stderr
    assert cli.writes() == []

    # Pulumi: the same change is a replacement (delete first), never an in-place update.
    monkeypatch.setenv("PULUMI_PROJECT", "force-new-test")
    raw = {f"o365-mailflow:{k}": v for k, v in provider_config(pulumi.fixture).items()}
    register_settings(settings_from_config(Config(raw, "force-new-test")))
    provider = InboundConnectorProvider()
    created = provider.create(provider.check({}, dict(RELAY)).inputs)
    diff = provider.diff(created.id, created.outs, provider.check({}, {**RELAY, "comment": "new"}).inputs)
    assert diff.changes and diff.replaces == ["comment"] and diff.delete_before_replace is True

    # The core itself never sends such a field to Set-* (whatever front end asks).
    pulumi.fixture.clear_requests()
    change = FieldChange("comment", "Comment", RELAY["comment"], "new")
    with pytest.raises(reconcile.ReplacementRequired):
        reconcile.update(Tenant(pulumi.fixture).admin_client(), SPECS["InboundConnector"], str(created.id), [change])
    assert pulumi.writes() == []
