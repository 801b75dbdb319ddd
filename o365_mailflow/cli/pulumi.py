"""``mailflow pulumi-preview`` and ``mailflow pulumi-deploy``: review and deploy one truth.

``pulumi-preview`` runs the real ``pulumi preview`` (the deploy's engine and state, ``--save-plan``) and renders
its actions with our field-level detail, in the same formats as ``mailflow plan``: this is the pull-request
comment. ``pulumi-deploy`` computes the same preview again, compares what it would do with the reviewed JSON
plan, and only when they agree runs ``pulumi up --plan`` with the plan it just saved, so the engine itself
refuses any step that differs from it. Anything else (a newer commit, drift in the tenant since the review)
stops the deploy with the differences listed. See docs/gitops.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import MailflowError, Severity

if TYPE_CHECKING:  # pragma: no cover - typing only: the commands import these late (Pulumi's SDK is heavy)
    from ..plan import Plan
    from ..pulumi_plan import PulumiRun
    from ..snapshot import Snapshot

__all__ = ["preview_command", "deploy_command"]


def _project_dir(cwd: str | None) -> Path:
    start = Path(cwd or ".").resolve()
    for candidate in (start, *start.parents):
        if (candidate / "Pulumi.yaml").exists():
            return candidate
    raise click.UsageError(f"no Pulumi.yaml in {start} or its parents: run from the Pulumi project, or pass --cwd")


def _plan(project: Path, stack: str, save_plan: Path | None) -> tuple[Plan, PulumiRun, Snapshot]:
    """The engine's preview of ``stack`` as a Plan, with the tenant read once per type (the stack's config)."""
    from ..providers.config import settings_from_config, settings_from_env
    from ..pulumi_plan import PulumiRun, plan_from_preview, run_preview
    from ..snapshot import take_snapshot
    from ..connect import open_client

    run = PulumiRun(cwd=project, stack=stack)
    preview = run_preview(run, save_plan=save_plan)
    settings = settings_from_config(preview.config) or settings_from_env()
    client = open_client(settings.tenant, env=settings.client_env(), state_dir=settings.state_dir)
    snapshot = take_snapshot(client)
    return plan_from_preview(preview, snapshot, stack=stack, tenant=settings.tenant.label), run, snapshot


def _blocked(plan: Plan) -> list[str]:
    """Errors the deploy would stop at (e.g. a connector that exists and is not adopted)."""
    return [f"{rc.type_name} '{rc.name}': {w.summary}" for rc in plan.changes for w in rc.warnings
            if w.severity is Severity.ERROR]


@click.command("pulumi-preview")
@click.option("--stack", required=True, metavar="NAME", help="Pulumi stack (and stacks/NAME.yaml).")
@click.option("--cwd", metavar="DIR", help="The Pulumi project directory (default: nearest with Pulumi.yaml).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the rendered preview to FILE.")
@click.option("--json-out", type=click.Path(dir_okay=False),
              help="Also write the JSON plan to FILE (the reviewed plan that pulumi-deploy checks against).")
@click.option("--save-plan", type=click.Path(dir_okay=False), help="Also keep Pulumi's own update plan in FILE.")
@click.option("--full-out", type=click.Path(dir_okay=False),
              help="Also write the whole plan as markdown to FILE, never trimmed to a comment's size (for the "
              "CI artifact and job summary).")
@click.option("--artifact", metavar="NAME",
              help="Name of the CI artifact that holds the whole plan: a trimmed markdown comment links to it.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on errors.")
def preview_command(stack: str, cwd: str | None, fmt: str, out: str | None, json_out: str | None,
                    save_plan: str | None, full_out: str | None, artifact: str | None,
                    detailed_exitcode: bool) -> None:
    """Preview a Pulumi deployment as the engine will run it, field by field (the PR comment)."""
    from ..render.json import render_json
    from .reconcile import _render, _use_color, _write_file

    project = _project_dir(cwd)
    try:
        plan, _, snapshot = _plan(project, stack, Path(save_plan) if save_plan else None)
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    # The mail-flow impact and the change diagram come from the same snapshot: no further read of the tenant.
    text = _render(plan, fmt, color=fmt == "text" and not out and _use_color(), snapshot=snapshot,
                   artifact=artifact)
    if out:
        _write_file(Path(out), text)
    else:
        click.echo(text, nl=False)
    if json_out:
        from ..impact import compute_impact

        _write_file(Path(json_out), render_json(plan, impact=compute_impact(snapshot, plan)))
    if full_out:
        # No size limit: the artifact and the job summary hold everything the comment may have dropped.
        _write_file(Path(full_out), _render(plan, "markdown", color=False, snapshot=snapshot, limit=sys.maxsize))
    blocked = _blocked(plan)
    if blocked:
        click.echo("error: pulumi up would stop:\n  " + "\n  ".join(blocked), err=True)
        sys.exit(1)
    if detailed_exitcode and plan.has_changes:
        sys.exit(2)


@click.command("pulumi-deploy")
@click.option("--stack", required=True, metavar="NAME", help="Pulumi stack (and stacks/NAME.yaml).")
@click.option("--cwd", metavar="DIR", help="The Pulumi project directory (default: nearest with Pulumi.yaml).")
@click.option("--reviewed", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The JSON plan the reviewer approved (pulumi-preview --json-out).")
def deploy_command(stack: str, cwd: str | None, reviewed: str) -> None:
    """Deploy exactly the reviewed plan: preview again, compare, then `pulumi up --plan` (or stop)."""
    from ..pulumi_plan import compare_signatures

    project = _project_dir(cwd)
    approved = json.loads(Path(reviewed).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="mailflow-deploy-") as tmp:
        plan_file = Path(tmp) / "pulumi-plan.json"
        try:
            plan, run, _ = _plan(project, stack, plan_file)
        except MailflowError as exc:
            raise click.ClickException(str(exc)) from exc
        differences = compare_signatures(approved, plan.to_dict())
        if differences:
            click.echo("error: the deployment would not do what was reviewed, so nothing was changed:\n  "
                       + "\n  ".join(differences)
                       + "\nPreview again (a new commit, or the tenant changed since the review) and have it reviewed.",
                       err=True)
            sys.exit(1)
        blocked = _blocked(plan)
        if blocked:
            click.echo("error: pulumi up would stop:\n  " + "\n  ".join(blocked), err=True)
            sys.exit(1)
        if not plan.has_changes:
            click.echo("Nothing to deploy: the tenant already matches the reviewed plan.")
            return
        result = run.run("up", "--yes", "--skip-preview", "--plan", str(plan_file), check=False)
        click.echo(result.stdout, nl=False)
        if result.returncode != 0:
            click.echo(result.stderr, nl=False, err=True)
            sys.exit(1)
