"""A field the service takes on New-* only (``Mode.CREATE_ONLY``) is a replacement in Pulumi, never an update.

No field of today's tables is create-only (exo-cmdlets lists none for connectors), so the test gives the inbound
connector's ``comment`` that mode and runs the provider in-process against the emulated tenant: a preview that
showed an in-place update would fail during ``up``, when Set-* refuses the parameter.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pulumi.dynamic import Config

from o365_mailflow.providers import InboundConnectorProvider
from o365_mailflow.providers.config import register_settings, settings_from_config
from o365_mailflow.specs import SPECS, Mode

from .host import RELAY, provider_config


def test_a_changed_create_only_field_is_a_replacement_deleting_first(
    monkeypatch: pytest.MonkeyPatch, emulator_tenant: Any
) -> None:
    spec = SPECS["InboundConnector"]
    fields = tuple(dataclasses.replace(f, mode=Mode.CREATE_ONLY) if f.name == "comment" else f for f in spec.fields)
    monkeypatch.setitem(SPECS, "InboundConnector", dataclasses.replace(spec, fields=fields))
    monkeypatch.setenv("PULUMI_PROJECT", "create-only-test")
    raw = {f"o365-mailflow:{k}": v for k, v in provider_config(emulator_tenant).items()}
    register_settings(settings_from_config(Config(raw, "create-only-test")))
    provider = InboundConnectorProvider()

    created = provider.create(provider.check({}, dict(RELAY)).inputs)
    same = provider.diff(created.id, created.outs, provider.check({}, dict(RELAY)).inputs)
    assert not same.changes and same.replaces == []

    changed = provider.diff(created.id, created.outs, provider.check({}, {**RELAY, "comment": "new"}).inputs)
    assert changed.changes and changed.replaces == ["comment"] and changed.delete_before_replace is True

    # A change of a field Set-* takes stays an in-place update.
    update = provider.diff(created.id, created.outs, provider.check({}, {**RELAY, "senderIpAddresses": ["203.0.113.77"]}).inputs)
    assert update.changes and update.replaces == []
