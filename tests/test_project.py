"""Project promises that are easy to break by accident.

- `.ci/run` runs exactly the README's test command (the README is what a new engineer copies);
- every runtime and test dependency is pinned to a range with an upper bound;
- the README's main-job command plans, applies and re-plans the dev stack.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", text, flags=re.S)


def test_the_readme_starts_with_the_main_job_and_the_test_command() -> None:
    commands = _readme_commands()
    assert len(commands) >= 2
    main_job, tests = commands[0], commands[1]
    assert "mailflow plan --stack dev" in main_job
    assert "mailflow apply --stack dev --auto-approve" in main_job
    assert main_job.rstrip().endswith("mailflow plan --stack dev --detailed-exitcode")
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _readme_commands()[1].strip()
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command_lines = [line for line in script.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert command_lines == [test_command]
    assert "set -euo pipefail" in script  # pytest's exit code 5 (nothing collected) must fail the run


def test_every_dependency_is_pinned_to_a_bounded_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    unbounded = [r for r in requirements if ">=" not in r or "<" not in r.split(">=", 1)[1]]
    assert unbounded == []
