"""change_diagram draws each connector once and adds that part to both states' graphs; the graphs must be the
very ones drawing each state on its own gives (node and edge order included: the diagram's text follows it).
Generated: the after-states of test_untouched_probes (changed, removed, added, renamed connectors)."""

from __future__ import annotations

import random

from o365_mailflow.graph import EXO, Graph, Node, _build_graph, _domain, _inbound, _outbound
from o365_mailflow.impact import TenantState, _Index

from .test_index_agrees import ACCEPTED, INBOUND, OUTBOUND
from .test_untouched_probes import _edited


def _drawn_on_its_own(state: TenantState) -> Graph:
    """Each object drawn straight into the state's graph, in order (what build_graph did before sharing parts)."""
    g = Graph()
    g.add(Node(EXO, "Exchange Online", "exo"))
    for c in state.inbound:
        _inbound(g, c)
    for c in state.outbound:
        _outbound(g, c)
    index = _Index(state)
    for a in state.accepted:
        _domain(g, a, index)
    return g


def _same(a: Graph, b: Graph) -> bool:
    return list(a.nodes.items()) == list(b.nodes.items()) and list(a.edges.items()) == list(b.edges.items())


def test_shared_parts_draw_the_graphs_of_each_state_on_its_own() -> None:
    rng = random.Random(16)
    before = TenantState.from_fields(ACCEPTED, INBOUND, OUTBOUND)
    for _ in range(60):
        after = TenantState(*(_edited(rng, kind, objs) for kind, objs in
                              (("accepted", before.accepted), ("inbound", before.inbound),
                               ("outbound", before.outbound))))
        parts: dict[int, Graph] = {}
        assert _same(_build_graph(before, parts), _drawn_on_its_own(before))
        assert _same(_build_graph(after, parts), _drawn_on_its_own(after))
