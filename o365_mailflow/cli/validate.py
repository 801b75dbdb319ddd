"""``mailflow validate``: check stack files offline and print every problem.

Why a command of its own: it is the pre-commit and first CI step. It must be fast, need no credentials and
make no network call (it never imports the HTTP client), and report every problem of every file at once, as
``FILE:LINE: path.to.field: message (allowed: ...)``, so one run is enough to fix a file.
Exit codes: 0 when every file is valid (warnings allowed), 1 when any file has an error. In text format errors
go to stderr, warnings and "valid" lines to stdout.
``--format github`` prints GitHub Actions workflow commands so CI puts each problem on the changed line;
``--format json`` prints one JSON document for other tools.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import Diagnostic, Severity
from ..routing import check_stack
from ..specs import write_order
from ..stack import stack_path, validate_stack
from . import keep_until_exit

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


def _github(diag: Diagnostic) -> str:
    """A GitHub Actions workflow command (``::error file=F,line=L::message``) with its special characters escaped."""

    def escape(text: str, *, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    level = "error" if diag.severity is Severity.ERROR else "warning"
    props = []
    if diag.file:
        props.append(f"file={escape(diag.file, prop=True)}")
    if diag.line:
        props.append(f"line={diag.line}")
    if diag.dotted_path:
        props.append(f"title={escape(diag.dotted_path, prop=True)}")
    message = diag.format()
    return f"::{level} {','.join(props)}::{escape(message)}" if props else f"::{level}::{escape(message)}"


@click.command(name="validate")
@click.option("--stack", "-s", "stacks", multiple=True, metavar="NAME",
              help="Stack name: validates stacks/NAME.yaml (repeatable).")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=str))
@click.option("--format", "output_format", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, github for GitHub Actions annotations, json for tools.")
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, no summary lines.")
def command(stacks: tuple[str, ...], files: tuple[str, ...], output_format: str, quiet: bool) -> None:
    """Check stack files offline and print every error and warning.

    With no argument, validates every stacks/*.yaml of the project. Makes no call to any tenant.
    """
    total_errors = 0
    report: list[dict[str, object]] = []
    for path in _targets(stacks, files):
        stack, diags = validate_stack(path, checks=(check_stack,))
        keep_until_exit(stack, diags)
        errors = sum(1 for d in diags if d.severity is Severity.ERROR)
        warnings = len(diags) - errors
        total_errors += errors
        report.append({"file": str(path), "valid": stack is not None and not errors, "errors": errors,
                       "warnings": warnings, "diagnostics": [d.to_dict() for d in diags]})
        if output_format == "json":
            continue
        for diag in diags:
            if output_format == "github":  # workflow commands are read from stdout
                click.echo(_github(diag))
            else:  # errors go to stderr, so `validate > report.txt` still shows them and CI logs keep them apart
                click.echo(diag.format(), err=diag.severity is Severity.ERROR)
        if quiet:
            continue
        if stack is not None and not errors:
            counts = ", ".join(
                f"{len(stack.of_type(s.type_name))} {s.type_name}" for s in write_order()
            )
            note = f", {warnings} warning(s)" if warnings else ""
            click.echo(f"{path}: valid ({counts}; {stack.tenant.label}){note}")
        else:
            click.echo(f"{path}: {errors} error(s), {warnings} warning(s)", err=output_format == "text")
    if output_format == "json":
        click.echo(json.dumps({"valid": total_errors == 0, "files": report}, indent=2))
    if total_errors:
        raise SystemExit(1)
