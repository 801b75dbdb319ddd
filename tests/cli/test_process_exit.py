"""How a ``mailflow`` process ends: it skips the interpreter's object-by-object teardown, and nothing else.

Matrix (each a real child process, what a shell or a CI job sees):
- exit codes 0, 1 and 2 (plan --detailed-exitcode with changes) come through unchanged;
- output larger than a pipe buffer arrives whole, on stdout and stderr alike, in the order written;
- atexit handlers still run, after the command's output (the in-process emulator's clean-up is one);
- a profiler or tracer keeps the normal exit, so its report at exit is still written;
- a non-daemon thread still keeps the process alive until it ends, as the interpreter would;
- an in-process caller (CliRunner) still gets a SystemExit instead of a process that disappears;
- a plan's objects stay alive to the process's end (freeing them one by one as the command returns is time the
  exit saves), but only in a process of its own: after an in-process plan, none is left.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from o365_mailflow.cli import main

ROOT = Path(__file__).resolve().parents[2]

BROKEN = """\
tenant:
  emulator: true
inboundConnectors:
"""


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}, "PYTHONPATH": str(ROOT),
           "NO_COLOR": "1", "MAILFLOW_STATE_DIR": str(cwd / ".state")}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


MAIN = "from o365_mailflow.cli import main; main()"
WITH_ATEXIT = "import atexit; atexit.register(lambda: print('atexit ran', flush=True)); " + MAIN


def _broken_stacks(tmp_path: Path, count: int) -> list[str]:
    paths = []
    for i in range(count):
        path = tmp_path / f"broken{i:03}.yaml"
        path.write_text(BROKEN + "".join(f"  - name: c{j}\n    connectorType: Bogus\n" for j in range(20)),
                        encoding="utf-8")
        paths.append(str(path))
    return paths


def test_large_output_arrives_whole_with_the_exit_code_and_then_atexit_handlers_run(tmp_path: Path) -> None:
    files = _broken_stacks(tmp_path, 40)  # about 0.5 MB of JSON: many pipe buffers
    result = _run(WITH_ATEXIT, "validate", "--format", "json", *files, cwd=tmp_path)
    assert result.returncode == 1
    body, _, tail = result.stdout.rpartition("}")
    report = json.loads(body + "}")
    assert [f["file"] for f in report["files"]] == files
    # two errors per connector (connectorType Bogus, senderDomains missing), each with its diagnostic
    assert [(f["errors"], len(f["diagnostics"])) for f in report["files"]] == [(40, 40)] * 40
    assert tail.strip() == "atexit ran"


# Printed by an atexit handler: how many plans are still alive when the process ends.
COUNT_PLANS = ("import atexit, gc\n"
               "def count():\n"
               "    from o365_mailflow.plan import Plan\n"
               "    alive = sum(isinstance(o, Plan) for o in gc.get_objects())\n"
               "    print('plans alive:', alive, file=__import__('sys').stderr)\n"
               "atexit.register(count)\n")


def test_exit_codes_zero_and_two_come_through_and_an_in_process_emulator_is_cleaned_up(tmp_path: Path) -> None:
    assert _run(MAIN, "--version", cwd=tmp_path).returncode == 0
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text(
        "tenant:\n  emulator: true\nacceptedDomains:\n  - domainName: fabrikam.com\n    domainType: InternalRelay\n",
        encoding="utf-8")
    plan = _run(MAIN, "plan", "--stack", "dev", "--root", str(tmp_path), "--detailed-exitcode", cwd=tmp_path)
    assert plan.returncode == 2, plan.stderr
    assert plan.stdout.startswith("Stack 'dev' on emulated tenant")
    assert plan.stdout.rstrip().endswith("unchanged.")  # the summary, the last line written
    # returning normally (exit 0), the command would free its plan as it returns: held to the end instead
    plan = _run(COUNT_PLANS + MAIN, "plan", "--stack", "dev", "--root", str(tmp_path), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "plans alive: 1" in plan.stderr
    # the emulator this process started is stopped by its atexit handler, which removes its server.json
    assert not (tmp_path / ".state" / "emulator" / "server.json").exists()


def test_a_profiler_still_writes_its_report_at_exit(tmp_path: Path) -> None:
    out = tmp_path / "out.prof"
    script = tmp_path / "run.py"
    script.write_text(MAIN + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), str(script), "--version"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def test_a_non_daemon_thread_still_finishes_before_the_process_ends(tmp_path: Path) -> None:
    code = ("import threading, time\n"
            "def late():\n    time.sleep(0.5)\n    print('thread finished', flush=True)\n"
            "threading.Thread(target=late).start()\n" + MAIN)
    result = _run(code, "--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.rstrip().endswith("thread finished")


@pytest.mark.parametrize("args", [["--version"], ["validate", "missing.yaml"]], ids=["success", "failure"])
def test_an_in_process_caller_gets_a_system_exit(args: list[str], tmp_path: Path) -> None:
    # CliRunner turns the SystemExit into exit_code; had the process ended instead, this test run would be gone
    result = CliRunner().invoke(main, args)
    assert result.exit_code == (0 if args == ["--version"] else 1)


def test_an_in_process_plan_leaves_nothing_behind(tmp_path: Path, emulator_tenant: object) -> None:
    from reconcile_helpers import PARTNER_STACK, Project, Tenant

    from o365_mailflow.plan import Plan

    project = Project(tmp_path, Tenant(emulator_tenant))
    project.write_stack(PARTNER_STACK)
    for _ in range(3):
        assert project.run("plan", "--stack", "test").exit_code == 0
    gc.collect()
    assert sum(isinstance(o, Plan) for o in gc.get_objects()) == 0
