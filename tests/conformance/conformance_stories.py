"""One case's life through each front end, recorded as the writes the emulated tenant received.

A story is create -> (re-plan) -> update -> (re-plan) -> remove (delete a connector, restore an accepted
domain). Each phase's writes are read from the emulator's request log, so the two front ends can be compared
request for request: the same change must cost the same writes whichever front end makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from o365_mailflow.specs import RENAMED_FROM, ResourceSpec, normalise_live

from conformance_matrix import Case

WRITE_VERBS = ("New-", "Set-", "Remove-")

Write = tuple[str, dict[str, Any]]  # (cmdlet, parameters without Identity)


# A service fact the field tables cannot hold, as it spans objects (exo-cmdlets §4.2 rule 5):
# RouteAllMessagesViaOnPremises needs an enabled OnPremises inbound connector without AssociatedAcceptedDomains.
# Every case's tenant therefore holds one, made through the admin API outside any stack; writes to it (a prune
# deletes it) are not the case's and are left out of the stories.
BACKGROUND_NAME = "cf background on-premises"
BACKGROUND: dict[str, Any] = {"Name": BACKGROUND_NAME, "ConnectorType": "OnPremises", "SenderDomains": ["*"],
              "SenderIPAddresses": ["203.0.113.200"]}
_BACKGROUND_IDS: set[str] = {BACKGROUND_NAME.casefold()}


def reset(tenant: Any) -> None:
    """The tenant as the seed made it (objects, faults) plus the background, with an empty request log."""
    requests.post(f"{tenant.base_url}/_emulator/reset", json={"tenant": tenant.tenant_id},
                  verify=str(tenant.ca_path), timeout=30).raise_for_status()
    made = tenant.invoke("New-InboundConnector", BACKGROUND)
    assert made.status_code == 200, made.text
    _BACKGROUND_IDS.update(str(v).casefold() for k, v in made.json()["value"][0].items()
                           if k in ("Guid", "Identity", "ExchangeObjectId"))
    tenant.clear_requests()


def writes(tenant: Any) -> list[Write]:
    """The tenant's writes since the log was last cleared (but the background's), oldest first; the log is
    then cleared."""
    out = []
    for entry in tenant.requests():
        params = entry.get("parameters") or {}
        target = str(params.get("Identity", params.get("Name", ""))).casefold()
        if str(entry.get("cmdlet") or "").startswith(WRITE_VERBS) and target not in _BACKGROUND_IDS:
            out.append((str(entry["cmdlet"]), {k: v for k, v in params.items() if k != "Identity"}))
    tenant.clear_requests()
    return out


def live_fields(tenant: Any, spec: ResourceSpec, identity: str) -> dict[str, Any] | None:
    """The object as Get-* shows it now, normalised like a plan reads it; None when it is not there."""
    response = tenant.invoke(f"Get-{spec.noun}", {"Identity": identity})
    if response.status_code == 404 or not response.json().get("value"):
        return None
    assert response.status_code == 200, response.text
    return normalise_live(spec, response.json()["value"][0])


@dataclass
class Story:
    create: list[Write] = field(default_factory=list)
    update: list[Write] = field(default_factory=list)
    remove: list[Write] = field(default_factory=list)
    replan: dict[str, Any] = field(default_factory=dict)  # the JSON plan after the update
    # The JSON plan of the update, made after the create: that it changes nothing but the case's fields (and
    # from the declared values) is the create's no-op re-plan.
    update_plan: dict[str, Any] = field(default_factory=dict)
    found: dict[str, Any] | None = None  # the object before the story (accepted domains: the seed's values)
    left: dict[str, Any] | None = None  # the object after the remove phase


def stack_body(spec: ResourceSpec, objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({spec.stack_key: objects}, sort_keys=False) if objects else ""


def after_object(case: Case) -> dict[str, Any]:
    """What the stack declares after the change: a renamed connector says which name it had."""
    spec = case.spec
    obj = dict(case.after)
    if case.field.name == spec.identity_field and spec.renamable:
        obj[RENAMED_FROM] = case.before[spec.identity_field]
    return obj


_CLI_STORIES: dict[str, Story] = {}


def cli_story(case: Case, tenant: Any, root: Path) -> Story:
    """Run ``case`` through ``mailflow apply``/``plan`` in a project at ``root`` (memoised per case: the Pulumi
    matrix compares its writes with the same story)."""
    if case.id in _CLI_STORIES:
        return _CLI_STORIES[case.id]
    from reconcile_helpers import Project, Tenant  # tests/cli's helpers, on the path set by conftest

    spec = case.spec
    reset(tenant)
    project = Project(root, Tenant(tenant))
    story = Story(found=live_fields(tenant, spec, str(case.before[spec.identity_field])))
    tenant.clear_requests()

    project.write_stack(stack_body(spec, [case.before]))
    project.apply()
    story.create = writes(tenant)

    project.write_stack(stack_body(spec, [after_object(case)]))
    story.update_plan = project.plan_json()
    project.apply()
    story.update = writes(tenant)
    story.replan = project.plan_json()
    tenant.clear_requests()

    final = case.after[spec.identity_field]
    project.write_stack(stack_body(spec, []), prune=True)
    project.apply()
    story.remove = writes(tenant)
    story.left = live_fields(tenant, spec, str(final))
    _CLI_STORIES[case.id] = story
    return story
