"""``mailflow doctor --stack NAME``: check a tenant connection before the first plan, each check with its fix.

Exit codes for CI: 0 when every check passes (warnings and notes included), 1 when one fails (or the stack is
invalid). ``--format json`` prints ``{"tenant", "ok", "checks": [{"name", "status", "detail", "fix"}]}``.
``--record DIR`` writes the admin-API answers seen, sanitised (``--include-addresses`` keeps IPs and e-mail
addresses), for a bug report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..tenant import emulator_state_dir
from .stackarg import load_stack_arg, project_root, resolve_stack_path

if TYPE_CHECKING:  # pragma: no cover - typing only: the command imports these late
    from ..client import ExoClient
    from ..doctor import Observer

__all__ = ["command"]

_MARK = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "info": "NOTE"}


@click.command("doctor")
@click.option("--stack", "stack", required=True, metavar="NAME",
              help="Stack name (stacks/NAME.yaml) or the path of a stack file: its tenant: section is checked.")
@click.option("--root", metavar="DIR", type=click.Path(file_okay=False),
              help="Project directory holding stacks/ (default: the current directory).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--record", "record", metavar="DIR", type=click.Path(file_okay=False),
              help="Save the admin-API answers seen, sanitised (no token, tenant id or domains), to DIR.")
@click.option("--include-addresses", is_flag=True, help="With --record: keep IP and e-mail addresses.")
def command(stack: str, root: str | None, fmt: str, record: str | None, include_addresses: bool) -> None:
    """Check the tenant connection: sign-in, permission, role, reads, region, anchor, clock, credential expiry."""
    from ..doctor import run_doctor, sanitise, write_record
    from ..connect import open_client

    stack_obj = load_stack_arg(stack, root)
    base = project_root(resolve_stack_path(stack, root))

    def factory(observer: Observer) -> ExoClient:
        return open_client(stack_obj.tenant, env=os.environ, state_dir=emulator_state_dir(root=base),
                           observer=observer)

    report, seen = run_doctor(stack_obj.tenant, factory)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"mailflow doctor: {report.tenant}")
        for check in report.checks:
            click.echo(f"  {_MARK[check.status]}  {check.name}: {check.detail}")
            if check.fix and check.status in ("fail", "warn", "info"):
                click.echo(f"        fix: {check.fix}")
        failed = sum(c.status == "fail" for c in report.checks)
        click.echo(f"{failed} check(s) failed." if failed else "All checks passed.")
    if record:
        records, scrub = sanitise(seen, report.config or stack_obj.tenant, include_addresses=include_addresses)
        files = write_record(Path(record), records, report, scrub)
        click.echo(f"recorded {len(files)} file(s) in {record} (sanitised)", err=True)
    raise SystemExit(0 if report.ok else 1)

