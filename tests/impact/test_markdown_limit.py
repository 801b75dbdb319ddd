"""A PR comment with hundreds of route changes still fits GitHub's limit: the diagram goes first, then the
sentences are cut from the end with a note saying how many were left out.

Matrix: 300 outbound connectors whose smart hosts all change, rendered at the minimum limit and at the default.
"""

from __future__ import annotations

from o365_mailflow.graph import build_graph, diff_graphs, to_mermaid
from o365_mailflow.impact import TenantState, compare_states
from o365_mailflow.plan import Plan
from o365_mailflow.render.markdown import MIN_LIMIT, render_markdown


def _state(host: str) -> TenantState:
    outbound = [{"name": f"Branch {i}", "recipientDomains": [f"b{i}.example"], "useMxRecord": False,
                 "smartHosts": [f"{host}{i}.example"]} for i in range(300)]
    return TenantState.from_fields([{"domainName": "contoso.com"}], [], outbound)


def test_hundreds_of_route_changes_are_trimmed_to_fit_with_a_note() -> None:
    before, after = _state("old"), _state("new")
    impact = compare_states(before, after)
    assert len(impact.rows) == 300
    diagram = to_mermaid(diff_graphs(build_graph(before), build_graph(after)))
    plan = Plan(stack="big", tenant="contoso.onmicrosoft.com", changes=())
    small = render_markdown(plan, limit=MIN_LIMIT, impact=impact, diagram=diagram)
    assert len(small) <= MIN_LIMIT
    assert "#### Mail flow" in small and "more route change" in small and "diagram is omitted" in small
    full = render_markdown(plan, impact=impact, diagram=diagram)
    assert full.count("\n- mail for b") == 60 and "240 more route changes not shown" in full
