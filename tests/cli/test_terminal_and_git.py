"""The CLI as a person at a terminal and a CI job with git see it.

Matrix:
- on a terminal, apply shows the plan in colour and asks; answering no writes nothing; answering yes applies;
- ``--baseline git:REF`` reads the stack file as committed at REF: a field changed in the tenant since is drift,
  and a stack file that did not exist at REF makes every existing object an adoption.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from mailflow_testing import MAILFLOW_PROCESS
from reconcile_helpers import PARTNER_STACK as STACK, Project

ROOT = Path(__file__).resolve().parents[2]


def _read_until(fd: int, marker: str, deadline: float) -> str:
    out = b""
    while marker.encode() not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def _apply_on_a_terminal(project: Project, answer: str) -> tuple[str, int]:
    """Run `mailflow apply` with a pseudo-terminal as stdin/stdout, answer the prompt, return output and code."""
    master, slave = os.openpty()
    env = {**os.environ, **project.tenant.env, "MAILFLOW_STATE_DIR": str(project.root / ".state"),
           "PYTHONPATH": str(ROOT)}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [*MAILFLOW_PROCESS, "apply", "--stack", "test",
         "--root", str(project.root)],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )
    os.close(slave)
    try:
        deadline = time.monotonic() + 60
        shown = _read_until(master, "Enter a value:", deadline)
        os.write(master, f"{answer}\n".encode())
        shown += _read_until(master, "\x00never\x00", min(deadline, time.monotonic() + 30))
        return shown, proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(("answer", "writes"), [("no", 0), ("y", 0), ("yes", 1)], ids=["no", "y-is-not-yes", "yes"])
def test_on_a_terminal_apply_shows_the_plan_in_colour_and_only_yes_approves(project: Project, answer: str,
                                                                            writes: int) -> None:
    project.write_stack(STACK)
    shown, code = _apply_on_a_terminal(project, answer)
    assert "Do you want to apply these changes to" in shown and "Only 'yes' will be accepted" in shown
    assert "\x1b[" in shown  # colour, because stdout is a terminal
    assert len(project.tenant.writes()) == writes
    assert code == (0 if writes else 1), shown
    assert ("Apply cancelled" in shown) == (not writes)
    if writes:
        plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
        assert "[1/1] + create InboundConnector 'From partner' ... done (" in plain, plain


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
                    *args], cwd=cwd, check=True, capture_output=True)


def test_a_git_baseline_marks_drift_and_treats_a_new_stack_file_as_adoption(project: Project) -> None:
    _git(project.root, "init", "-q")
    project.write_stack(STACK)
    result = project.run("apply", "--stack", "test", "--auto-approve")
    assert result.exit_code == 0, result.output
    _git(project.root, "add", "stacks/test.yaml")
    _git(project.root, "commit", "-q", "-m", "stack")
    project.tenant.admin_client().set("InboundConnector", "From partner", {"RequireTls": False})

    plan = project.plan_json("--baseline", "git:HEAD")
    change = next(c for c in plan["changes"] if c["name"] == "From partner")
    assert [(c["field"], c["drift"]) for c in change["changes"]] == [("requireTls", True)]

    project.write_stack(STACK.replace("  - name: From partner\n", "  - name: From partner\n    adopt: true\n"),
                        name="other")
    result = project.run("plan", "--stack", "other", "--format", "json", "--baseline", "git:HEAD")
    assert result.exit_code == 0, result.output
    other = json.loads(result.stdout)
    assert next(c for c in other["changes"] if c["name"] == "From partner")["action"] == "adopt"

    bad = project.run("plan", "--stack", "test", "--baseline", "git:no-such-ref")
    assert bad.exit_code == 1 and "unknown git revision" in bad.stderr
