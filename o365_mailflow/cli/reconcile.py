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
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Callable, Mapping, NoReturn, ParamSpec, TypeAlias, TypeVar, Union

import click

from ..errors import MailflowError, StackError
from ..tenant import DEFAULT_PARALLELISM, MAX_PARALLELISM, emulator_state_dir
from . import keep_until_exit
from .stackarg import fail as _fail, fail_stack as _fail_stack, load_stack_arg as _load
from .stackarg import project_root, refuse_directory, resolve_stack_path as _resolve_path

if TYPE_CHECKING:  # pragma: no cover - typing only: the commands import these late, so `validate` stays offline
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ..apply import ApplyReport, StepResult
    from ..client import ExoClient
    from ..plan import Plan, ResourceChange
    from ..snapshot import FoundValues, Snapshot
    from ..stack import Stack
    from ..tenant import TenantConfig

__all__ = ["plan_command", "apply_command", "export_command", "project_root", "state_base"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
# What signal.signal takes and returns (typeshed's private _HANDLER).
_SignalHandler: TypeAlias = Union[Callable[[int, "FrameType | None"], object], int, signal.Handlers, None]


def _write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed over it), else exit 1.

    Why: an interrupted or failed write (disk full, Ctrl-C) must never leave a truncated stack file or plan that
    a later run or a reviewer would take for the real one. A missing parent directory is created.
    """
    import tempfile  # late: only a command writing a file needs it (and shutil, bz2, lzma, random behind it)

    tmp_name = None
    try:
        # The mode a plain open() would give (a replaced file keeps its own): mkstemp's 0600 would hide a stack
        # file from the rest of the team.
        umask = os.umask(0)
        os.umask(umask)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~umask
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False) as handle:
            tmp_name = handle.name
            handle.write(text)
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except OSError as exc:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
        _fail(f"cannot write {path}: {exc.strerror or exc}. Nothing was written.")


def _use_color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    # sys.stdout, not click.get_text_stream (deprecated in click 8.5): CliRunner and pipes swap it, a tty keeps it.
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def state_base(root: Path) -> Path:
    """Where this project's local state lives: ``$MAILFLOW_STATE_DIR``, else ``<root>/.mailflow`` (the parent
    of the emulator's state directory, so both follow one rule)."""
    return emulator_state_dir(root=root).parent


def _client(config: TenantConfig, root: Path) -> ExoClient:
    from ..connect import open_client

    # Same place as `mailflow emulator serve` (emulator.default_state_dir), so a served emulator is reused.
    return open_client(config, env=os.environ, state_dir=emulator_state_dir(root=root))


def _client_or_exit(config: TenantConfig, root: Path) -> ExoClient:
    """A client, or exit 1 with the reason (bad endpoint, missing credentials, emulator that cannot start)."""
    try:
        return _client(config, root)
    except (MailflowError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:  # the embedded emulator could not start (state directory, port, lock, disk)
        if getattr(config, "emulator", False) and exc.filename:
            _fail(f"cannot start the local emulated tenant: {exc.filename}: {exc.strerror or exc}. Its state lives "
                  f"in {emulator_state_dir(root=root)}; set MAILFLOW_STATE_DIR to a writable directory. "
                  "Nothing was read or changed.")
        _fail(f"could not reach the tenant: {exc.strerror or exc}. Nothing was read or changed.")
    except RuntimeError as exc:
        _fail(f"could not reach the tenant: {exc}. Nothing was read or changed.")


def _git_baseline_text(ref: str, stack_file: Path) -> tuple[str, str]:
    """The stack file as of git REF (an empty stack if the file did not exist then) and a label for messages."""
    import subprocess  # late: only --baseline git:REF runs git

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


def _load_baseline(spec: str | None, stack_obj: Stack) -> Stack | None:
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


def _plan(stack_obj: Stack, baseline: Stack | None, root: Path
          ) -> tuple[ExoClient, Stack, Snapshot, Plan, FoundValues]:
    """Connect, read the tenant once per type and plan. Exits 1 (nothing written) on any error."""
    from ..snapshot import FoundValues, start_snapshot

    client = _client_or_exit(stack_obj.tenant, root)
    try:
        # Name the tenant as the client resolved it (the emulator's initial domain) in the plan's header.
        stack_obj = dataclasses.replace(stack_obj, tenant=getattr(client, "config", stack_obj.tenant))
        reading = start_snapshot(client)
        # While the list calls are on the network, load the planning code (late imports: the other commands do
        # not need it) and the found values: ~20 ms of CPU that would otherwise start only after the last answer.
        from ..impact import compute_impact  # noqa: F401 - _render's, loaded here while waiting
        from ..plan import compute_plan

        found = FoundValues.for_tenant(state_base(root), str(stack_obj.tenant.tenant))
        snapshot = reading.result()
        plan = compute_plan(stack_obj, snapshot, baseline=baseline, found=found.as_mapping())
    except StackError as exc:
        _fail_stack(exc)
    except (MailflowError, ValueError) as exc:
        _fail(str(exc))
    keep_until_exit(stack_obj, baseline, snapshot, plan)
    return client, stack_obj, snapshot, plan, found


def _run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def _render(plan: Plan, fmt: str, *, color: bool, snapshot: Snapshot | None = None, artifact: str | None = None,
            limit: int | None = None) -> str:
    # The mail-flow impact comes from the snapshot the plan was computed from: no further read of the tenant.
    from ..impact import compute_impact

    impact = compute_impact(snapshot, plan) if snapshot is not None else None
    if fmt == "json":
        from ..render.json import render_json

        return render_json(plan, impact=impact)
    if fmt == "markdown":
        from ..graph import change_diagram
        from ..render.markdown import render_markdown

        diagram = change_diagram(snapshot, plan) if snapshot is not None else None
        extra: dict[str, int] = {"limit": limit} if limit is not None else {}
        text: str = render_markdown(plan, run_url=_run_url(), impact=impact, diagram=diagram, artifact=artifact,
                                    **extra)
        return text if text.endswith("\n") else text + "\n"
    from ..render.text import render_text

    return render_text(plan, color=color, impact=impact)


def _stack_options(func: Callable[_P, _R]) -> Callable[_P, _R]:
    func = click.option(
        "--root", metavar="DIR", type=click.Path(file_okay=False),
        help="Project directory holding stacks/ (default: the current directory or the nearest parent with it).",
    )(func)
    return click.option(
        "--stack", "stack", required=True, metavar="NAME",
        help="Stack name (stacks/NAME.yaml) or the path of a stack file.",
    )(func)


_BASELINE_OPTION = click.option(
    "--baseline", metavar="FILE|git:REF",
    help="The stack as last merged (a file, or git:REF such as git:origin/main). Fields where the tenant "
    "differs from it while the stack did not change are reported as drift; objects it lacks are adoptions.",
)


class _PlanCommand(click.Command):
    """``plan`` exits 1 on a usage error, not click's 2: with --detailed-exitcode, 2 means "changes present",
    and a CI job must never read a mistyped option as a plan with changes (Terraform does the same)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: object) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = 1  # type: ignore[misc]  # click reads it per instance
            raise


@click.command("plan", cls=_PlanCommand)
@_stack_options
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="Output format. The JSON plan follows docs/plan-schema.json.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there is no change, 2 when there are changes, 1 on any error (usage errors too).")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write the plan to FILE instead of stdout (replaced whole; missing directories are created).")
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
    _, _, snapshot, plan, _ = _plan(stack_obj, base, project_root(Path(stack_obj.path)))
    if out:
        _write_file(Path(out), _render(plan, fmt, color=False, snapshot=snapshot))
        counts = ", ".join(f"{n} {a}" for a, n in plan.summary.items() if n)
        click.echo(f"Wrote the {fmt} plan to {out} ({counts or 'nothing declared'}).", err=True)
    else:
        click.echo(_render(plan, fmt, color=fmt == "text" and _use_color(), snapshot=snapshot), nl=False)
    if detailed_exitcode and plan.has_changes:
        sys.exit(2)


class _Reporter:
    """What a person following a long apply sees, on a terminal or in a CI log.

    One line per finished write, ``[37/1000] + create InboundConnector 'x' ... done (0.4 s)``, in the order
    they finish (several are in flight at once); retries and back-off waits on their own lines with the
    reason (the client logs them, see :meth:`retry_line` and :meth:`backoff_sleep`); the verification's
    rounds; a summary. On a terminal (unless NO_COLOR is set) rich keeps a live bar with the count, the writes
    in flight and the elapsed time under those lines; elsewhere the lines are plain text.
    """

    def __init__(self, color: bool, total: int) -> None:
        self.color = color
        self.total = total
        self.started_at = time.monotonic()
        self.lock = threading.RLock()
        self.in_flight: dict[int, ResourceChange] = {}  # id(change) -> change, for the interrupt report
        self.finished: list[tuple[ResourceChange, str]] = []
        self._console: Console | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if color:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._console = Console(highlight=False)
            self._bar = Progress(TextColumn("Applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[flight]}"), console=self._console, transient=True)
            self._task = self._bar.add_task("apply", total=total, flight="")

    def __enter__(self) -> _Reporter:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def line(self, text: str, style: str = "") -> None:
        with self.lock:
            if self._console is not None:
                from rich.text import Text

                self._console.print(Text(text, style=style), soft_wrap=True)
            else:
                click.echo(text)

    def _refresh(self) -> None:
        if self._bar is not None and self._task is not None:
            names = [f"'{c.name}'" for c in list(self.in_flight.values())[:3]]
            self._bar.update(self._task, completed=len(self.finished), flight=(
                f"writing {', '.join(names)}{' ...' if len(self.in_flight) > 3 else ''}" if names else ""))

    # apply.Progress
    def started(self, change: ResourceChange) -> None:
        with self.lock:
            self.in_flight[id(change)] = change
            self._refresh()

    def _prefix(self, number: int, total: int, change: ResourceChange) -> str:
        from ..render.text import SYMBOLS

        width = len(str(total))
        return f"[{number:>{width}}/{total}] {SYMBOLS[change.action]} {_label(change)} ..."

    def finished_step(self, step: StepResult, number: int, total: int) -> None:
        with self.lock:
            self.in_flight.pop(id(step.change), None)
            self.finished.append((step.change, step.outcome))
            self.line(f"{self._prefix(number, total, step.change)} {step.outcome} ({step.seconds:.1f} s)",
                      "green")
            self._refresh()
            self._milestone(number, total)

    def _milestone(self, number: int, total: int) -> None:
        """Without the live bar (CI logs), every tenth of a long run says how far it is and for how long."""
        if self._bar is None and total >= 20 and number % (total // 10) == 0 and number < total:
            minutes, seconds = divmod(int(self.elapsed()), 60)
            self.line(f"... {number}/{total} finished, {minutes}:{seconds:02d} elapsed, "
                      f"{len(self.in_flight)} in flight")

    def failed(self, change: ResourceChange, error: Exception, number: int, total: int) -> None:
        with self.lock:
            self.in_flight.pop(id(change), None)
            self.line(f"{self._prefix(number, total, change)} FAILED: {error}", "bold red")
            self._refresh()
            self._milestone(number, total)

    def warning(self, change: ResourceChange, text: str) -> None:
        self.line(f"      warning from Exchange Online: {text}", "yellow")

    def verifying(self, text: str) -> None:
        self.line(text)

    # the client's retries (see _client_log_handler) and back-off waits
    def retry_line(self, text: str) -> None:
        self.line(f"      retry: {text}", "yellow")

    def backoff_sleep(self, seconds: float) -> None:
        if seconds >= 0.05:
            self.line(f"      waiting {seconds:.1f} s before retrying", "yellow")
        time.sleep(seconds)


class _ApplyProgress:
    """apply.Progress over a :class:`_Reporter` (whose ``finished`` is the list of finished writes)."""

    def __init__(self, reporter: _Reporter) -> None:
        self.reporter = reporter

    def started(self, change: ResourceChange) -> None:
        self.reporter.started(change)

    def finished(self, step: StepResult, number: int, total: int) -> None:
        self.reporter.finished_step(step, number, total)

    def failed(self, change: ResourceChange, error: Exception, number: int, total: int) -> None:
        self.reporter.failed(change, error, number, total)

    def warning(self, change: ResourceChange, text: str) -> None:
        self.reporter.warning(change, text)

    def verifying(self, text: str) -> None:
        self.reporter.verifying(text)


class _RetryLines(logging.Handler):
    """The client's retry warnings (one log record per retried request), as lines of the apply's output."""

    def __init__(self, reporter: _Reporter) -> None:
        super().__init__(logging.WARNING)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        self.reporter.retry_line(record.getMessage())


def _set_signal(signum: int, handler: _SignalHandler) -> _SignalHandler:
    """signal.signal, or nothing when not on the main thread (an embedding host): the previous handler."""
    if handler is None:
        return None
    try:
        return signal.signal(signum, handler)
    except ValueError:
        return None


def _label(change: ResourceChange) -> str:
    return f"{change.action.value} {change.type_name} '{change.name}'"


def _report_interrupt(plan: Plan, reporter: _Reporter, reason: str) -> NoReturn:
    """Apply stopped at once (a second Ctrl-C, a local disk error): say what was written, what may have been,
    and what was not started; exit 1.

    The writes in flight may already have reached the tenant (the requests were sent), so they are reported as
    unknown, never as "not done". Re-running plan shows the truth; apply converges from there.
    """
    from ..apply import ordered_steps

    _set_signal(signal.SIGINT, signal.SIG_IGN)  # another Ctrl-C must not cut this report short
    steps = ordered_steps(plan)
    in_flight = list(reporter.in_flight.values())
    started = {id(c) for c, _ in reporter.finished} | {id(c) for c in in_flight}
    pending = [c for c in steps if id(c) not in started]
    click.echo("", err=True)
    click.echo(f"error: {reason}; apply stopped before the remaining writes.", err=True)
    click.echo(f"Done ({len(reporter.finished)}):", err=True)
    for change, outcome in reporter.finished:
        click.echo(f"  {_label(change)}: {outcome}", err=True)
    if in_flight:
        click.echo("In progress when interrupted (the tenant may or may not have applied it):", err=True)
        for change in in_flight:
            click.echo(f"  {_label(change)}", err=True)
    click.echo(f"Not started ({len(pending)}):", err=True)
    for change in pending:
        click.echo(f"  {_label(change)}", err=True)
    click.echo("Run `mailflow plan` to see the tenant as it is now; running apply again converges.", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(1)


def _report_stopped(report: ApplyReport, reason: str) -> NoReturn:
    """The first Ctrl-C (or SIGTERM): the writes in flight finished; none was started after it."""
    click.echo(f"error: {reason}; the writes in flight finished and no new write was started.", err=True)
    _report_lists(report)
    click.echo("Run `mailflow plan` to see the tenant as it is now; running apply again converges.", err=True)
    sys.exit(1)


def _report_lists(report: ApplyReport) -> None:
    click.echo(f"Done ({len(report.done)}):", err=True)
    for step in report.done:
        click.echo(f"  {_label(step.change)}: {step.outcome}", err=True)
    if report.failures:
        click.echo(f"Failed ({len(report.failures)}):", err=True)
        for change, error in report.failures:
            click.echo(f"  {_label(change)}: {error}", err=True)
    click.echo(f"Not started ({len(report.not_done)}):", err=True)
    for pending in report.not_done:
        click.echo(f"  {_label(pending)}", err=True)


def _report_failure(report: ApplyReport) -> NoReturn:
    assert report.failed is not None, "called only for a report that is not ok"
    change, error = report.failed
    click.echo(f"error: {_label(change)} failed: {error}", err=True)
    _report_lists(report)
    click.echo("Fix the cause and run apply again: it plans from the tenant's current state and converges.",
               err=True)
    sys.exit(1)


def _report_unverified(report: ApplyReport) -> None:
    if not report.unverified:
        return
    click.echo(f"Accepted but not yet visible ({len(report.unverified)}): Exchange Online answered these writes, "
               "so they are done; replication can take longer than this run waited. Run `mailflow plan` in a "
               "few minutes to confirm:")
    for step, why in report.unverified:
        click.echo(f"  {_label(step.change)}: {why}")


def _summary(report: ApplyReport, seconds: float) -> str:
    counts: dict[str, int] = {}
    for step in report.done:
        counts[step.change.action.value] = counts.get(step.change.action.value, 0) + 1
    what = ", ".join(f"{n} {a}" for a, n in counts.items()) or "nothing changed"
    return (f"Apply complete in {seconds:.1f} s: {len(report.done)} object(s) changed ({what}) with "
            f"{report.writes} write(s).")


def _confirmed(tenant: str) -> bool:
    """Terraform's rule: only the word ``yes`` approves (a stray ``y`` or Enter does not)."""
    click.echo(f"\nDo you want to apply these changes to {tenant}?\n  Only 'yes' will be accepted to approve.")
    try:
        answer = click.prompt("  Enter a value", default="", show_default=False)
    except click.Abort:  # Ctrl-C or end of input at the prompt
        click.echo("")
        return False
    return str(answer).strip() == "yes"


def _refuse_unreviewed(plan: Plan, reviewed: Path) -> None:
    """Exit 1 unless ``plan`` does what the reviewed JSON plan said: the same rule as ``pulumi-deploy``."""
    import json

    from ..pulumi_plan import compare_signatures

    try:
        approved = json.loads(reviewed.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"{reviewed}: not a JSON plan written by `mailflow plan --format json` ({exc}). Nothing was changed.")
    differences = compare_signatures(approved, plan.to_dict())
    if differences:
        _fail("the tenant or the stack changed since the review, so this apply would not do what was reviewed. "
              "Nothing was changed:\n  " + "\n  ".join(differences)
              + "\nPlan again (mailflow plan --format json --out FILE) and have that plan reviewed.")


@click.command("apply")
@_stack_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking (required when stdin is not a terminal).")
@click.option("--parallelism", type=click.IntRange(1, MAX_PARALLELISM), default=DEFAULT_PARALLELISM,
              show_default=True, help="Writes in flight at once. Exchange Online limits concurrent requests per "
              "tenant (and answers the excess with a retry); 3 matches the sessions Exchange Online PowerShell "
              "allows per admin.")
@_BASELINE_OPTION
@click.option("--reviewed", type=click.Path(exists=True, dir_okay=False),
              help="The JSON plan that was reviewed (mailflow plan --format json --out FILE): apply only if the "
              "fresh plan would do exactly that, else stop without changing anything.")
def apply_command(stack: str, root: str | None, auto_approve: bool, parallelism: int, baseline: str | None,
                  reviewed: str | None = None) -> None:
    """Reconcile the tenant with the stack.

    Plans first and shows the plan, asks for confirmation (type yes; or --auto-approve), then writes in
    dependency order (accepted domains, inbound, outbound, domains that relay through an outbound connector;
    deletes in reverse), a few at a time, each Set-* carrying only the changed fields. A write the service
    answered is done; at the end one listing per type checks that the tenant shows every write (waiting out
    replication lag for a few minutes). On a failure no new write starts, the report says what was done,
    what failed and what was not started, and the exit code is 1; running it again converges. The first
    Ctrl-C lets the writes in flight finish, a second one stops at once.
    """
    from ..apply import StopSignal, apply_plan, ordered_steps

    if not auto_approve and not sys.stdin.isatty():
        _fail("stdin is not a terminal, so apply cannot ask for confirmation: review the plan with "
               "`mailflow plan` and pass --auto-approve. Nothing was changed.")
    color = _use_color()
    stack_obj = _load(stack, root)
    base = _load_baseline(baseline, stack_obj)
    try:
        client, stack_obj, snapshot, plan, found = _plan(stack_obj, base, project_root(Path(stack_obj.path)))
    except KeyboardInterrupt:
        _fail("interrupted (Ctrl-C) while reading the tenant. Nothing was changed.")
    click.echo(_render(plan, "text", color=color, snapshot=snapshot), nl=False)
    if reviewed:
        _refuse_unreviewed(plan, Path(reviewed))
    if not plan.has_changes:
        return
    if not (auto_approve or _confirmed(plan.tenant)):
        click.echo("Apply cancelled. Nothing was changed.")
        sys.exit(1)
    steps = ordered_steps(plan)
    click.echo(f"\nApplying {len(steps)} change(s), up to {parallelism} at a time (Ctrl-C: finish the writes in "
               "flight, then stop):")
    reporter = _Reporter(color, len(steps))
    _report_retries(client, reporter)
    stop = StopSignal()
    received: list[str] = []

    def interrupted(signum: int, frame: FrameType | None) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        received.append(name)
        if len(received) > 1:
            raise KeyboardInterrupt
        stop.set()
        reporter.line(f"{name}: stopping after the writes in flight ({len(reporter.in_flight)}); press Ctrl-C "
                      "again to stop at once (their outcome then stays unknown).", "bold yellow")

    previous = (_set_signal(signal.SIGINT, interrupted), _set_signal(signal.SIGTERM, interrupted))
    log_handler = _RetryLines(reporter)
    client_log = logging.getLogger("o365_mailflow.client")
    client_log.addHandler(log_handler)
    try:
        with reporter:
            report = apply_plan(plan, stack_obj, client, progress=_ApplyProgress(reporter), found=found,
                                parallelism=parallelism, stop=stop)
    except KeyboardInterrupt:
        click.echo("")
        _report_interrupt(plan, reporter, f"interrupted ({received[-1] if received else 'Ctrl-C'}, twice)"
                          if len(received) > 1 else "interrupted (Ctrl-C)")
    except OSError as exc:  # e.g. the state directory (found values of accepted domains) is not writable
        click.echo("")
        _report_interrupt(plan, reporter, f"local error: {exc.filename or ''}: {exc.strerror or exc}")
    finally:
        client_log.removeHandler(log_handler)
        _set_signal(signal.SIGINT, previous[0] if previous[0] is not None else signal.default_int_handler)
        _set_signal(signal.SIGTERM, previous[1])
    click.echo("")
    if report.warnings:
        click.echo("Warnings from Exchange Online (each given when that write ran; a later step may have "
                   "resolved it, `mailflow plan` shows the routing checks on the tenant as it is now):")
        for text in report.warnings:
            click.echo(f"  {text}")
        click.echo("")
    if report.stopped:
        _report_stopped(report, f"interrupted ({received[0] if received else 'Ctrl-C'})")
    if not report.ok:
        _report_failure(report)
    _report_unverified(report)
    click.echo(_summary(report, reporter.elapsed()))


def _report_retries(client: ExoClient, reporter: _Reporter) -> None:
    """Route the client's back-off waits through the reporter, so each wait shows with its length."""
    import dataclasses as dc

    retry = getattr(client, "retry", None)
    if retry is not None and hasattr(retry, "sleep"):
        client.retry = dc.replace(retry, sleep=reporter.backoff_sleep)


def _checked_tenant(tenant: Mapping[str, object], target: Path) -> TenantConfig:
    """The TenantConfig for export's --tenant-id/--initial-domain, checked by the stack loader's own rules (GUID,
    domain name), so a typo fails here with the allowed values instead of as a strange URL at the authority."""
    import yaml

    from ..stack import load_stack_text

    try:
        return load_stack_text(yaml.safe_dump({"tenant": tenant}), file="the export options",
                               name=target.stem).tenant
    except StackError as exc:
        for d in exc.diagnostics:
            field = {"id": "--tenant-id", "initialDomain": "--initial-domain"}.get(str(d.path[-1]) if d.path else "")
            detail = f"{field}: " if field else ""
            click.echo(f"error: {detail}{d.summary}" + (f" (allowed: {d.allowed})" if d.allowed else ""), err=True)
        _fail("nothing was read or written")


def _existing_tenant_section(path: Path) -> dict[str, object] | None:
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
@click.option("--force", is_flag=True,
              help="Overwrite a stack file that already declares objects, or an existing --out FILE.")
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
    if out and out != "-" and target.resolve() != path.resolve():
        if target.is_dir():
            _fail(f"--out {target} is a directory; give a file name such as {target / 'exported.yaml'}")
        if target.exists() and not force:
            _fail(f"{target} already exists; pass --force to overwrite it. Nothing was written.")
    prune = False
    refuse_directory(path)
    if path.exists():
        stack_obj = _load(stack, root)
        config = stack_obj.tenant
        prune = bool(stack_obj.prune)
        tenant = _existing_tenant_section(path) or tenant_section(config)
        if out != "-" and target.resolve() == path.resolve() and stack_obj.objects and not force:
            _fail(f"{path} already declares {len(stack_obj.objects)} object(s); pass --force to overwrite it, "
                  "or --out FILE to write elsewhere")
    elif use_emulator or tenant_id or initial_domain:
        if use_emulator and (tenant_id or initial_domain):
            raise click.UsageError("--emulator names the local emulated tenant; it does not take --tenant-id or "
                                   "--initial-domain")
        tenant = tenant_section(TenantConfig(emulator=True) if use_emulator else TenantConfig(
            tenant_id=tenant_id, initial_domain=initial_domain, cloud=cloud))
        config = _checked_tenant(tenant, target)
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
    _write_file(target, text)
    counts = ", ".join(f"{len(v)} {k}" for k, v in snapshot.objects.items())
    click.echo(f"Wrote {target} ({counts}).")
