"""The ``mailflow`` command.

Each subcommand lives in its own module and is imported only when it runs, so ``mailflow validate``
stays fast and never imports the HTTP client, and ``mailflow emulator serve`` never imports the specs.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
import threading
from typing import IO, Sequence

import click

from .. import __version__

__all__ = ["main", "COMMANDS", "UsageProblem", "keep_until_exit"]

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "validate": "o365_mailflow.cli.validate:command",
    "plan": "o365_mailflow.cli.reconcile:plan_command",
    "apply": "o365_mailflow.cli.reconcile:apply_command",
    "export": "o365_mailflow.cli.reconcile:export_command",
    "route": "o365_mailflow.cli.route:command",
    "emulator": "o365_mailflow.cli.emulator:command",
    "doctor": "o365_mailflow.cli.doctor:command",
    "test-relay": "o365_mailflow.cli.test_relay:command",
    "pulumi-preview": "o365_mailflow.cli.pulumi:preview_command",
    "pulumi-deploy": "o365_mailflow.cli.pulumi:deploy_command",
    "graph": "o365_mailflow.cli.graph:command",
}

_HELP = {
    "validate": "Check stack files offline and print every problem.",
    "plan": "Show what apply would change in the tenant.",
    "apply": "Reconcile the tenant with the stack.",
    "export": "Write a stack file from a live tenant.",
    "route": "Simulate where Exchange Online routes a message.",
    "emulator": "Run the emulated Exchange Online tenant.",
    "doctor": "Check the tenant connection first: each check with its fix.",
    "test-relay": "Send a test message to the tenant's MX and explain the answer.",
    "pulumi-preview": "Preview a Pulumi deployment as the engine will run it (the PR comment).",
    "pulumi-deploy": "Deploy exactly the reviewed Pulumi preview, or stop.",
    "graph": "Draw the mail flow as a diagram (Mermaid, DOT or SVG).",
}


def _describe(exc: BaseException) -> str:
    """One line for an error no command expected, without any secret the environment holds."""
    from ..errors import MailflowError

    if isinstance(exc, MailflowError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (this is a bug in mailflow; MAILFLOW_DEBUG=1 shows where)"
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD"):
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text


class UsageProblem(click.UsageError):
    """A usage error (unknown option, bad value, missing argument) printed as the one ``error:`` line every other
    mailflow error uses, naming the command and where its help is; the exit code is the command's (2, or 1 for
    ``plan``). Scripts and tests rely on that shape and code, not on click's wording inside it."""

    @classmethod
    def of(cls, exc: click.UsageError) -> UsageProblem:
        problem = cls(exc.format_message(), exc.ctx)
        problem.exit_code = exc.exit_code  # type: ignore[misc]  # click reads it per instance
        return problem

    def show(self, file: IO[str] | None = None) -> None:
        names: list[str] = []
        ctx = self.ctx
        while ctx is not None and ctx.parent is not None:  # the root's name is whatever ran it (`-c`, `__main__.py`)
            names.insert(0, ctx.info_name or "")
            ctx = ctx.parent
        command = " ".join(["mailflow", *names])
        message = self.format_message().rstrip(".")
        click.echo(f"error: {command}: {message} (see '{command} --help')", file=file, err=True)


def _exit_without_teardown(exc: SystemExit) -> None:
    """End the process now with ``exc``'s code, as the interpreter would but without tearing down every object.

    Why: the interpreter's own exit frees every object one by one and runs full garbage collections over all of
    them: 0.1 s of CPU after a 1,000-object plan, 0.3 s after a 10,000-object one, for memory the OS takes back
    anyway (mypy exits the same way). What an exit promises is kept: ``atexit`` handlers run (the in-process
    emulator's clean-up, logging's flush) and stdout/stderr are flushed. Returns (the normal exit follows) when
    that cannot be kept or must not be skipped: a non-integer code, a flush that fails (the interpreter reports
    it as always), a thread the interpreter would wait for, a profiler or tracer that writes its report at exit,
    or a caller that is not the main thread."""
    code = 0 if exc.code is None else exc.code
    if not isinstance(code, int) or sys.getprofile() is not None or sys.gettrace() is not None:
        return
    if threading.current_thread() is not threading.main_thread() or any(
            not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    streams = [s for s in (sys.stdout, sys.stderr) if s is not None]
    try:
        for stream in streams:
            stream.flush()
        atexit._run_exitfuncs()  # runs and clears them: the normal exit after a failed flush below runs none twice
        for stream in streams:
            stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


# What a command made, held to the end when `mailflow` is the process's own entry point (LazyGroup.main): a plan
# of thousands of objects freed one by one as the command returns costs ~10 ms of CPU per 1,000 objects, for memory
# the exit gives back at once. In-process callers (CliRunner, tests) hold nothing: they go on running.
_kept: list[object] | None = None


def keep_until_exit(*values: object) -> None:
    """Keep ``values`` alive until the process ends (only when ``mailflow`` is the process's entry point)."""
    if _kept is not None:
        _kept.extend(values)


class LazyGroup(click.Group):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: object) -> object:
        # (click types main as two overloads, NoReturn when standalone; one signature with both behaviours here)
        # Only as the process's own entry point (arguments from sys.argv, click ending the process): CliRunner and
        # other in-process callers pass their arguments and keep the SystemExit. There the collector also stays off
        # until the process ends (see invoke): turned back on, its first collection would walk every object the
        # command made, 50 ms after a 10,000-object plan, just before the process exits anyway.
        global _kept
        entry = args is None and standalone_mode
        if entry:
            _kept = []
        resume_gc = entry and gc.isenabled()
        if resume_gc:
            gc.disable()
        try:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        except SystemExit as exc:
            if entry:
                _exit_without_teardown(exc)
            raise
        finally:
            if resume_gc:  # a caller that goes on after the SystemExit gets its collector back
                gc.enable()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):  # COMMANDS names a click command in each module
            raise TypeError(f"{target} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> object:
        # The last line of defence: a mail admin never sees a Python traceback. Each command maps the errors it
        # expects; anything else still gets one line on stderr and exit 1 (MAILFLOW_DEBUG=1 shows the traceback).
        # A large stack makes millions of small objects that live for the whole command, and CPython's cyclic
        # collector re-walks all of them on every collection: a third of a 10,000-connector plan. A command is
        # short-lived, so cycles wait for its end (as in mypy); `mailflow emulator serve`, which runs for hours,
        # turns the collector back on itself.
        pause_gc = gc.isenabled()
        if pause_gc:
            gc.disable()
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise UsageProblem.of(exc) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except BrokenPipeError:
            raise  # `mailflow validate | head`: click's main exits 1 quietly, as Unix tools do
        except Exception as exc:  # noqa: BLE001 - see above
            if os.environ.get("MAILFLOW_DEBUG"):
                raise
            click.echo(f"error: {_describe(exc)}", err=True)
            ctx.exit(1)
        finally:
            if pause_gc:
                gc.enable()

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: object) -> click.Context:
        try:  # the group's own options (`mailflow --bogus`)
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise UsageProblem.of(exc) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every subcommand (and the HTTP stack) just to print one line each.
        with formatter.section("Commands"):
            formatter.write_dl([(name, _HELP.get(name, "")) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailflow")
def main() -> None:
    """Exchange Online mail flow as code: validate, plan and apply stacks/<stack>.yaml."""
