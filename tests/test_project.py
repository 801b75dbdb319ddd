"""Project promises that are easy to break by accident.

- `.ci/run` runs exactly the README's test command first (the README is what a new engineer copies), then the
  floors job and the deploy-lock job;
- every runtime and test dependency is pinned to a range with an upper bound, and a floor that pip can install
  (.ci/floors.py pins each one exactly for the floors job);
- the README's main-job command plans, applies and re-plans the dev stack.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def test_ci_runs_exactly_the_readme_test_command_first_then_the_floors_and_the_deploy_lock() -> None:
    test_command = _readme_commands()[1].strip()
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command_lines = [line for line in script.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    # Only system tools some tests drive may be installed first (those tests skip outside CI and say so).
    setup = [line for line in command_lines[:command_lines.index(test_command)]] if test_command in command_lines else []
    assert all(re.fullmatch(r"bash \.ci/install-[a-z]+", line) for line in setup), setup
    assert command_lines[len(setup)] == test_command
    assert "set -euo pipefail" in script  # pytest's exit code 5 (nothing collected) must fail the run
    jobs = [line.split() for line in command_lines if line.startswith("suite_with ")]
    assert jobs == [["suite_with", ".venv-floors", ".ci/floors.txt"],
                    ["suite_with", ".venv-deploy", "constraints/deploy.txt"]]
    assert "python3.11 .ci/floors.py > .ci/floors.txt" in command_lines


def test_the_floors_constraints_pin_every_dependency_at_its_floor() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(Requirement(r) for r in extra)
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "floors.py")], capture_output=True, text=True,
                         check=True).stdout
    pins = dict(line.split("==") for line in out.splitlines())
    assert sorted(canonicalize_name(n) for n in pins) == sorted(canonicalize_name(r.name) for r in requirements)
    for requirement in requirements:
        floor = pins[requirement.name]
        assert requirement.specifier.contains(floor) and f">={floor}" in str(requirement.specifier), requirement
        assert re.fullmatch(r"\d+\.\d+\.\d+", floor), f"{requirement}: name the published release, e.g. 2.3.1"


def test_every_dependency_is_pinned_to_a_bounded_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    unbounded = [r for r in requirements if ">=" not in r or "<" not in r.split(">=", 1)[1]]
    assert unbounded == []
