"""The ``--stack NAME|FILE`` argument shared by the commands that read one stack (plan, apply, export, route).

Why one place: every command must answer a missing file, a directory or an invalid stack with the same clear
lines and exit 1, before anything reaches the tenant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ..errors import Diagnostic, Severity, StackError

if TYPE_CHECKING:  # pragma: no cover - typing only: loaded late, with the command that needs it
    from ..stack import Stack

__all__ = ["fail", "fail_stack", "resolve_stack_path", "load_stack_arg", "project_root", "refuse_directory"]


def fail(message: str) -> NoReturn:
    """One ``error:`` line on stderr, exit 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def fail_stack(exc: StackError, what: str = "") -> NoReturn:
    """Every diagnostic of an invalid stack (not only the first), then exit 1."""
    diags: list[Diagnostic] = list(exc.diagnostics)
    errors = [d for d in diags if d.severity is Severity.ERROR]
    if what:
        click.echo(f"error: {what}", err=True)
    for d in diags:
        click.echo(f"error: {d.format()}" if d.severity is Severity.ERROR else d.format(), err=True)
    click.echo(f"{len(errors)} error(s): nothing was sent to the tenant.", err=True)
    sys.exit(1)


def resolve_stack_path(stack: str, root: str | None = None) -> Path:
    """``dev`` -> ``<root>/stacks/dev.yaml``; a path is taken as given."""
    from ..stack import stack_path

    return Path(stack_path(stack, Path(root) if root else None))


def project_root(stack_file: Path) -> Path:
    """The directory holding ``stacks/`` (project-local state lives under ``<root>/.mailflow``)."""
    stack_file = stack_file.resolve()
    if stack_file.parent.name == "stacks":
        return stack_file.parent.parent
    return stack_file.parent


def refuse_directory(path: Path) -> None:
    """Exit 1 when ``--stack`` names a directory (export checks this for a file that need not exist yet)."""
    if path.is_dir():
        fail(f"{path} is a directory, not a stack file: pass --stack NAME (for stacks/NAME.yaml) or the path of "
             "a .yaml file")


def load_stack_arg(stack: str, root: str | None = None) -> Stack:
    """Load the stack a ``--stack`` option names, or print why not and exit 1."""
    from ..stack import load_stack

    path = resolve_stack_path(stack, root)
    if not path.exists():
        fail(f"stack file {path} does not exist (looked for stacks/{stack}.yaml; --stack also takes a file path)")
    refuse_directory(path)
    try:
        return load_stack(path)
    except StackError as exc:
        fail_stack(exc)
