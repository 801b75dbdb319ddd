"""``mailflow graph`` and the change diagram of the PR comment.

Matrix: the dev stack drawn offline as Mermaid (parsed by Mermaid's own parser), DOT and SVG (drawn by Graphviz);
--live draws what the emulated tenant holds, including connectors the stack does not declare; --format svg without
Graphviz fails with a message naming the package; a plan's markdown comment carries a Mermaid diagram of only the
parts it changes, with added, removed and changed edges marked; 50 connectors per direction stay readable: the
full diagram groups them and a change diagram collapses the unchanged ones into counted nodes.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from o365_mailflow.cli import main
from o365_mailflow.graph import build_graph, diff_graphs, to_mermaid
from o365_mailflow.impact import TenantState

from impact.conftest import WORKED_EXAMPLE, Project
from .conftest import mermaid_parse, require_dot

ROOT = Path(__file__).resolve().parents[2]
DEV = str(ROOT / "stacks" / "dev.yaml")


def graph(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["graph", *args], env=env)


def test_the_dev_stack_is_drawn_as_a_mermaid_flowchart_that_mermaid_parses(tmp_path: Path) -> None:
    result = graph("--stack", DEV)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("flowchart LR\n")
    for label in ("Relay from office printers and apps", "203.0.113.10", "cert mail.contoso.com",
                  "Exchange Online", "To on-premises Exchange", "mail.contoso.com", "contoso.com<br/>InternalRelay",
                  "fabrikam.com<br/>Authoritative"):
        assert label in text
    assert re.search(r'dom_\w+ -\.->\|"unknown recipients"\| out_\w+', text)  # InternalRelay -> its connector
    [verdict] = mermaid_parse(tmp_path, text)
    assert verdict["ok"], verdict


def test_dot_output_is_drawn_to_svg_by_graphviz(tmp_path: Path) -> None:
    dot = graph("--stack", DEV, "--format", "dot")
    assert dot.exit_code == 0 and dot.stdout.startswith("digraph mailflow {")
    require_dot()
    out = tmp_path / "flow.svg"
    result = graph("--stack", DEV, "--format", "svg", "--out", str(out))
    assert result.exit_code == 0, result.output
    svg = html.unescape(out.read_text(encoding="utf-8"))  # Graphviz writes "-" as &#45;
    assert "<svg" in svg and "To on-premises Exchange" in svg and "Relay from office printers and apps" in svg


def test_svg_without_graphviz_says_which_package_to_install(tmp_path: Path) -> None:
    result = graph("--stack", DEV, "--format", "svg", env={"PATH": str(tmp_path)})
    assert result.exit_code == 1
    assert "graphviz" in result.stderr and "apt-get install -y graphviz" in result.stderr


def test_live_draws_what_the_tenant_holds_including_undeclared_connectors(project: Project,
                                                                          emulator_tenant: Any) -> None:
    project.apply(WORKED_EXAMPLE)
    response = emulator_tenant.invoke("New-OutboundConnector", {"Name": "Made in the admin center",
                                                                "RecipientDomains": ["tailspin.example"]})
    assert response.status_code == 200, response.text
    result = graph("--stack", "impact", "--live")
    assert result.exit_code == 0, result.output
    assert "Made in the admin center" in result.stdout and "C3<br/>Partner" in result.stdout
    assert "Made in the admin center" not in graph("--stack", "impact").stdout


def test_the_pr_comment_draws_only_what_the_plan_changes_with_marked_edges(project: Project, tmp_path: Path) -> None:
    project.apply(WORKED_EXAMPLE)
    body = WORKED_EXAMPLE.replace("  - name: C3\n", "  - name: C3\n    enabled: false\n") + """\
  - name: C4
    recipientDomains: [fabrikam.com]
    useMxRecord: false
    smartHosts: [mx.fabrikam.example]
"""
    text = project.plan(body, "markdown")
    section = text[text.index("#### Mail flow"):text.index("#### Changes")]
    assert "- mail for fabrikam.com moves from connector 'C1' to 'C4'" in section
    diagram = section[section.index("```mermaid\n") + 11:section.rindex("```")]
    assert re.search(r'exo -->\|"added: fabrikam.com"\| out_\w+', diagram)  # the new connector's edge
    assert re.search(r'exo -\.->\|"changed: disabled: \*.contoso.com"\| out_\w+', diagram)  # C3 disabled
    assert "added: mx.fabrikam.example" in diagram
    assert "Printers" not in diagram and "2 unchanged inbound connectors" in diagram
    assert "linkStyle" in diagram and "classDef added" in diagram
    [verdict] = mermaid_parse(tmp_path, diagram)
    assert verdict["ok"], verdict


def _many(n: int) -> TenantState:
    accepted = [{"domainName": f"d{i}.contoso.com", "domainType": "Authoritative"} for i in range(n)]
    inbound = [{"name": f"Site {i}", "connectorType": "OnPremises", "senderIpAddresses": [f"198.51.{i}.0/24"]}
               for i in range(n)]
    outbound = [{"name": f"Branch {i}", "connectorType": "OnPremises", "recipientDomains": [f"d{i}.contoso.com"],
                 "useMxRecord": False, "smartHosts": [f"mx{i}.contoso.com"]} for i in range(n)]
    return TenantState.from_fields(accepted, inbound, outbound)


def test_fifty_connectors_stay_readable_and_a_change_collapses_the_unchanged_ones(tmp_path: Path) -> None:
    before = _many(50)
    full = to_mermaid(build_graph(before))
    changed = _many(50)
    out = list(changed.outbound)
    out[7] = out[7].__class__(out[7].identity, {**out[7].fields, "smartHosts": ["new.contoso.com"]})
    after = TenantState(changed.accepted, changed.inbound, tuple(out))
    diff = to_mermaid(diff_graphs(build_graph(before), build_graph(after)))
    assert full.count("subgraph ") == 5  # one group per column, not one per connector
    assert "49 unchanged outbound connectors" in diff and "50 unchanged inbound connectors" in diff
    nodes = re.findall(r"^    (\w+)\[", diff, re.M)
    assert len(nodes) == 6  # the changed connector, its old and new host, and three counted groups
    assert "Branch 7" in diff and "Branch 8" not in diff
    verdicts = mermaid_parse(tmp_path, full, diff)
    assert all(v["ok"] for v in verdicts), verdicts


@pytest.mark.parametrize("label", ['Quote " and <b>tag</b>', "Semi;colon | pipe"], ids=["quotes-html", "pipes"])
def test_names_with_markup_characters_still_parse(tmp_path: Path, label: str) -> None:
    state = TenantState.from_fields([], [{"name": label, "connectorType": "OnPremises",
                                         "senderIpAddresses": ["203.0.113.5"]}],
                                    [{"name": label, "recipientDomains": ["x.example"]}])
    [verdict] = mermaid_parse(tmp_path, to_mermaid(build_graph(state)))
    assert verdict["ok"], verdict
