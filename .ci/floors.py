"""Print pip constraints pinning every dependency of pyproject.toml to its floor (the version after ``>=``).

Why: the README's test command always gets the newest versions the ranges allow, so nothing else would notice a
floor that is too low (code using a feature the floor lacks). CI installs these constraints into .venv-floors and
runs the suite there. Runtime and test dependencies alike, so the lowest versions are tested together. Transitive
dependencies are left free: they are the floors' own business.

Usage: python3.11 .ci/floors.py > constraints.txt   (fails if a dependency has no ``>=`` floor)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")
_FLOOR = re.compile(r">=\s*([^,\s]+)")


def floors(pyproject: Path = PYPROJECT) -> list[str]:
    """``name==floor`` for every requirement of [project] dependencies and optional-dependencies."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        floor = _FLOOR.search(match.group(2)) if match else None
        if match is None or floor is None:
            raise SystemExit(f"{pyproject}: {requirement!r} has no >= floor; every dependency needs one")
        pins.append(f"{match.group(1)}=={floor.group(1)}")
    return pins


if __name__ == "__main__":
    sys.stdout.write("".join(f"{pin}\n" for pin in floors()))
