"""``mailflow validate``: check stack files offline and print every problem.

Why a command of its own: it is the pre-commit and first CI step. It must be fast, need no credentials and
make no network call (it never imports the HTTP client), and report every problem of every file at once, as
``FILE:LINE: path.to.field: message (allowed: ...)``, so one run is enough to fix a file.
Exit codes: 0 when every file is valid (warnings allowed), 1 when any file has an error.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import Severity
from ..stack import stack_path, validate_stack

__all__ = ["command"]


def _targets(stacks: tuple[str, ...], files: tuple[str, ...]) -> list[Path]:
    paths = [stack_path(name) for name in stacks] + [Path(f) for f in files]
    if paths:
        return paths
    # No argument: every stack of the project (the nearest stacks/ directory up from here).
    for directory in (Path.cwd(), *Path.cwd().parents):
        found = sorted((directory / "stacks").glob("*.yaml"))
        if found:
            return [p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p for p in found]
    raise click.UsageError("no stacks/*.yaml found here or above; pass --stack NAME or a FILE")


@click.command(name="validate")
@click.option("--stack", "-s", "stacks", multiple=True, metavar="NAME",
              help="Stack name: validates stacks/NAME.yaml (repeatable).")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=str))
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, no summary lines.")
def command(stacks: tuple[str, ...], files: tuple[str, ...], quiet: bool) -> None:
    """Check stack files offline and print every error and warning.

    With no argument, validates every stacks/*.yaml of the project. Makes no call to any tenant.
    """
    total_errors = total_warnings = 0
    for path in _targets(stacks, files):
        stack, diags = validate_stack(path)
        errors = sum(1 for d in diags if d.severity is Severity.ERROR)
        warnings = len(diags) - errors
        total_errors += errors
        total_warnings += warnings
        for diag in diags:
            click.echo(diag.format())
        if quiet:
            continue
        if stack is not None and not errors:
            counts = ", ".join(
                f"{len(stack.of_type(t))} {t}" for t in ("AcceptedDomain", "InboundConnector", "OutboundConnector")
            )
            note = f", {warnings} warning(s)" if warnings else ""
            click.echo(f"{path}: valid ({counts}; {stack.tenant.label}){note}")
        else:
            click.echo(f"{path}: {errors} error(s), {warnings} warning(s)")
    if total_errors:
        raise SystemExit(1)
