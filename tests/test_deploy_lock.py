"""constraints/deploy.txt, the versions deploys install, is not stale.

Matrix: every line is an exact ``name==version`` pin; every runtime dependency of pyproject.toml is pinned to a
version its range allows (a raised floor or a new dependency without a new lock fails); every distribution a
pinned version needs is pinned too (checked through the installed metadata of each package whose installed
version is the pinned one: exactly in CI's deploy-lock venv, where all are, and in part in the README's venv); in
the deploy-lock venv nothing is pinned that nothing needs. (That the deploy workflows install with the lock is
checked in tests/gitops/test_workflows.py.)
"""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = ROOT / "constraints" / "deploy.txt"
REGENERATE = "regenerate it: .venv/bin/python .ci/lock.py after the suite passed"


def _lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_lock", ROOT / ".ci" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = _lock_module()
PINS: dict[str, str] = lock.read(LOCK_FILE)


def test_every_line_is_an_exact_pin() -> None:
    for line in LOCK_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+", line), line


@pytest.mark.parametrize("requirement", lock.runtime_requirements(), ids=str)
def test_each_runtime_dependency_is_pinned_within_its_range(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    assert name in PINS, f"{LOCK_FILE.name} does not pin {name}; {REGENERATE}"
    assert requirement.specifier.contains(PINS[name], prereleases=True), (
        f"{LOCK_FILE.name} pins {name}=={PINS[name]}, outside pyproject.toml's {requirement}; {REGENERATE}")


def _needed_by_pinned_versions() -> tuple[set[str], bool]:
    """Names that pinned versions need (following only packages installed at their pinned version), and whether
    every package reached was installed at its pinned version (then the set is exact)."""
    needed: set[str] = set()
    exact = True
    todo = [(r, set(r.extras)) for r in lock.runtime_requirements() if lock._applies(r, set())]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        needed.add(name)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            exact = False
            continue
        if installed != PINS.get(name):
            exact = False  # another version here: its requirements say nothing about the pinned one
            continue
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            if lock._applies(child, extras):
                todo.append((child, set(child.extras)))
    return needed, exact


def test_every_dependency_of_a_pinned_version_is_pinned() -> None:
    needed, _ = _needed_by_pinned_versions()
    missing = sorted(needed - set(PINS))
    assert not missing, f"{LOCK_FILE.name} misses {missing}; {REGENERATE}"


def test_in_the_locked_environment_nothing_is_pinned_that_nothing_needs() -> None:
    needed, exact = _needed_by_pinned_versions()
    if not exact:
        pytest.skip("this environment is not the lock's (CI's deploy-lock job runs this exactly)")
    assert sorted(set(PINS) - needed) == [], f"{LOCK_FILE.name} pins packages nothing needs; {REGENERATE}"
