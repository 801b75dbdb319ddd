"""The conformance matrix through the `mailflow` CLI: every field of every spec, generated from SPECS.

Matrix (per (type, field), what the emulator's request log must show):
- create: a New-* carrying the declared New-* fields, and a follow-up Set-* carrying exactly the declared
  SET_ONLY ones (accepted domains: Set-* only); then a plan changes nothing else than the case's fields, and
  those from the declared values (the no-op re-plan);
- update of the field to a second value: the plan's one update names exactly the changed fields, and apply is one
  Set-* with exactly their parameters and values (a connector's name: a rename with renamedFrom, same object);
  then the plan is empty again. CREATE_ONLY: the plan refuses (plan.create-only). READ_ONLY: not declarable;
- remove under prune: true: one Remove-* (connectors), or a Set-* putting back the values found (accepted domains);
- export round-trip: a tenant holding a non-default value of every field exports to a stack that plans no change.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from o365_mailflow.cli import main
from o365_mailflow.specs import SPECS, UNSET, Mode, to_parameters

from conformance_matrix import case_for, field_params, norm, rich_variants
from conformance_stories import Story, cli_story, reset, stack_body, writes
from reconcile_helpers import Project, Tenant

CASES = field_params()
IDS = [f"{t}.{f}" for t, f in CASES]


def _settable(mode: Mode) -> bool:
    return mode in (Mode.CREATE_AND_SET, Mode.SET_ONLY)


@pytest.fixture
def project(tmp_path: Path, module_tenant: Any) -> Project:
    reset(module_tenant)
    return Project(tmp_path, Tenant(module_tenant))


def _no_changes(plan: dict[str, Any]) -> bool:
    return plan["hasChanges"] is False and all(c["action"] == "no-op" for c in plan["changes"])


@pytest.mark.parametrize(("type_name", "field_name"), CASES, ids=IDS)
def test_each_field_is_created_left_alone_updated_alone_and_removed(
    type_name: str, field_name: str, module_tenant: Any, tmp_path: Path
) -> None:
    case = case_for(type_name, field_name)
    spec, fld = case.spec, case.field
    if fld.mode is Mode.READ_ONLY and fld.name != spec.identity_field:  # none today: see the mode variants
        reset(module_tenant)
        _refuses_read_only_declaration(Project(tmp_path, Tenant(module_tenant)), case)
        return
    if fld.mode is Mode.CREATE_ONLY:  # none today: see the mode variants
        reset(module_tenant)
        _refuses_create_only_change(Project(tmp_path, Tenant(module_tenant)), case)
        return
    story = cli_story(case, module_tenant, tmp_path)
    _created_as_declared(case.spec, case.before, story)
    assert _no_changes(story.replan), story.replan
    if fld.name == spec.identity_field and not spec.renamable:
        # Another accepted domain is another object: nothing is renamed, the identity is never sent.
        assert all("DomainName" not in params for _, params in story.update), story.update
    else:
        _updated_alone(case, story)
    _removed(case, story)


def _created_as_declared(spec: Any, declared: dict[str, Any], story: Story) -> None:
    cmdlets = [c for c, _ in story.create]
    if spec.creatable:
        assert cmdlets[0] == f"New-{spec.noun}", story.create
        new_params = set(story.create[0][1])
        # A declared null where the service default is null is what New-* does without it: not sent (reconcile.py).
        expected_new = {spec.field(n).param for n in declared
                        if spec.field(n).mode in (Mode.CREATE_AND_SET, Mode.CREATE_ONLY)
                        and not (declared[n] is None and spec.field(n).default is None)}
        assert new_params == expected_new
        set_only = {spec.field(n).param for n in declared if spec.field(n).mode is Mode.SET_ONLY}
        followups = [(cmdlet, set(params)) for cmdlet, params in story.create[1:]]
        assert followups == ([(f"Set-{spec.noun}", set_only)] if set_only else []), story.create
    else:
        assert set(cmdlets) <= {f"Set-{spec.noun}"}, story.create
    read_only = {f.param for f in spec.fields if f.mode is Mode.READ_ONLY}
    assert not any(read_only & set(params) for _, params in story.create), story.create


def _updated_alone(case: Any, story: Story) -> None:
    spec = case.spec
    updates = [c for c in story.update_plan["changes"] if c["action"] != "no-op"]
    assert [(c["action"], c["type"]) for c in updates] == [("update", spec.type_name)], updates
    assert {c["field"]: c["before"] for c in updates[0]["changes"]} == {
        n: norm(spec.field(n), case.before[n]) if n in case.before else spec.field(n).default for n in case.changed}
    expected = {spec.field(n).param: spec.field(n).kind.to_param(norm(spec.field(n), case.after[n]))
                for n in case.changed}
    assert story.update == [(f"Set-{spec.noun}", expected)]


def _removed(case: Any, story: Story) -> None:
    spec = case.spec
    if spec.deletable:
        assert [c for c, _ in story.remove] == [f"Remove-{spec.noun}"]
        assert story.left is None
        return
    # An accepted domain is never removed: each field the stack left at another value than the one found first
    # gets that value back, in one Set-* carrying exactly those fields.
    assert story.found is not None and story.left is not None
    found = story.found
    restore = {n for n, raw in case.after.items()
               if n != spec.identity_field and found.get(n) != norm(spec.field(n), raw)}
    params = {spec.field(n).param for n in restore}
    assert [(c, set(p)) for c, p in story.remove] == ([(f"Set-{spec.noun}", params)] if restore else [])
    assert {n: story.left[n] for n in restore} == {n: found[n] for n in restore}


# A field's mode is a service fact, not only our choice: a SET_ONLY field is one New-* does not take (else the
# follow-up Set-* would be a wasted write, and a mode flipped by mistake would go unnoticed by the stories
# above, which follow the table). The emulated cmdlets, written from the service contract, are the judge.
SET_ONLY_ON_CREATABLE = [(s.type_name, f.name) for s in SPECS.values() if s.creatable
                         for f in s.fields if f.mode is Mode.SET_ONLY]


@pytest.mark.parametrize(("type_name", "field_name"), SET_ONLY_ON_CREATABLE,
                         ids=[f"{t}.{f}" for t, f in SET_ONLY_ON_CREATABLE])
def test_new_refuses_each_set_only_field(
    type_name: str, field_name: str, module_tenant: Any
) -> None:
    reset(module_tenant)
    case = case_for(type_name, field_name)
    spec = case.spec
    values = {n: norm(spec.field(n), v) for n, v in case.after.items()}
    params = to_parameters(spec, values, create=True)
    refused = module_tenant.invoke(f"New-{spec.noun}", {**params, case.field.param: case.field.kind.to_param(values[field_name])})
    assert refused.status_code == 400, refused.text
    taken = module_tenant.invoke(f"New-{spec.noun}", params)
    assert taken.status_code == 200, taken.text


# ------------------------------------------------------------------------------------------- mode variants
# No field of today's tables is CREATE_ONLY or (apart from an accepted domain's name) READ_ONLY, so the modes'
# CLI behaviour is checked by giving one settable field of each spec that mode, in process.

def _with_mode(monkeypatch: pytest.MonkeyPatch, type_name: str, field_name: str, mode: Mode) -> Any:
    spec = SPECS[type_name]
    fields = tuple(dataclasses.replace(f, mode=mode) if f.name == field_name else f for f in spec.fields)
    changed = dataclasses.replace(spec, fields=fields)
    monkeypatch.setitem(SPECS, type_name, changed)
    return changed


def _first_settable(type_name: str) -> str:
    spec = SPECS[type_name]
    return next(f.name for f in spec.fields if f.name != spec.identity_field and _settable(f.mode))


@pytest.mark.parametrize("type_name", [t for t, s in SPECS.items() if s.creatable])
def test_a_create_only_change_is_refused_by_the_plan(
    type_name: str, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _first_settable(type_name)
    case = dataclasses.replace(case_for(type_name, name),
                               spec=_with_mode(monkeypatch, type_name, name, Mode.CREATE_ONLY))
    _refuses_create_only_change(project, case)


def _refuses_create_only_change(project: Project, case: Any) -> None:
    spec, name = case.spec, case.field.name
    project.write_stack(stack_body(spec, [case.before]))
    project.apply()
    project.tenant.clear_requests()
    project.write_stack(stack_body(spec, [case.after]))
    result = project.run("plan", "--stack", "test", "--format", "json")
    assert result.exit_code == 1
    # The refusal names the field where the stack declares it (the text output carries no diagnostic codes).
    assert f"{spec.stack_key}[0].{name}:" in result.output and "created" in result.output
    assert writes(project.tenant.fixture) == []


@pytest.mark.parametrize("type_name", list(SPECS))
def test_a_read_only_field_cannot_be_declared(type_name: str, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _first_settable(type_name)
    case = case_for(type_name, name)
    _with_mode(monkeypatch, type_name, name, Mode.READ_ONLY)
    _refuses_read_only_declaration(project, case)


def _refuses_read_only_declaration(project: Project, case: Any) -> None:
    name = case.field.name
    path = project.write_stack(stack_body(case.spec, [case.before]))
    result = project.runner.invoke(main, ["validate", "--format", "json", str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    (verdict,) = json.loads(result.stdout)["files"]
    assert [(d["code"], d["path"]) for d in verdict["diagnostics"] if d["severity"] == "error"] == [
        ("field.read-only", f"{case.spec.stack_key}[0].{name}")]


# --------------------------------------------------------------------------------------------- export round trip


def test_export_of_every_field_at_a_non_default_value_plans_no_change(project: Project) -> None:
    declared = {spec.type_name: rich_variants(spec) for spec in SPECS.values()}
    body = "".join(stack_body(SPECS[t], objs) for t, objs in declared.items())
    project.write_stack(body)
    project.apply()
    path = project.write_stack("")
    result = project.run("export", "--stack", "test", "--force")
    assert result.exit_code == 0, result.output
    exported = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _no_changes(project.plan_json())
    for type_name, objects in declared.items():
        spec = SPECS[type_name]
        by_id = {str(o[spec.identity_field]).casefold(): o for o in exported.get(spec.stack_key) or []}
        for obj in objects:
            out = by_id[str(norm(spec.field(spec.identity_field), obj[spec.identity_field])).casefold()]
            for name, raw in obj.items():
                fld = spec.field(name)
                if name in out:
                    assert norm(fld, out[name]) == norm(fld, raw), (type_name, name)
                else:
                    assert _not_exported(spec, fld), f"export dropped {type_name}.{name}: {raw!r}"
    # Every writable field was at a non-default value somewhere (else the round trip proved less than it says).
    for type_name, objects in declared.items():
        spec = SPECS[type_name]
        shown = {n for o in objects for n in o if spec.field(n).default is UNSET or norm(spec.field(n), o[n]) != spec.field(n).default}
        assert shown >= {f.name for f in spec.fields if f.mode is not Mode.READ_ONLY}, type_name


def _not_exported(spec: Any, fld: Any) -> bool:
    """The export's documented exclusions (o365_mailflow/export.py docstring): validation state, and the
    undocumented accepted-domain fields with no known default."""
    return not fld.exported or (not spec.creatable and fld.default is UNSET)
