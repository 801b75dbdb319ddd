"""The README's main job on a fresh checkout: plan, apply and re-plan `stacks/dev.yaml` against the embedded
emulated tenant, with no set-up (the emulator starts by itself, its state in $MAILFLOW_STATE_DIR).

Run as real processes (the emulator lives and dies with each), from the project directory, without --root:
the commands find `stacks/dev.yaml` from the current directory as a user's shell would. Output to a pipe
carries no colour codes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mailflow_testing import MAILFLOW_PROCESS

ROOT = Path(__file__).resolve().parents[2]


def _mailflow(cwd: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILFLOW_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}
    env.pop("NO_COLOR", None)
    return subprocess.run(
        [*MAILFLOW_PROCESS, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_readme_main_job_plans_applies_and_then_finds_nothing_to_change(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    shutil.copy(ROOT / "stacks" / "dev.yaml", tmp_path / "stacks" / "dev.yaml")
    state = tmp_path / "state"

    plan = _mailflow(tmp_path, state, "plan", "--stack", "dev")
    assert plan.returncode == 0, plan.stderr
    assert "to create" in plan.stdout and "\x1b[" not in plan.stdout

    apply = _mailflow(tmp_path, state, "apply", "--stack", "dev", "--auto-approve")
    assert apply.returncode == 0, apply.stderr + apply.stdout
    assert "Apply complete" in apply.stdout

    again = _mailflow(tmp_path, state, "plan", "--stack", "dev", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    assert (state / "emulator").is_dir()  # the emulated tenant's state stays where the user said
