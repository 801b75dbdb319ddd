"""The impact and the diagrams cost no API call: they are computed from the plan's own snapshot, and their
modules cannot reach the tenant (they load neither the HTTP client nor requests nor MSAL).

Matrix: importing o365_mailflow.impact and o365_mailflow.graph in a fresh interpreter loads no HTTP stack; a
plan through the CLI costs the same admin-API calls with the impact as the snapshot alone (one list per type).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from .conftest import WORKED_EXAMPLE, Project


def test_the_impact_and_graph_modules_do_not_load_the_http_stack() -> None:
    code = ("import sys, o365_mailflow.impact, o365_mailflow.graph; "
            "print(sorted(m for m in sys.modules if m in ('requests', 'msal', 'o365_mailflow.client')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_plan_with_its_impact_and_diagram_reads_each_type_once(project: Project, emulator_tenant: Any) -> None:
    project.apply(WORKED_EXAMPLE)
    emulator_tenant.clear_requests()
    text = project.plan(WORKED_EXAMPLE.replace("  - name: C3\n", "  - name: C3\n    enabled: false\n"), "markdown")
    assert "```mermaid" in text and "moves from connector 'C3' to 'C1'" in text
    # One list per type (outbound twice: with and without test-mode connectors), as a plan without the impact.
    calls = [str(r["cmdlet"]) for r in emulator_tenant.requests()]
    assert sorted(set(calls)) == ["Get-AcceptedDomain", "Get-InboundConnector", "Get-OutboundConnector"]
    assert len(calls) <= 4
