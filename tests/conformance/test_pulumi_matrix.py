"""The conformance matrix through the Pulumi providers, driven over gRPC like the engine drives them.

Matrix (per (type, field) of every spec, the same cases as test_cli_matrix.py, one host process per module):
- Check accepts the object; Create makes exactly the writes the CLI's apply made for it; a Diff right after is
  empty;
- Diff to the field's second value: a change, replacing exactly the spec's force-new fields among the changed
  ones (CREATE_ONLY; an accepted domain's name, another object) and nothing else; Update makes exactly the writes
  the CLI made for the same change; a Diff after it is empty;
- Delete makes exactly the CLI's prune writes (Remove-*, or the accepted domain's values put back);
- a READ_ONLY field (other than an accepted domain's name) is refused by Check, and a changed CREATE_ONLY field
  is a replacement deleting first (each spec's first settable field given that mode, in process).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator

import pytest
from pulumi.dynamic import Config

from o365_mailflow.providers.config import register_settings, settings_from_config
from o365_mailflow.specs import SPECS, Mode

from conformance_matrix import case_for, field_params
from conformance_stories import cli_story, reset, writes
from providers.host import PROVIDERS, Pulumi, provider_config  # tests/providers' engine driver, reused

def _param(type_name: str, field_name: str) -> Any:
    case = case_for(type_name, field_name)
    return pytest.param(type_name, field_name, id=case.id)


CASES = [_param(t, f) for t, f in field_params()]


@pytest.fixture(scope="module")
def engine(module_tenant: Any) -> Iterator[Pulumi]:
    driver = Pulumi(provider_config(module_tenant))
    try:
        yield driver
    finally:
        driver.close()


@pytest.mark.parametrize(("type_name", "field_name"), CASES)
def test_each_field_is_created_updated_and_deleted_by_the_provider_with_the_cli_writes(
    type_name: str, field_name: str, engine: Pulumi, module_tenant: Any, tmp_path: Path
) -> None:
    case = case_for(type_name, field_name)
    spec, fld = case.spec, case.field
    if fld.mode is Mode.READ_ONLY and fld.name != spec.identity_field:  # none today: see the mode variants
        _, failures = engine.host().check(type_name, f"cf-{case.id}", case.before)
        assert [name for name, _ in failures] == [field_name]
        return
    # A CREATE_ONLY change is refused by the CLI (test_cli_matrix): its create is still compared.
    cli = cli_story(case, module_tenant, tmp_path) if fld.mode is not Mode.CREATE_ONLY else None
    reset(module_tenant)
    host = engine.host()
    name = f"cf-{case.id}"

    before, failures = host.check(type_name, name, case.before)
    assert failures == []
    id_, outs = host.create(type_name, name, before)
    created = writes(module_tenant)  # compared at the end, so that a known difference hides nothing else
    assert host.diff(type_name, name, id_, outs, before).none

    after, failures = host.check(type_name, name, case.after, before)
    assert failures == []
    diff = host.diff(type_name, name, id_, outs, after)
    force_new = sorted(n for n in case.changed
                       if spec.field(n).mode is Mode.CREATE_ONLY or (n == spec.identity_field and not spec.renamable))
    assert diff.some and diff.replaces == force_new
    if not force_new:
        outs = host.update(type_name, name, id_, outs, after)
        assert cli is not None
        assert writes(module_tenant) == cli.update
        assert host.diff(type_name, name, id_, outs, after).none
    # else the engine deletes and creates again: the CLI refuses (CREATE_ONLY) or sees another object.

    host.delete(type_name, name, id_, outs)
    removed = writes(module_tenant)
    if cli is not None:
        assert removed == cli.remove
        assert created == cli.create


# ------------------------------------------------------------------------------------------- mode variants
# No field of today's tables is CREATE_ONLY or (apart from an accepted domain's name) READ_ONLY. Each spec's first
# settable field is given that mode, and the provider runs in process (a host process would not see the change).


def _first_settable(type_name: str) -> str:
    spec = SPECS[type_name]
    return next(f.name for f in spec.fields
                if f.name != spec.identity_field and f.mode in (Mode.CREATE_AND_SET, Mode.SET_ONLY))


def _in_process(monkeypatch: pytest.MonkeyPatch, tenant: Any, type_name: str, field_name: str, mode: Mode) -> Any:
    spec = SPECS[type_name]
    fields = tuple(dataclasses.replace(f, mode=mode) if f.name == field_name else f for f in spec.fields)
    monkeypatch.setitem(SPECS, type_name, dataclasses.replace(spec, fields=fields))
    monkeypatch.setenv("PULUMI_PROJECT", "conformance")
    register_settings(settings_from_config(Config(
        {f"o365-mailflow:{k}": v for k, v in provider_config(tenant).items()}, "conformance")))
    return PROVIDERS[type_name]()


@pytest.mark.parametrize("type_name", [t for t, s in SPECS.items() if s.creatable])
def test_a_changed_create_only_field_is_a_replacement_deleting_first(
    type_name: str, monkeypatch: pytest.MonkeyPatch, module_tenant: Any
) -> None:
    field_name = _first_settable(type_name)
    case = case_for(type_name, field_name)
    reset(module_tenant)
    provider = _in_process(monkeypatch, module_tenant, type_name, field_name, Mode.CREATE_ONLY)
    created = provider.create(provider.check({}, dict(case.before)).inputs)
    same = provider.diff(created.id, created.outs, provider.check({}, dict(case.before)).inputs)
    assert not same.changes and same.replaces == []
    changed = provider.diff(created.id, created.outs, provider.check({}, dict(case.after)).inputs)
    assert changed.changes and changed.replaces == [field_name] and changed.delete_before_replace is True
    provider.delete(created.id, created.outs)


@pytest.mark.parametrize("type_name", list(SPECS))
def test_check_refuses_a_read_only_field(type_name: str, monkeypatch: pytest.MonkeyPatch, module_tenant: Any) -> None:
    field_name = _first_settable(type_name)
    case = case_for(type_name, field_name)
    provider = _in_process(monkeypatch, module_tenant, type_name, field_name, Mode.READ_ONLY)
    result = provider.check({}, dict(case.before))
    assert [f.property for f in result.failures] == [field_name]
