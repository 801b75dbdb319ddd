"""``mailflow plan``, ``mailflow apply`` and ``mailflow export``: the reconciler's front door.

Why these live together: all three load a stack, reach the same tenant and take one snapshot; they differ only
in what they do with it. Exit codes follow Terraform's: 0 success (or no changes), 1 error, 2 changes present
with ``--detailed-exitcode``. Colour is used only when stdout is a terminal (and ``NO_COLOR`` is unset).
Nothing here prints a credential: they come from the environment (azure-identity's names) straight into the
client, and a stack with ``tenant: {emulator: true}`` uses the embedded emulated tenant (state under
``.mailflow/`` in the project, or ``$MAILFLOW_STATE_DIR``).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

import click

from ..errors import Diagnostic, MailflowError, Severity, StackError

__all__ = ["plan_command", "apply_command", "export_command", "project_root", "state_base"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _fail_stack(exc: StackError, what: str = "") -> NoReturn:
    diags: list[Diagnostic] = list(exc.diagnostics)
    errors = [d for d in diags if d.severity is Severity.ERROR]
    if what:
        click.echo(f"error: {what}", err=True)
    for d in diags:
        click.echo(f"error: {d.format()}" if d.severity is Severity.ERROR else d.format(), err=True)
    click.echo(f"{len(errors)} error(s): nothing was sent to the tenant.", err=True)
    sys.exit(1)


def _use_color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    # sys.stdout, not click.get_text_stream (deprecated in click 8.5): CliRunner and pipes swap it, a tty keeps it.
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def project_root(stack_file: Path) -> Path:
    """The directory holding ``stacks/`` (project-local state lives under ``<root>/.mailflow``)."""
    stack_file = stack_file.resolve()
    if stack_file.parent.name == "stacks":
        return stack_file.parent.parent
    return stack_file.parent


def state_base(root: Path) -> Path:
    """Where this project's local state lives: ``$MAILFLOW_STATE_DIR``, else ``<root>/.mailflow``."""
    from ..tenant import ENV_STATE_DIR

    value = os.environ.get(ENV_STATE_DIR)
    return Path(value) if value else root / ".mailflow"


def _resolve_path(stack: str, root: str | None) -> Path:
    from ..stack import stack_path

    return Path(stack_path(stack, Path(root) if root else None))


def _load(stack: str, root: str | None) -> Any:
    from ..stack import load_stack

    path = _resolve_path(stack, root)
    if not path.exists():
        _fail(f"stack file {path} does not exist (looked for stacks/{stack}.yaml; --stack also takes a file path)")
    try:
        return load_stack(path)
    except StackError as exc:
        _fail_stack(exc)


def _client(config: Any, root: Path) -> Any:
    from ..tenant import open_client

    # Same place as `mailflow emulator serve` (emulator.default_state_dir), so a served emulator is reused.
    return open_client(config, env=os.environ, state_dir=state_base(root) / "emulator")


def _client_or_exit(config: Any, root: Path) -> Any:
    """A client, or exit 1 with the reason (bad endpoint, missing credentials, emulator that cannot start)."""
    try:
        return _client(config, root)
    except (MailflowError, ValueError) as exc:
        _fail(str(exc))
    except (OSError, RuntimeError) as exc:  # the embedded emulator could not start (port, lock, disk)
        _fail(f"could not reach the tenant: {exc}")


def _git_baseline_text(ref: str, stack_file: Path) -> tuple[str, str]:
    """The stack file as of git REF (an empty stack if the file did not exist then) and a label for messages."""
    path = stack_file.resolve()

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False)

    top = git("-C", str(path.parent), "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        _fail(f"--baseline git:{ref}: {path.parent} is not inside a git repository")
    toplevel = top.stdout.strip()
    rel = path.relative_to(Path(toplevel).resolve()).as_posix()
    if git("-C", toplevel, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        _fail(f"--baseline git:{ref}: unknown git revision {ref!r}")
    shown = git("-C", toplevel, "show", f"{ref}:{rel}")
    if shown.returncode != 0:
        return "tenant:\n  emulator: true\n", f"{ref}:{rel}"  # the stack is new since REF: nothing was managed
    return shown.stdout, f"{ref}:{rel}"


def _load_baseline(spec: str | None, stack_obj: Any) -> Any:
    """``--baseline FILE`` or ``--baseline git:REF``: the stack as last merged, for drift and adoption."""
    if not spec:
        return None
    from ..stack import load_stack, load_stack_text

    try:
        if spec.startswith("git:"):
            text, label = _git_baseline_text(spec[4:], Path(stack_obj.path))
            return load_stack_text(text, file=label, name=stack_obj.name)
        if not Path(spec).is_file():
            _fail(f"--baseline {spec}: no such file")
        return load_stack(Path(spec), name=stack_obj.name)
    except StackError as exc:
        _fail_stack(exc, f"the baseline {spec} is not a valid stack:")


def _plan(stack_obj: Any, baseline: Any, root: Path) -> tuple[Any, Any, Any, Any, Any]:
    """Connect, read the tenant once per type and plan. Exits 1 (nothing written) on any error."""
    from ..plan import compute_plan
    from ..snapshot import FoundValues, take_snapshot

    client = _client_or_exit(stack_obj.tenant, root)
    try:
        # Name the tenant as the client resolved it (the emulator's initial domain) in the plan's header.
        stack_obj = dataclasses.replace(stack_obj, tenant=getattr(client, "config", stack_obj.tenant))
        found = FoundValues.for_tenant(state_base(root), str(stack_obj.tenant.tenant))
        snapshot = take_snapshot(client)
        plan = compute_plan(stack_obj, snapshot, baseline=baseline, found=found.as_mapping())
    except StackError as exc:
        _fail_stack(exc)
    except (MailflowError, ValueError) as exc:
        _fail(str(exc))
    return client, stack_obj, snapshot, plan, found


def _run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def _render(plan: Any, fmt: str, *, color: bool) -> str:
    if fmt == "json":
        from ..render.json import render_json

        return render_json(plan)
    if fmt == "markdown":
        from ..render.markdown import render_markdown

        text: str = render_markdown(plan, run_url=_run_url())
        return text if text.endswith("\n") else text + "\n"
    from ..render.text import render_text

    return render_text(plan, color=color)


def _stack_options(func: _F) -> _F:
    func = click.option(
        "--root", metavar="DIR", type=click.Path(file_okay=False),
        help="Project directory holding stacks/ (default: the current directory or the nearest parent with it).",
    )(func)
    return click.option(
        "--stack", "stack", required=True, metavar="NAME",
        help="Stack name (stacks/NAME.yaml) or the path of a stack file.",
    )(func)  # type: ignore[no-any-return]


_BASELINE_OPTION = click.option(
    "--baseline", metavar="FILE|git:REF",
    help="The stack as last merged (a file, or git:REF such as git:origin/main). Fields where the tenant "
    "differs from it while the stack did not change are reported as drift; objects it lacks are adoptions.",
)


@click.command("plan")
@_stack_options
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="Output format. The JSON plan follows docs/plan-schema.json.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there is no change, 2 when there are changes, 1 on error.")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write the plan to FILE instead of stdout.")
@_BASELINE_OPTION
def plan_command(stack: str, root: str | None, fmt: str, detailed_exitcode: bool, out: str | None,
                 baseline: str | None) -> None:
    """Show what apply would change in the tenant, field by field.

    Reads each resource type once from the tenant and compares it with the stack's declared fields.
    Connectors the stack does not declare are listed as unmanaged and left alone (unless the stack sets
    prune: true). A read failure stops the plan; it is never taken to mean "absent". Nothing is written.
    """
    stack_obj = _load(stack, root)
    base = _load_baseline(baseline, stack_obj)
    _, _, _, plan, _ = _plan(stack_obj, base, project_root(Path(stack_obj.path)))
    if out:
        Path(out).write_text(_render(plan, fmt, color=False), encoding="utf-8")
        counts = ", ".join(f"{n} {a}" for a, n in plan.summary.items() if n)
        click.echo(f"Wrote the {fmt} plan to {out} ({counts or 'nothing declared'}).", err=True)
    else:
        click.echo(_render(plan, fmt, color=fmt == "text" and _use_color()), nl=False)
    if detailed_exitcode and plan.has_changes:
        sys.exit(2)


class _EchoProgress:
    """One line per object: ``  + create InboundConnector 'X' ... done (guid)``, then any service warning."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def _style(self, text: str, **kw: Any) -> str:
        return click.style(text, **kw) if self.color else text

    def begin(self, change: Any) -> None:
        from ..render.text import SYMBOLS

        click.echo(f"  {SYMBOLS[change.action]} {change.action.value} {change.type_name} '{change.name}' ...",
                   nl=False)

    def end(self, change: Any, outcome: str) -> None:
        click.echo(" " + self._style(outcome, fg="green"))

    def fail(self, change: Any, error: Exception) -> None:
        click.echo(" " + self._style("FAILED", fg="red", bold=True))

    def warning(self, change: Any, text: str) -> None:
        click.echo("      " + self._style(f"warning from Exchange Online: {text}", fg="yellow"))


def _report_failure(report: Any) -> NoReturn:
    change, error = report.failed
    click.echo(f"error: {change.action.value} {change.type_name} '{change.name}' failed: {error}", err=True)
    click.echo(f"Done ({len(report.done)}):", err=True)
    for step in report.done:
        click.echo(f"  {step.change.action.value} {step.change.type_name} '{step.change.name}': {step.outcome}",
                   err=True)
    click.echo(f"Not done ({len(report.not_done) + 1}):", err=True)
    for pending in [change, *report.not_done]:
        click.echo(f"  {pending.action.value} {pending.type_name} '{pending.name}'", err=True)
    click.echo("Fix the cause and run apply again: it plans from the tenant's current state and converges.",
               err=True)
    sys.exit(1)


@click.command("apply")
@_stack_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking (required when stdin is not a terminal).")
@_BASELINE_OPTION
def apply_command(stack: str, root: str | None, auto_approve: bool, baseline: str | None) -> None:
    """Reconcile the tenant with the stack.

    Plans first and shows the plan, asks for confirmation (unless --auto-approve), then writes in dependency
    order (accepted domains, inbound, outbound; deletes in reverse), each Set-* carrying only the changed
    fields and each write read back. On a failure it stops, says what was and was not done, and exits 1;
    running it again converges.
    """
    from ..apply import apply_plan
    from ..render.text import render_text

    if not auto_approve and not sys.stdin.isatty():
        _fail("stdin is not a terminal, so apply cannot ask for confirmation: review the plan with "
               "`mailflow plan` and pass --auto-approve. Nothing was changed.")
    color = _use_color()
    stack_obj = _load(stack, root)
    base = _load_baseline(baseline, stack_obj)
    client, stack_obj, snapshot, plan, found = _plan(stack_obj, base, project_root(Path(stack_obj.path)))
    click.echo(render_text(plan, color=color), nl=False)
    if not plan.has_changes:
        return
    if not auto_approve and not click.confirm(f"\nApply these changes to {plan.tenant}?", default=False):
        click.echo("Apply cancelled. Nothing was changed.")
        sys.exit(1)
    click.echo("\nApplying:")
    report = apply_plan(plan, stack_obj, snapshot, client, progress=_EchoProgress(color), found=found)
    click.echo("")
    if report.warnings:
        click.echo("Warnings from Exchange Online (each given when that write ran; a later step may have "
                   "resolved it, `mailflow plan` shows the routing checks on the tenant as it is now):")
        for text in report.warnings:
            click.echo(f"  {text}")
        click.echo("")
    if not report.ok:
        _report_failure(report)
    click.echo(f"Apply complete: {len(report.done)} object(s) changed with {report.writes} write(s).")


def _existing_tenant_section(path: Path) -> dict[str, Any] | None:
    """The ``tenant:`` mapping of an existing stack file, as written (keeps endpoint/caFile spelled as is)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    tenant = data.get("tenant") if isinstance(data, dict) else None
    return dict(tenant) if isinstance(tenant, dict) else None


@click.command("export")
@_stack_options
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write to FILE instead of the stack file ('-' for stdout).")
@click.option("--force", is_flag=True, help="Overwrite a stack file that already declares objects.")
@click.option("--emulator", "use_emulator", is_flag=True, help="For a new stack file: export the emulated tenant.")
@click.option("--tenant-id", metavar="GUID", help="For a new stack file: the tenant id.")
@click.option("--initial-domain", metavar="DOMAIN", help="For a new stack file: the tenant's initial domain.")
@click.option("--cloud", type=click.Choice(["commercial", "gcchigh", "dod", "china"]), default="commercial",
              show_default=True, help="For a new stack file: the Microsoft 365 cloud.")
def export_command(stack: str, root: str | None, out: str | None, force: bool, use_emulator: bool,
                   tenant_id: str | None, initial_domain: str | None, cloud: str) -> None:
    """Write a stack file from a live tenant (all connectors, accepted domains' routing fields).

    Reads the tenant named by the existing stack file (its tenant: section is kept), or by --emulator /
    --tenant-id for a new one. A plan right after an export shows no change: this is how a team adopts an
    existing tenant.
    """
    from ..export import export_stack, tenant_section
    from ..snapshot import take_snapshot
    from ..tenant import TenantConfig

    path = _resolve_path(stack, root)
    target = Path(out) if out and out != "-" else path
    prune = False
    if path.exists():
        stack_obj = _load(stack, root)
        config = stack_obj.tenant
        prune = bool(stack_obj.prune)
        tenant = _existing_tenant_section(path) or tenant_section(config)
        if out != "-" and target == path and stack_obj.objects and not force:
            _fail(f"{path} already declares {len(stack_obj.objects)} object(s); pass --force to overwrite it, "
                  "or --out FILE to write elsewhere")
    elif use_emulator or tenant_id or initial_domain:
        config = TenantConfig(emulator=True) if use_emulator else TenantConfig(
            tenant_id=tenant_id, initial_domain=initial_domain, cloud=cloud)
        tenant = tenant_section(config)
    else:
        _fail(f"{path} does not exist: name the tenant with --emulator or --tenant-id/--initial-domain")
    root_dir = Path(root) if root else project_root(target if not path.exists() else path)
    client = _client_or_exit(config, root_dir)
    try:
        snapshot = take_snapshot(client)
    except (MailflowError, ValueError) as exc:
        _fail(str(exc))
    label = getattr(client, "config", config).label
    text = export_stack(snapshot, tenant, prune=prune, header=f"Exported from {label} by `mailflow export`.")
    if out == "-":
        click.echo(text, nl=False)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    counts = ", ".join(f"{len(v)} {k}" for k, v in snapshot.objects.items())
    click.echo(f"Wrote {target} ({counts}).")
