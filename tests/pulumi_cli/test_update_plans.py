"""``pulumi preview --save-plan`` then ``pulumi up --plan``: deploy exactly what was reviewed, or stop.

Update plans are an engine feature (behind PULUMI_EXPERIMENTAL in this CLI version). With dynamic providers the
engine checks every step of ``up`` against the saved plan's operations and property values, so the reviewed
preview is what runs; a resource that would do something else (a change in the stack file, or drift in the
tenant between preview and deploy) makes ``up`` fail before that resource is touched.
"""

from __future__ import annotations

from typing import Any

from .conftest import Project

STACK = """\
inboundConnectors:
  - name: Relay from office printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
"""


def _writes(tenant: Any) -> list[str]:
    return [e["cmdlet"] for e in tenant.requests() if not str(e["cmdlet"]).startswith("Get-")]


def test_up_with_the_saved_plan_does_what_was_previewed(project: Project) -> None:
    project.env["PULUMI_EXPERIMENTAL"] = "true"
    plan = project.root / "plan.json"
    project.write_stack(STACK)
    project.run("preview", "--save-plan", str(plan))
    assert plan.exists()
    project.tenant.clear_requests()
    project.run("up", "--yes", "--skip-preview", "--plan", str(plan))
    assert _writes(project.tenant) == ["New-InboundConnector"]


def test_up_with_a_plan_stops_when_the_stack_changed_after_the_preview(project: Project) -> None:
    project.env["PULUMI_EXPERIMENTAL"] = "true"
    plan = project.root / "plan.json"
    project.write_stack(STACK)
    project.run("preview", "--save-plan", str(plan))
    project.write_stack(STACK.replace("203.0.113.10", "203.0.113.20"))
    project.tenant.clear_requests()
    result = project.run("up", "--yes", "--skip-preview", "--plan", str(plan), check=False)
    assert result.returncode != 0
    assert _writes(project.tenant) == []


def test_up_with_a_plan_stops_when_the_tenant_drifted_after_the_preview(project: Project) -> None:
    project.env["PULUMI_EXPERIMENTAL"] = "true"
    plan = project.root / "plan.json"
    project.write_stack(STACK)
    project.up()
    guid = project.resources("InboundConnector")[0]["id"]
    project.run("preview", "--save-plan", str(plan))  # reviewed: nothing to do
    project.tenant.invoke("Set-InboundConnector", {"Identity": guid, "SenderIPAddresses": ["203.0.113.99"]})
    project.tenant.clear_requests()
    result = project.run("up", "--yes", "--skip-preview", "--plan", str(plan), check=False)
    assert result.returncode != 0, "an update nobody reviewed must not run"
    assert _writes(project.tenant) == []
