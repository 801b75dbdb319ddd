"""``mailflow graph``: the tenant's mail flow as a diagram (Mermaid, Graphviz DOT or SVG).

Why a command: reviewers and auditors ask "what sends into this tenant and where does its mail go?"; the answer
is a picture, from the stack's declared objects (offline, over the service defaults) or, with ``--live``, from
what the tenant holds now (one list call per type). Exit codes: 0 drawn, 1 error.

    mailflow graph --stack dev [--live] [--format mermaid|dot|svg] [--out FILE]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import MailflowError
from .stackarg import fail as _fail, load_stack_arg, project_root

if TYPE_CHECKING:  # pragma: no cover - typing only: the command imports these late
    from ..impact import TenantState
    from ..stack import Stack

__all__ = ["command"]


def _state(stack: Stack, live: bool) -> TenantState:
    from ..impact import TenantState

    if not live:
        return TenantState.from_fields(*([dict(o.fields) for o in stack.of_type(t)]
                                         for t in ("AcceptedDomain", "InboundConnector", "OutboundConnector")))
    from ..snapshot import take_snapshot
    from ..connect import open_client
    from ..tenant import emulator_state_dir

    try:
        client = open_client(stack.tenant, env=os.environ, state_dir=emulator_state_dir(root=project_root(stack.path)))
        return TenantState.from_snapshot(take_snapshot(client))
    except (MailflowError, ValueError, OSError) as exc:
        cause = getattr(exc, "cause", None) or exc
        _fail(f"could not read the tenant: {str(cause).rstrip('.')}. Nothing was drawn.")


@click.command("graph")
@click.option("--stack", "stack_name", required=True, metavar="NAME",
              help="Stack name (stacks/NAME.yaml) or path to a stack file.")
@click.option("--live", is_flag=True, help="Draw what the tenant holds now instead of the stack file.")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True,
              help="mermaid (GitHub renders it), Graphviz dot, or svg (needs Graphviz's dot program).")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def command(stack_name: str, live: bool, fmt: str, out: str | None) -> None:
    """Draw the mail flow: sending servers and devices -> inbound connectors -> Exchange Online -> outbound
    connectors -> smart hosts, and the accepted domains with their type (InternalRelay domains point at the
    connector that gets their unknown recipients)."""
    from ..graph import build_graph, to_dot, to_mermaid, to_svg

    stack = load_stack_arg(stack_name)
    graph = build_graph(_state(stack, live))
    try:
        text = {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}[fmt](graph)
    except MailflowError as exc:  # GraphvizMissing names the package to install
        _fail(str(exc))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"Wrote the {fmt} diagram to {out}.", err=True)
    else:
        click.echo(text, nl=False)
