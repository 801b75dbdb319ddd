"""The tenant's mail flow as a diagram: who sends in, which connectors carry mail out, and where it lands.

Why this module exists: a list of connectors does not show the shape of hybrid mail flow (printers and servers ->
inbound connectors -> Exchange Online -> outbound connectors -> smart hosts, and which accepted domains send
unknown recipients on-premises). ``mailflow graph`` draws it for one state; the PR comment draws only what a
plan changes, with added, removed and changed edges marked. One graph model (:class:`Graph`) is built from an
:class:`~o365_mailflow.impact.TenantState` and written as Mermaid (GitHub renders it in comments) or Graphviz
DOT (and SVG through the ``dot`` program).

Readability at 50+ connectors: each connector's sender IPs and certificate are one node, identical smart host
sets share a node, connectors are grouped by type, and in a change diagram the unchanged ones collapse into one
counted node per direction. The InternalRelay edges (domain -> the connector that gets its unknown recipients)
come from the routing simulator, not from a second reading of the fields.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, TypeVar

from .errors import MailflowError
from .impact import MailObject, TenantState, _Index
from .plan import Plan
from .shapes import texts
from .snapshot import Snapshot

__all__ = ["Node", "Edge", "Graph", "GraphDiff", "GraphvizMissing", "build_graph", "diff_graphs", "to_mermaid",
           "to_dot", "to_svg", "change_diagram", "EXO"]

EXO = "exo"
_SHOWN = 3  # items listed in one node label before "+N more"
_STATUS = ("added", "removed", "changed")


class GraphvizMissing(MailflowError):
    """``--format svg`` needs Graphviz's ``dot`` program."""


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    group: str  # senders | inbound | exo | outbound | hosts | domains


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: str = ""
    dashed: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.src, self.dst)


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple[str, str], Edge] = field(default_factory=dict)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, edge: Edge) -> None:
        self.edges[edge.key] = edge


_GROUP_TITLES = {
    "senders": "Sending servers and devices",
    "inbound": "Inbound connectors",
    "outbound": "Outbound connectors",
    "hosts": "Destinations",
    "domains": "Accepted domains",
}


def _id(prefix: str, text: str) -> str:
    # Mermaid and DOT ids: letters, digits and underscores; a hash keeps renamed or oddly named objects stable.
    return f"{prefix}_{hashlib.sha1(text.casefold().encode()).hexdigest()[:10]}"


def _listing(items: list[str]) -> str:
    shown = items[:_SHOWN]
    more = len(items) - len(shown)
    return "\n".join(shown + ([f"+{more} more"] if more > 0 else []))


def build_graph(state: TenantState) -> Graph:
    """The whole mail flow of one state."""
    return _build_graph(state, {})


def _build_graph(state: TenantState, parts: dict[int, Graph]) -> Graph:
    """:func:`build_graph`, reusing the nodes and edges of a connector already drawn (``parts``, by object id).

    Why: the two states of a change diagram share every connector the plan leaves alone (the very same
    objects), and a connector's nodes and edges depend on it alone: drawing each once, then adding its part to
    each graph in the same order, gives the same graphs for about half the cost.
    """
    g = Graph()
    g.add(Node(EXO, "Exchange Online", "exo"))
    for draw, objects in ((_inbound, state.inbound), (_outbound, state.outbound)):
        for c in objects:
            part = parts.get(id(c))
            if part is None:
                part = parts[id(c)] = Graph()
                draw(part, c)
            for node in part.nodes.values():
                g.add(node)
            for edge in part.edges.values():
                g.link(edge)
    index = _Index(state)
    for a in state.accepted:
        _domain(g, a, index)
    return g


def _inbound(g: Graph, c: MailObject) -> None:
    f = c.fields
    node = g.add(Node(_id("in", c.identity), f"{c.name}\n{f.get('connectorType')}", "inbound"))
    senders = [str(x) for x in texts(f, "senderIpAddresses")]
    if f.get("tlsSenderCertificateName"):
        senders.append(f"cert {f.get('tlsSenderCertificateName')}")
    if not senders:
        senders = [f"from {d}" for d in (texts(f, "senderDomains") or ["anyone"])]
    src = g.add(Node(_id("src", c.identity), _listing(senders), "senders"))
    g.link(Edge(src, node))
    g.link(Edge(node, EXO, "" if f.get("enabled", True) else "disabled", dashed=not f.get("enabled", True)))


def _outbound(g: Graph, c: MailObject) -> None:
    f = c.fields
    label = f"{c.name}\n{f.get('connectorType')}"
    node = g.add(Node(_id("out", c.identity), label, "outbound"))
    scope = ["all accepted domains"] if f.get("allAcceptedDomains") else []
    scope += [str(d) for d in texts(f, "recipientDomains")]
    enabled = bool(f.get("enabled", True)) and not f.get("isTransportRuleScoped")
    why = "" if f.get("enabled", True) else "disabled: "
    why = why or ("rule-scoped: " if f.get("isTransportRuleScoped") else "")
    g.link(Edge(EXO, node, why + _listing(scope or ["no domains"]).replace("\n", ", "), dashed=not enabled))
    hosts = sorted(str(h) for h in texts(f, "smartHosts")) if f.get("useMxRecord") is False else []
    target = g.add(Node(_id("host", "|".join(hosts)), _listing(hosts), "hosts")) if hosts else \
        g.add(Node("internet", "Internet (MX records)", "hosts"))
    g.link(Edge(node, target))


def _domain(g: Graph, a: MailObject, index: _Index) -> None:
    name = str(a.fields.get("domainName") or a.identity)
    kind = str(a.fields.get("domainType") or "")
    node = g.add(Node(_id("dom", name), f"{name}\n{kind}", "domains"))
    if kind != "InternalRelay":
        return
    decision = index.route(name.removeprefix("*."))
    if decision.path == "internal-relay" and decision.connector:
        target = _id("out", index.identity("outbound", decision.connector) or decision.connector)
        g.link(Edge(node, target, "unknown recipients", dashed=True))


# ---------------------------------------------------------------------------------------------------------------------
# What a plan changes
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class GraphDiff:
    """A graph of the union of two states, with the status (added, removed, changed) of what differs."""

    graph: Graph
    node_status: dict[str, str]
    edge_status: dict[tuple[str, str], str]

    @property
    def empty(self) -> bool:
        return not self.node_status and not self.edge_status


_K = TypeVar("_K")
_V = TypeVar("_V")


def _merged(before: Mapping[_K, _V], after: Mapping[_K, _V], into: dict[_K, _V]) -> dict[_K, str]:
    """Puts every key of either side into ``into`` (its after value if it has one) and returns the status of each
    key that differs: added, removed or changed."""
    status: dict[_K, str] = {}
    for key in {**before, **after}:
        b, a = before.get(key), after.get(key)
        into[key] = a or b  # type: ignore[assignment]  # one of the two is there: key came from either side
        change = "added" if b is None else "removed" if a is None else "changed" if a != b else None
        if change:
            status[key] = change
    return status


def diff_graphs(before: Graph, after: Graph, *, focus: bool = True) -> GraphDiff:
    """Mark what differs. With ``focus``, keep only changed parts and the nodes they touch; unchanged connectors
    and domains collapse into one counted node per group, so 50 connectors stay readable."""
    g = Graph()
    diff = GraphDiff(g, _merged(before.nodes, after.nodes, g.nodes), _merged(before.edges, after.edges, g.edges))
    return _focus(diff) if focus else diff


def change_diagram(snapshot: Snapshot, plan: Plan) -> str | None:
    """Mermaid text of what ``plan`` changes in the tenant of ``snapshot``, or None when nothing in the diagram
    changes (the PR comment and the Pulumi pipeline's comment call this; no I/O)."""
    state = TenantState.from_snapshot(snapshot)  # once: after_plan reuses its objects for what the plan leaves alone
    parts: dict[int, Graph] = {}  # connectors drawn for the first state, reused for the second
    before = _build_graph(state, parts)
    after = _build_graph(TenantState.after_plan(snapshot, plan, state), parts)
    diff = diff_graphs(before, after)
    return None if diff.empty else to_mermaid(diff)


def _focus(diff: GraphDiff) -> GraphDiff:
    g = diff.graph
    keep = set(diff.node_status) | {n for key in diff.edge_status for n in key}
    if not keep:
        return GraphDiff(Graph(), {}, {})
    # A changed part keeps its context in view: a connector with its senders or destination, a domain with the
    # connector that gets its unknown recipients. Shared destinations do not pull in their other connectors.
    group = {nid: n.group for nid, n in g.nodes.items()}
    for s, d in g.edges:
        if group[s] == "senders" and (s in keep or d in keep):
            keep |= {s, d}
    for s, d in g.edges:
        if group[s] == "domains" and s in keep:
            keep.add(d)
    for s, d in g.edges:
        if group[s] == "outbound" and s in keep:
            keep.add(d)
    keep.add(EXO)
    out = Graph()
    for nid in g.nodes:
        if nid in keep:
            out.nodes[nid] = g.nodes[nid]
    for key, e in g.edges.items():
        if key[0] in keep and key[1] in keep:
            out.edges[key] = e
    hidden: dict[str, int] = {}
    for node in g.nodes.values():
        if node.id not in keep and node.group in ("inbound", "outbound", "domains"):
            hidden[node.group] = hidden.get(node.group, 0) + 1
    for kind, count in hidden.items():
        noun = {"inbound": "inbound connector", "outbound": "outbound connector", "domains": "accepted domain"}[kind]
        nid = f"unchanged_{kind}"
        out.nodes[nid] = Node(nid, f"{count} unchanged {noun}{'s' if count != 1 else ''}", kind)
        if kind == "inbound":
            out.edges[(nid, EXO)] = Edge(nid, EXO)
        elif kind == "outbound":
            out.edges[(EXO, nid)] = Edge(EXO, nid)
    return GraphDiff(out, {k: v for k, v in diff.node_status.items() if k in keep},
                     {k: v for k, v in diff.edge_status.items() if k in out.edges})


# ---------------------------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------------------------

_COLOURS = {"added": "#1a7f37", "removed": "#cf222e", "changed": "#9a6700"}
_FILLS = {"added": "#dafbe1", "removed": "#ffebe9", "changed": "#fff8c5"}
_GROUP_ORDER = ("senders", "inbound", "exo", "outbound", "hosts", "domains")


def _ordered(nodes: Iterable[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: (_GROUP_ORDER.index(n.group), n.label.casefold(), n.id))


def _mermaid_text(text: str) -> str:
    # Inside "...": quotes and angle brackets become entity codes; line breaks become <br/>.
    escaped = text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return escaped.replace("\n", "<br/>")


def _renumbered(diff: GraphDiff) -> GraphDiff:
    """Short ids in drawing order (``out_1``, ``out_2``...): hashes of Guids differ from tenant to tenant, and the
    same plan should draw the same text (docs and reviews compare it)."""
    ids: dict[str, str] = {EXO: EXO}
    counts: dict[str, int] = {}
    for n in _ordered(diff.graph.nodes.values()):
        if n.id not in ids:
            prefix = n.id.split("_", 1)[0]
            counts[prefix] = counts.get(prefix, 0) + 1
            ids[n.id] = f"{prefix}_{counts[prefix]}"
    g = Graph()
    for n in diff.graph.nodes.values():
        g.nodes[ids[n.id]] = Node(ids[n.id], n.label, n.group)
    for e in diff.graph.edges.values():
        moved = Edge(ids[e.src], ids[e.dst], e.label, e.dashed)
        g.edges[moved.key] = moved
    return GraphDiff(g, {ids[k]: v for k, v in diff.node_status.items()},
                     {(ids[s], ids[d]): v for (s, d), v in diff.edge_status.items()})


def _drawn(graph: Graph | GraphDiff) -> GraphDiff:
    return _renumbered(graph if isinstance(graph, GraphDiff) else GraphDiff(graph, {}, {}))


def _groups(diff: GraphDiff) -> Iterator[tuple[str, list[Node]]]:
    """Each group that has nodes, in drawing order, with its nodes in drawing order (both writers draw this)."""
    nodes = _ordered(diff.graph.nodes.values())
    for group in _GROUP_ORDER:
        members = [n for n in nodes if n.group == group]
        if members:
            yield group, members


def _marked(diff: GraphDiff, node: Node) -> tuple[str | None, str]:
    """A node's status in a change diagram and its label, prefixed with the status (``added: C4``)."""
    mark = diff.node_status.get(node.id)
    return mark, f"{mark}: {node.label}" if mark else node.label


def _edges(diff: GraphDiff) -> Iterator[tuple[Edge, str | None, str, bool]]:
    """Each edge in drawing order with its status, its label (prefixed with the status) and whether it is dashed
    (a dashed edge, or one the change removes)."""
    for e in sorted(diff.graph.edges.values(), key=lambda e: (e.src, e.dst)):
        mark = diff.edge_status.get(e.key)
        label = " ".join(x for x in (f"{mark}:" if mark else "", e.label) if x)
        yield e, mark, label, e.dashed or mark == "removed"


def to_mermaid(graph: Graph | GraphDiff) -> str:
    """A Mermaid flowchart (``flowchart LR``), edges and nodes of a :class:`GraphDiff` marked by status."""
    diff = _drawn(graph)
    lines = ["flowchart LR"]
    for group, members in _groups(diff):
        if group == "exo":
            lines.append(f'  {EXO}(["{_mermaid_text(members[0].label)}"])')
            continue
        lines.append(f'  subgraph grp_{group}["{_GROUP_TITLES[group]}"]')
        lines += [f'    {n.id}["{_mermaid_text(_marked(diff, n)[1])}"]' for n in members]
        lines.append("  end")
    styles = []
    for i, (e, mark, label, dashed) in enumerate(_edges(diff)):
        arrow = "-.->" if dashed else "-->"
        lines.append(f'  {e.src} {arrow}|"{_mermaid_text(label)}"| {e.dst}' if label else f"  {e.src} {arrow} {e.dst}")
        if mark:
            styles.append(f"  linkStyle {i} stroke:{_COLOURS[mark]},stroke-width:3px")
    lines += styles
    for status in _STATUS:
        member_ids = sorted(nid for nid, s in diff.node_status.items() if s == status)
        if member_ids:
            lines.append(f"  classDef {status} fill:{_FILLS[status]},stroke:{_COLOURS[status]},stroke-width:2px")
            lines.append(f"  class {','.join(member_ids)} {status}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(graph: Graph | GraphDiff) -> str:
    """The same diagram as Graphviz DOT, one cluster per group."""
    diff = _drawn(graph)
    lines = ["digraph mailflow {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fillcolor=white, '
             'fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];']
    for group, members in _groups(diff):
        if group == "exo":
            lines.append(f'  {EXO} [label="{_dot_text(members[0].label)}", shape=ellipse, fillcolor="#ddf4ff"];')
            continue
        lines.append(f'  subgraph cluster_{group} {{')
        lines.append(f'    label="{_GROUP_TITLES[group]}"; style=rounded;')
        for n in members:
            mark, label = _marked(diff, n)
            extra = f', fillcolor="{_FILLS[mark]}", color="{_COLOURS[mark]}"' if mark else ""
            lines.append(f'    {n.id} [label="{_dot_text(label)}"{extra}];')
        lines.append("  }")
    for e, mark, label, dashed in _edges(diff):
        attrs = [f'label="{_dot_text(label)}"'] if label else []
        if dashed:
            attrs.append("style=dashed")
        if mark:
            attrs += [f'color="{_COLOURS[mark]}"', "penwidth=2"]
        lines.append(f"  {e.src} -> {e.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(graph: Graph | GraphDiff, *, dot_program: str = "dot") -> str:
    """SVG drawn by Graphviz ``dot``; :class:`GraphvizMissing` names the package to install when it is absent."""
    program = shutil.which(dot_program)
    if program is None:
        raise GraphvizMissing(
            "--format svg needs Graphviz's `dot` program, which is not installed. Install the graphviz package "
            "(Debian/Ubuntu: apt-get install -y graphviz; macOS: brew install graphviz), or use --format mermaid "
            "or --format dot.")
    result = subprocess.run([program, "-Tsvg"], input=to_dot(graph), capture_output=True, text=True, timeout=120,
                            check=False)
    if result.returncode != 0:
        raise MailflowError(f"Graphviz dot could not draw the diagram: {result.stderr.strip()[:500]}")
    return result.stdout
