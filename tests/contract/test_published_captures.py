"""Admin API answers that production users have published, run through our client's reading of them.

Matrix (fixtures and their sources: fixtures/README.md):
- the Get-InboundConnector, Get-OutboundConnector and Get-AcceptedDomain records normalise without error, and
  ``export`` -> ``plan`` over them shows no change (create, update, drift or delete) for any object;
- the exported stack declares what the captures hold (the ``smtp:*;1`` sender domain, the pinned certificate
  name, the smart host, the TLS settings), so the no-change result is not an empty stack agreeing with itself;
- the same records served by the emulated tenant (created there with the captured settings through the admin
  API) give the same normalised fields, so the emulator and the real service agree on what we read;
- the captured error envelopes give our error parser the exception type and the useful message, never the
  envelope's generic "Invalid Operation".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from o365_mailflow.client import ExoClient, parse_error, strip_annotations
from o365_mailflow.credentials import ClientSecret
from o365_mailflow.export import export_stack
from o365_mailflow.plan import Action, compute_plan
from o365_mailflow.snapshot import Snapshot, live_object, take_snapshot
from o365_mailflow.specs import SPECS, split_create
from o365_mailflow.stack import load_stack_text

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURES = {
    "InboundConnector": "get-inboundconnector.graph2otel.json",
    "OutboundConnector": "get-outboundconnector.graph2otel.json",
    "AcceptedDomain": "get-accepteddomain.graph2otel.json",
}
TENANT = {"id": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f", "initialDomain": "example.onmicrosoft.com"}


def _records(type_name: str) -> list[dict[str, Any]]:
    doc = json.loads((FIXTURES / CAPTURES[type_name]).read_text(encoding="utf-8"))
    assert doc["cmdlet"] == f"Get-{SPECS[type_name].noun}" and doc["source"]["repository"]
    return [strip_annotations(r) for r in doc["value"]]


def _snapshot() -> Snapshot:
    return Snapshot(objects={t: tuple(live_object(SPECS[t], r) for r in _records(t)) for t in CAPTURES})


def _export_then_plan(snapshot: Snapshot) -> tuple[str, Any]:
    text = export_stack(snapshot, TENANT)
    stack = load_stack_text(text, file="captures.yaml", name="captures")
    return text, compute_plan(stack, snapshot)


def test_export_then_plan_over_the_published_captures_changes_nothing() -> None:
    text, plan = _export_then_plan(_snapshot())
    assert not plan.has_changes, [c.to_dict() for c in plan.changes if c.action is not Action.NOOP]
    assert not plan.drift
    assert {c.action for c in plan.changes} == {Action.NOOP}
    assert len(plan.changes) == sum(len(_records(t)) for t in CAPTURES)


def test_the_exported_stack_declares_what_the_captures_hold() -> None:
    text, _plan = _export_then_plan(_snapshot())
    doc = yaml.safe_load(text)
    inbound = {c["name"]: c for c in doc["inboundConnectors"]}
    assert set(inbound) == {"connectortest", "myorgemail"}
    assert inbound["connectortest"]["senderDomains"] == ["*"]  # "smtp:*;1" on the wire
    assert inbound["connectortest"]["tlsSenderCertificateName"] == "*.rob-knight.com"
    assert inbound["myorgemail"]["senderIpAddresses"] == ["81.187.237.31"]
    (outbound,) = doc["outboundConnectors"]
    assert outbound["smartHosts"] == ["smtp-relay.gmail.com"] and outbound["useMxRecord"] is False
    assert outbound["tlsSettings"] == "CertificateValidation" and outbound["isTransportRuleScoped"] is True
    assert {d["domainName"] for d in doc["acceptedDomains"]} == {
        "example.onmicrosoft.com", "example.com", "mail.example.com"}


@pytest.mark.parametrize("type_name", ["InboundConnector", "OutboundConnector"])
def test_the_emulated_tenant_reads_back_like_the_captures(type_name: str, emulator_tenant: Any) -> None:
    """Create each captured connector in the emulated tenant from its exported declaration (the parameters apply
    would send), list it with our client, and compare every declared field with the capture's."""
    spec = SPECS[type_name]
    text, _plan = _export_then_plan(_snapshot())
    declared = yaml.safe_load(text)[spec.stack_key]
    client = ExoClient(emulator_tenant.config, ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret))
    for values in declared:
        new_params, followup = split_create(spec, values)
        client.new(spec.noun, new_params)
        if followup:
            client.set(spec.noun, values["name"], followup)
    served = {o.name: o for o in take_snapshot(client, [spec]).of_type(type_name)}
    captured = {o.name: o for o in _snapshot().of_type(type_name)}
    assert set(served) == set(captured)
    for values in declared:
        name = values["name"]
        assert {k: served[name].fields[k] for k in values} == {k: captured[name].fields[k] for k in values}


@pytest.mark.parametrize(
    ("fixture", "exception_type", "message_start"),
    [
        ("error-unknown-parameter.graph2otel.json",
         "Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException",
         "Parameter set cannot be resolved"),
        ("error-invalid-enum.graph2otel.json",
         "Microsoft.Exchange.AdminApi.CommandInvocation.ParameterTransformationException",
         "Cannot process argument transformation on parameter 'QuarantineTypes'"),
    ],
    ids=["unknown-parameter", "invalid-enum"],
)
def test_captured_error_envelopes_give_the_exception_type_and_the_useful_message(
    fixture: str, exception_type: str, message_start: str
) -> None:
    body = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))
    _error_id, type_name, message = parse_error(body)
    assert type_name == exception_type
    assert message.startswith(message_start) and message != "Invalid Operation"
