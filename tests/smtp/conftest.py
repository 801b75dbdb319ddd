"""Fixtures for the SMTP rehearsal tests (helpers in ``smtp_helpers``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The reconciler's Project helper (a project directory whose stacks point at one tenant, the CLI run in-process).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from smtp_helpers import FrontDoor, Sink, create_relay_tenant  # noqa: E402


@pytest.fixture
def relay_tenant(emulator: Any) -> Any:
    return create_relay_tenant(emulator)


@pytest.fixture
def front_door(emulator: Any, relay_tenant: Any) -> FrontDoor:
    return FrontDoor(emulator, relay_tenant.tenant_id)


@pytest.fixture
def project(tmp_path: Path, relay_tenant: Any) -> Any:
    from reconcile_helpers import Project, Tenant

    return Project(tmp_path, Tenant(relay_tenant))


@pytest.fixture
def sinks() -> Iterator[list[Sink]]:
    made: list[Sink] = []
    yield made
    for sink in made:
        sink.stop()
