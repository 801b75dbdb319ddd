"""Fixtures of the conformance matrix: one emulated tenant per test module, reset between cases.

Why: the matrix has a case per field of every spec and per front end; a tenant (or a server) per case would
cost more than the cases. The session's emulator (tests/conftest.py) serves every module; each module gets its
own tenant with the verified domains the samples use, and each case starts by emptying it through the
emulator's control API (``POST /_emulator/reset`` with the tenant: seed objects back, faults cleared) and its
request log (``DELETE /_emulator/requests``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from mailflow_testing import create_tenant

# Reused, not copied: the CLI tests' helpers (a project directory with stack files, the CLI run in-process) and
# the provider tests' engine driver (the package ``providers`` under tests/, as pytest itself imports it).
_TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [p for p in (str(_TESTS / "cli"), str(_TESTS)) if p not in sys.path]

from conformance_matrix import VERIFIED  # noqa: E402 - the path above first
from conformance_stories import reset  # noqa: E402


@pytest.fixture(scope="module")
def module_tenant(emulator: Any) -> Iterator[Any]:
    tenant = create_tenant(emulator.base_url, emulator.ca_path, verified_domains=VERIFIED)
    yield tenant
    reset(tenant)
