"""The providers through the engine's protocol: ``python -m pulumi.dynamic`` over gRPC, against an emulated tenant.

Each Pulumi command (preview, up, refresh, destroy) is one host process, as with the real engine, configured
with the stack's ``o365-mailflow:*`` config (the client secret as a Pulumi secret). The engine's state is kept
here by hand: Check's inputs, Create/Update's outputs and the id, fed back as the engine does (Diff and Update
receive the old *outputs*; Read receives outputs and inputs; Delete receives outputs).

Matrix:
- preview of a new stack (Check only, nothing sent to the tenant);
- up: create; no-op diff (no write, one list per type); out-of-band change seen by Diff without refresh;
  minimal update of the drifted parameter (from the emulator's request log); each field's declared change and a
  rename are tests/conformance's;
- diff with values not known yet (a change, no crash); another accepted-domain name is a replacement;
- refresh through Read (outputs and inputs from the tenant); a connector deleted outside Pulumi is recreated;
- adoption: identical existing connector taken over; different one refused with how-to-adopt; adopt: true;
- tenant and credential from the AZURE_* environment (CI) with only the endpoint in the stack config;
- cost: a concurrent preview of many resources lists each type once;
- Pulumi.dev.yaml + stacks/dev.yaml: the host starts the local emulated tenant itself (no credential);
- delete (and again when already gone); accepted domain adopted on create and restored on delete;
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from .host import (
    CONTOSO,
    DOMAIN,
    INBOUND,
    OUTBOUND,
    RELAY,
    TO_ONPREM,
    Pulumi,
    Res,
    exists,
    list_calls,
    live,
    provider_config,
    writes,
)

# -------------------------------------------------------------------------------------------------------------


def test_a_preview_of_a_new_stack_checks_every_object_and_sends_nothing_to_the_tenant(
    pulumi: Pulumi, emulator_tenant: Any
) -> None:
    resources = [Res(DOMAIN, "contoso.com", CONTOSO), Res(INBOUND, "relay", RELAY), Res(OUTBOUND, "out", TO_ONPREM)]
    emulator_tenant.clear_requests()
    results = [pulumi.preview(r) for r in resources]
    assert results == [None, None, None]  # new resources: the engine only checks them
    assert emulator_tenant.requests() == []


def test_create_no_op_out_of_band_change_minimal_update_and_rename(pulumi: Pulumi, emulator_tenant: Any) -> None:
    domain, relay, out = Res(DOMAIN, "contoso.com", CONTOSO), Res(INBOUND, "relay", RELAY), Res(OUTBOUND, "out", TO_ONPREM)
    assert pulumi.up(domain, relay, out) == ["create", "create", "create"]
    guid = relay.id
    assert guid and relay.outputs["guid"] == guid and relay.outputs["adopted"] is False
    record = live(emulator_tenant, "InboundConnector", guid)
    assert record["Name"] == RELAY["name"] and record["ConnectorType"] == "OnPremises"
    assert relay.outputs["senderIpAddresses"] == ["198.51.100.0/28", "203.0.113.10"]
    assert relay.outputs["live"]["enabled"] is True  # every field, normalised
    assert out.outputs["tlsDomain"] == "mail.contoso.com"

    # No-op: a fresh preview diffs all three against the tenant with one list call per type and no write.
    emulator_tenant.clear_requests()
    host = pulumi.host(fresh=True)
    for res in (domain, relay, out):
        assert host.diff(res.type_name, res.name, res.id, res.outputs, pulumi.check(host, res)).none
    # State written by another provider version (another pickled __provider) is not a change either.
    old_state = {**relay.outputs, "__provider": "b2xkZXIgcHJvdmlkZXIgY29kZQ=="}
    assert host.diff(INBOUND, relay.name, relay.id, old_state, pulumi.check(host, relay)).none
    assert writes(emulator_tenant) == []
    assert list_calls(emulator_tenant) == {"Get-AcceptedDomain": 1, "Get-InboundConnector": 1,
                                           "Get-OutboundConnector": 1, "Get-OutboundConnector -IncludeTestModeConnectors": 1}

    # Out-of-band change in the "admin center": Diff sees it without a refresh (state still says the old value).
    response = emulator_tenant.invoke("Set-InboundConnector", {"Identity": guid, "Comment": "changed by hand"})
    assert response.status_code == 200, response.text
    pulumi.restart()
    diff = pulumi.preview(relay)
    assert diff.some and diff.replaces == []
    assert pulumi.preview(out).none  # only that connector

    # up corrects it with a minimal Set: only the drifted parameter.
    emulator_tenant.clear_requests()
    assert pulumi.up(relay) == ["update"]
    assert [(w["cmdlet"], w["parameters"]) for w in writes(emulator_tenant)] == [
        ("Set-InboundConnector", {"Identity": guid, "Comment": "printers and apps"})]

    # A declared change of each field, and a rename, are the conformance matrix's (tests/conformance).
    assert pulumi.up(domain, relay, out) == ["same", "same", "same"]


def test_refresh_reads_the_tenant_into_outputs_and_the_declared_inputs(pulumi: Pulumi, emulator_tenant: Any) -> None:
    relay = Res(INBOUND, "relay", RELAY)
    pulumi.up(relay)
    emulator_tenant.invoke("Set-InboundConnector", {"Identity": relay.id, "Comment": "by hand", "Enabled": False})
    pulumi.restart()

    pulumi.refresh(relay)

    assert relay.outputs["comment"] == "by hand"
    assert relay.outputs["live"]["enabled"] is False
    # Inputs are the declared fields only, as the tenant has them, so the next preview shows the drift.
    assert relay.inputs["comment"] == "by hand"
    assert "enabled" not in relay.inputs
    assert pulumi.preview(relay).some

    emulator_tenant.invoke("Remove-InboundConnector", {"Identity": relay.id, "Confirm": False})
    pulumi.restart()
    pulumi.refresh(relay)
    assert relay.id is None  # gone: the engine drops it from state


def test_a_connector_deleted_outside_pulumi_is_recreated(pulumi: Pulumi, emulator_tenant: Any) -> None:
    relay = Res(INBOUND, "relay", RELAY)
    pulumi.up(relay)
    emulator_tenant.invoke("Remove-InboundConnector", {"Identity": relay.id, "Confirm": False})
    pulumi.restart()
    diff = pulumi.preview(relay)
    assert diff.some and diff.replaces == ["name"] and diff.delete_before_replace


def test_an_existing_connector_is_taken_over_only_with_adopt_and_by_one_resource_only(
    pulumi: Pulumi, emulator_tenant: Any
) -> None:
    made = emulator_tenant.invoke("New-InboundConnector", {
        "Name": "Legacy relay", "ConnectorType": "OnPremises", "SenderDomains": ["smtp:*;1"],
        "SenderIPAddresses": ["203.0.113.50"], "Comment": "made in the admin center"})
    assert made.status_code == 200, made.text
    guid = made.json()["value"][0]["Guid"]
    declared = {"name": "Legacy relay", "connectorType": "OnPremises", "senderDomains": ["*"],
                "senderIpAddresses": ["203.0.113.50"]}

    # Identical in every declared field, but no adopt: refused all the same (a silent take-over lets two
    # resources or stacks own one connector, and destroying either deletes it); nothing written.
    emulator_tenant.clear_requests()
    same = Res(INBOUND, "legacy", declared)
    with pytest.raises(grpc.RpcError) as info:
        pulumi.up(same)
    assert "already exists" in info.value.details() and "adopt: true" in info.value.details()
    assert writes(emulator_tenant) == []

    # Different and no adopt: the error names the differing field.
    different = Res(INBOUND, "legacy2", {**declared, "name": "legacy RELAY", "comment": "managed by Pulumi"})
    with pytest.raises(grpc.RpcError) as info:
        pulumi.up(different)
    message = info.value.details()
    assert "already exists" in message and "adopt: true" in message and "(comment)" in message
    assert writes(emulator_tenant) == []

    # adopt: true takes it over and sets only the declared difference.
    adopting = Res(INBOUND, "legacy3", {**declared, "comment": "managed by Pulumi", "adopt": True})
    assert pulumi.up(adopting) == ["create"]
    assert adopting.id == guid and adopting.inputs["adopt"] is True and adopting.outputs["adopted"] is True
    assert [(w["cmdlet"], w["parameters"]) for w in writes(emulator_tenant)] == [
        ("Set-InboundConnector", {"Identity": guid, "Comment": "managed by Pulumi"})]

    # A second resource of the same deployment cannot adopt the object the first one manages.
    emulator_tenant.clear_requests()
    second = Res(INBOUND, "legacy4", {**declared, "adopt": True})
    with pytest.raises(grpc.RpcError) as info:
        pulumi.up(second)
    assert "already created or adopted by another resource" in info.value.details()
    assert writes(emulator_tenant) == []


def test_delete_removes_the_connector_and_succeeds_when_it_is_already_gone(pulumi: Pulumi, emulator_tenant: Any) -> None:
    out = Res(OUTBOUND, "out", TO_ONPREM)
    pulumi.up(out)
    assert exists(emulator_tenant, "OutboundConnector", out.id or "")
    pulumi.destroy(out)
    assert not exists(emulator_tenant, "OutboundConnector", out.id or "")
    pulumi.destroy(out)  # already gone: still a success


def test_an_accepted_domain_is_adopted_on_create_and_restored_on_delete(pulumi: Pulumi, emulator_tenant: Any) -> None:
    assert live(emulator_tenant, "AcceptedDomain", "contoso.com")["DomainType"] == "Authoritative"
    domain = Res(DOMAIN, "contoso.com", CONTOSO)
    assert pulumi.up(domain) == ["create"]
    assert domain.id == "contoso.com"
    assert domain.outputs["restoreValues"] == {"domainType": "Authoritative"}
    assert live(emulator_tenant, "AcceptedDomain", "contoso.com")["DomainType"] == "InternalRelay"

    # Declaring one more field later remembers its original value too.
    domain.program = {**CONTOSO, "matchSubDomains": True}
    assert pulumi.up(domain) == ["update"]
    assert domain.outputs["restoreValues"] == {"domainType": "Authoritative", "matchSubDomains": False}
    assert live(emulator_tenant, "AcceptedDomain", "contoso.com")["MatchSubDomains"] is True

    # A field leaving the declaration goes back to the value found, and is no longer remembered.
    domain.program = {"domainName": "contoso.com", "domainType": "InternalRelay"}
    assert pulumi.up(domain) == ["update"]
    assert live(emulator_tenant, "AcceptedDomain", "contoso.com")["MatchSubDomains"] is False
    assert domain.outputs["restoreValues"] == {"domainType": "Authoritative"}
    domain.program = {**CONTOSO, "matchSubDomains": True}
    assert pulumi.up(domain) == ["update"]

    emulator_tenant.clear_requests()
    pulumi.destroy(domain)
    record = live(emulator_tenant, "AcceptedDomain", "contoso.com")
    assert record["DomainType"] == "Authoritative" and record["MatchSubDomains"] is False
    assert [w["cmdlet"] for w in writes(emulator_tenant)] == ["Set-AcceptedDomain"]  # never Remove-


def test_an_accepted_domain_missing_from_the_tenant_is_a_clear_error(pulumi: Pulumi) -> None:
    with pytest.raises(grpc.RpcError) as info:
        pulumi.up(Res(DOMAIN, "example.org", {"domainName": "example.org", "domainType": "InternalRelay"}))
    assert "Exchange Online cannot create accepted domains" in info.value.details()




def test_the_dev_stack_deploys_to_the_local_emulated_tenant_with_the_dev_stack_config(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pulumi.dev.yaml (``emulator: true``, no credential) and stacks/dev.yaml, as ``pulumi up`` on dev runs them:
    the host starts the local emulated tenant itself (in $MAILFLOW_STATE_DIR) with its well-known app."""
    import yaml

    from o365_mailflow.stack import load_stack

    from .host import ROOT

    monkeypatch.setenv("MAILFLOW_STATE_DIR", str(tmp_path))
    # A CI job's credential for a real tenant must not be sent to the emulated one.
    token_file = tmp_path / "github-oidc-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2ln", encoding="utf-8")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-4333-8444-555555555555")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))["config"]
    config = {key.split(":", 1)[1]: str(value) for key, value in raw.items()}
    stack = load_stack(ROOT / "stacks" / "dev.yaml")
    resources = [Res(o.spec.type_name, o.name, dict(o.fields)) for o in stack.objects]

    first = Pulumi(config)
    try:
        assert set(first.up(*resources)) == {"create"}
    finally:
        first.close()  # the emulated tenant lived in that host process; its state stays on disk
    second = Pulumi(config)
    try:
        assert set(second.up(*resources)) == {"same"}
    finally:
        second.close()
    assert (tmp_path / "emulator").is_dir()


def test_a_concurrent_preview_of_many_resources_lists_each_type_once(pulumi: Pulumi, emulator_tenant: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    resources = []
    for i in range(24):
        program = {"name": f"Partner {i:02d}", "connectorType": "Partner", "senderDomains": [f"p{i}.example.com"]}
        made = emulator_tenant.invoke("New-InboundConnector", {
            "Name": program["name"], "ConnectorType": "Partner", "SenderDomains": program["senderDomains"]})
        assert made.status_code == 200, made.text
        resources.append(Res(INBOUND, f"p{i}", program, id=made.json()["value"][0]["Guid"]))
    resources.append(Res(DOMAIN, "contoso.com", {"domainName": "contoso.com", "domainType": "Authoritative"},
                         id="contoso.com"))
    emulator_tenant.clear_requests()
    host = pulumi.host(fresh=True)

    def preview(res: Res) -> bool:
        inputs = pulumi.check(host, res)
        return host.diff(res.type_name, res.name, res.id or "", {"__provider": inputs["__provider"]}, inputs).none

    with ThreadPoolExecutor(max_workers=8) as pool:  # the engine runs steps in parallel; the host has 4 workers
        assert all(pool.map(preview, resources))
    assert list_calls(emulator_tenant) == {"Get-InboundConnector": 1, "Get-AcceptedDomain": 1}
    assert writes(emulator_tenant) == []


def test_tenant_and_credential_can_come_from_the_azure_environment_as_in_ci(emulator_tenant: Any) -> None:
    """CI sets AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET (or a federated token file); the stack
    config then only says where the service is (here the emulator's endpoint and CA)."""
    from .host import Host

    full = provider_config(emulator_tenant)
    config = {k: full[k] for k in ("endpoint", "authority", "scope", "caFile")}
    env = {"AZURE_TENANT_ID": emulator_tenant.tenant_id, "AZURE_CLIENT_ID": emulator_tenant.client_id,
           "AZURE_CLIENT_SECRET": emulator_tenant.client_secret or ""}
    with Host(env=env) as host:
        host.configure(config)
        inputs, failures = host.check(INBOUND, "relay", RELAY)
        assert failures == []
        guid, _ = host.create(INBOUND, "relay", inputs)
    assert live(emulator_tenant, "InboundConnector", guid)["Name"] == RELAY["name"]


def test_diff_with_values_not_known_yet_is_a_change_and_another_domain_name_is_a_replacement(
    pulumi: Pulumi, emulator_tenant: Any
) -> None:
    from .host import UNKNOWN

    relay, domain = Res(INBOUND, "relay", RELAY), Res(DOMAIN, "contoso.com", CONTOSO)
    pulumi.up(relay, domain)
    host = pulumi.host()
    news = {**relay.inputs, "comment": UNKNOWN}  # computed from another resource during preview
    diff = host.diff(INBOUND, relay.name, relay.id or "", relay.outputs, news)
    assert diff.some and diff.replaces == []
    # Another domain is another object: adopt the new one, restore the old one (never a rename).
    news = {**domain.inputs, "domainName": "fabrikam.com"}
    diff = host.diff(DOMAIN, domain.name, domain.id or "", domain.outputs, news)
    assert diff.some and diff.replaces == ["domainName"]
