"""``mailflow plan``, ``mailflow apply`` and ``mailflow export``: the reconciler's front door.

Why these live together: all three load a stack, reach the same tenant and take one snapshot; they differ only
in what they do with it. Exit codes follow Terraform's: 0 success (or no changes), 1 error, 2 changes present
with ``--detailed-exitcode``. Colour is used only when stdout is a terminal (and ``NO_COLOR`` is unset).
Nothing here prints a credential: they come from the environment (azure-identity's names) straight into the
client.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import Diagnostic, MailflowError, StackError

__all__ = ["plan_command", "apply_command", "export_command", "project_root", "ENV_OVERRIDES"]

# Where a non-emulator stack's admin API lives when the stack file does not say (tests, private endpoints).
ENV_OVERRIDES: dict[str, str] = {
    "endpoint": "MAILFLOW_ENDPOINT",
    "authority": "MAILFLOW_AUTHORITY",
    "ca_file": "MAILFLOW_CA_FILE",
}


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _fail_stack(exc: StackError) -> NoReturn:
    diags: list[Diagnostic] = list(exc.diagnostics)
    errors = [d for d in diags if d.severity.value == "error"]
    for d in diags:
        click.echo(d.format() if d.severity.value != "error" else f"error: {d.format()}", err=True)
    click.echo(f"{len(errors)} error(s): nothing was sent to the tenant.", err=True)
    sys.exit(1)


def _use_color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    stream = click.get_text_stream("stdout")
    return bool(getattr(stream, "isatty", lambda: False)())


def project_root(stack_file: Path) -> Path:
    """The directory holding ``stacks/`` (state such as the emulator's lives under ``<root>/.mailflow``)."""
    stack_file = stack_file.resolve()
    if stack_file.parent.name == "stacks":
        return stack_file.parent.parent
    return stack_file.parent


def _resolve_path(stack: str) -> Path:
    from ..stack import stack_path

    return Path(stack_path(stack))


def _load(stack: str) -> Any:
    from ..stack import load_stack

    path = _resolve_path(stack)
    if not path.exists():
        _fail(f"stack file {path} does not exist (looked for stacks/{stack}.yaml or a file of that name)")
    try:
        return load_stack(path)
    except StackError as exc:
        _fail_stack(exc)


def _tenant_config(config: Any) -> Any:
    """The stack's TenantConfig, with MAILFLOW_* environment overrides for fields the stack leaves unset."""
    import dataclasses

    if config.emulator:
        return config
    updates = {}
    for attr, var in ENV_OVERRIDES.items():
        value = os.environ.get(var)
        if value and not getattr(config, attr, None):
            updates[attr] = value
    return dataclasses.replace(config, **updates) if updates else config


def _client(config: Any, root: Path) -> Any:
    from ..tenant import open_client  # type: ignore[attr-defined]

    return open_client(_tenant_config(config), env=os.environ, state_dir=root / ".mailflow" / "emulator")


def _load_baseline(spec: str | None, stack_obj: Any) -> Any:
    """``--baseline FILE`` or ``--baseline git:REF`` (the stack file as of REF); a missing file is an empty stack."""
    if not spec:
        return None
    from ..stack import load_stack, load_stack_text

    try:
        if spec.startswith("git:"):
            ref = spec[4:]
            path = Path(stack_obj.path).resolve()
            top = subprocess.run(
                ["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                capture_output=True, text=True, check=False,
            )
            if top.returncode != 0:
                _fail(f"--baseline {spec}: {path.parent} is not inside a git repository")
            rel = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
            shown = subprocess.run(
                ["git", "-C", top.stdout.strip(), "show", f"{ref}:{rel}"], capture_output=True, text=True, check=False
            )
            if shown.returncode != 0:
                check = subprocess.run(
                    ["git", "-C", top.stdout.strip(), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                    capture_output=True, text=True, check=False,
                )
                if check.returncode != 0:
                    _fail(f"--baseline {spec}: unknown git revision {ref!r}")
                text = "tenant:\n  emulator: true\n"  # the stack is new at REF: nothing was managed before
            else:
                text = shown.stdout
            return load_stack_text(text, file=f"{ref}:{rel}", name=stack_obj.name)
        return load_stack(Path(spec), name=stack_obj.name)
    except StackError as exc:
        click.echo(f"error: the baseline {spec} is not a valid stack:", err=True)
        _fail_stack(exc)


def _snapshot_and_plan(stack_obj: Any, baseline: Any) -> tuple[Any, Any, Any]:
    from ..plan import compute_plan
    from ..snapshot import take_snapshot

    client = _client(stack_obj.tenant, project_root(Path(stack_obj.path)))
    snapshot = take_snapshot(client)
    plan = compute_plan(stack_obj, snapshot, baseline=baseline)
    return client, snapshot, plan


def _run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def _render(plan: Any, fmt: str, *, color: bool) -> str:
    if fmt == "json":
        from ..render.json import render_json

        return render_json(plan)
    if fmt == "markdown":
        from ..render.markdown import render_markdown  # type: ignore[import-not-found, unused-ignore]

        text: str = render_markdown(plan, run_url=_run_url())
        return text if text.endswith("\n") else text + "\n"
    from ..render.text import render_text

    return render_text(plan, color=color)


_STACK_OPTION = click.option(
    "--stack", "stack", required=True, metavar="NAME",
    help="Stack name (stacks/NAME.yaml under the current directory) or path to a stack file.",
)
_BASELINE_OPTION = click.option(
    "--baseline", metavar="FILE|git:REF",
    help="The stack as last merged (a file, or git:REF such as git:origin/main). Fields where the tenant "
    "differs from it while the stack did not change are reported as drift; objects it lacks are adoptions.",
)


@click.command("plan")
@_STACK_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="Output format. The JSON schema is documented in docs/plan-json.md.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there is no change, 2 when there are changes, 1 on error.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), help="Write the plan to FILE instead of stdout.")
@_BASELINE_OPTION
def plan_command(stack: str, fmt: str, detailed_exitcode: bool, out: str | None, baseline: str | None) -> None:
    """Show what apply would change in the tenant, field by field.

    Reads each resource type once from the tenant and compares it with the stack's declared fields.
    Connectors the stack does not declare are listed as unmanaged and left alone (unless the stack sets
    prune: true). A read failure stops the plan; it is never taken to mean "absent".
    """
    stack_obj = _load(stack)
    base = _load_baseline(baseline, stack_obj)
    try:
        _, _, plan = _snapshot_and_plan(stack_obj, base)
    except StackError as exc:
        _fail_stack(exc)
    except MailflowError as exc:
        _fail(str(exc))
    if out:
        Path(out).write_text(_render(plan, fmt, color=False), encoding="utf-8")
        counts = ", ".join(f"{n} {a}" for a, n in plan.summary.items() if n)
        click.echo(f"Wrote the {fmt} plan to {out} ({counts or 'empty'}).")
    else:
        click.echo(_render(plan, fmt, color=fmt == "text" and _use_color()), nl=False)
    if detailed_exitcode and plan.has_changes:
        sys.exit(2)


class _EchoProgress:
    """One line per object: ``+ create InboundConnector 'X' ... done (guid)``."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def begin(self, change: Any) -> None:
        from ..render.text import SYMBOLS

        click.echo(f"{SYMBOLS[change.action]} {change.action.value} {change.type_name} '{change.name}' ...", nl=False)

    def end(self, change: Any, outcome: str) -> None:
        click.echo(" " + (click.style(outcome, fg="green") if self.color else outcome))

    def fail(self, change: Any, error: Exception) -> None:
        click.echo(" " + (click.style("FAILED", fg="red", bold=True) if self.color else "FAILED"))

    def warning(self, change: Any, text: str) -> None:
        click.echo("")
        click.echo(f"    warning from Exchange Online: {text}", nl=False)


@click.command("apply")
@_STACK_OPTION
@click.option("--auto-approve", is_flag=True, help="Apply without asking (required when stdin is not a terminal).")
@_BASELINE_OPTION
def apply_command(stack: str, auto_approve: bool, baseline: str | None) -> None:
    """Reconcile the tenant with the stack.

    Plans first and shows the plan; then writes in dependency order (accepted domains, inbound, outbound;
    deletes in reverse), each Set-* carrying only the changed fields and each write read back. On a failure
    it stops, says what was and was not done, and exits 1; running it again converges.
    """
    from ..apply import apply_plan
    from ..render.text import render_text

    color = _use_color()
    stack_obj = _load(stack)
    base = _load_baseline(baseline, stack_obj)
    try:
        client, snapshot, plan = _snapshot_and_plan(stack_obj, base)
    except StackError as exc:
        _fail_stack(exc)
    except MailflowError as exc:
        _fail(str(exc))
    click.echo(render_text(plan, color=color), nl=False)
    if not plan.has_changes:
        return
    if not auto_approve:
        if not sys.stdin.isatty():
            _fail("stdin is not a terminal: pass --auto-approve to apply without confirmation. Nothing was changed.")
        if not click.confirm(f"\nApply these changes to {plan.tenant}?", default=False):
            click.echo("Apply cancelled. Nothing was changed.")
            sys.exit(1)
    click.echo("")
    report = apply_plan(plan, stack_obj, snapshot, client, progress=_EchoProgress(color))
    click.echo("")
    if report.warnings:
        click.echo("Warnings from Exchange Online:")
        for text in report.warnings:
            click.echo(f"  {text}")
        click.echo("")
    if report.ok:
        click.echo(f"Apply complete: {len(report.done)} object(s) changed with {report.writes} write(s).")
        return
    assert report.failed is not None
    change, error = report.failed
    click.echo(f"error: {change.action.value} {change.type_name} '{change.name}' failed: {error}", err=True)
    click.echo(f"Done ({len(report.done)}):", err=True)
    for step in report.done:
        click.echo(f"  {step.change.action.value} {step.change.type_name} '{step.change.name}': {step.outcome}", err=True)
    click.echo(f"Not done ({len(report.not_done) + 1}):", err=True)
    for pending in [change, *report.not_done]:
        click.echo(f"  {pending.action.value} {pending.type_name} '{pending.name}'", err=True)
    click.echo("Fix the cause and run apply again: it plans from the tenant's current state and converges.", err=True)
    sys.exit(1)


@click.command("export")
@_STACK_OPTION
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write to FILE instead of the stack file ('-' for stdout).")
@click.option("--force", is_flag=True, help="Overwrite a stack file that already declares objects.")
@click.option("--emulator", "use_emulator", is_flag=True, help="For a new stack file: export the emulated tenant.")
@click.option("--tenant-id", metavar="GUID", help="For a new stack file: the tenant id.")
@click.option("--initial-domain", metavar="DOMAIN", help="For a new stack file: the tenant's initial domain.")
@click.option("--cloud", type=click.Choice(["commercial", "gcchigh", "dod", "china"]), default="commercial", show_default=True)
def export_command(stack: str, out: str | None, force: bool, use_emulator: bool, tenant_id: str | None,
                   initial_domain: str | None, cloud: str) -> None:
    """Write a stack file from a live tenant (all connectors, accepted domains' routing fields).

    Reads the tenant named by the existing stack file (its tenant: section is kept), or by --emulator /
    --tenant-id for a new one. A plan right after an export shows no change: this is how a team adopts an
    existing tenant.
    """
    from ..export import export_stack, tenant_section
    from ..snapshot import take_snapshot
    from ..tenant import TenantConfig

    path = _resolve_path(stack)
    target = Path(out) if out and out != "-" else path
    prune = False
    if path.exists():
        stack_obj = _load(stack)
        config = stack_obj.tenant
        prune = bool(stack_obj.prune)
        if target == path and stack_obj.objects and not force:
            _fail(f"{path} already declares {len(stack_obj.objects)} object(s); pass --force to overwrite it, "
                  "or --out FILE to write elsewhere")
    elif use_emulator:
        config = TenantConfig(emulator=True)
    elif tenant_id or initial_domain:
        config = TenantConfig(tenant_id=tenant_id, initial_domain=initial_domain, cloud=cloud)
    else:
        _fail(f"{path} does not exist: name the tenant with --emulator or --tenant-id/--initial-domain")
    try:
        snapshot = take_snapshot(_client(config, project_root(path)))
    except MailflowError as exc:
        _fail(str(exc))
    text = export_stack(snapshot, tenant_section(config), prune=prune,
                        header=f"Exported from {config.label} by `mailflow export`.")
    if out == "-":
        click.echo(text, nl=False)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    counts = ", ".join(f"{len(v)} {k}" for k, v in snapshot.objects.items())
    click.echo(f"Wrote {target} ({counts}).")
