"""Fixtures for the reconciler's end-to-end tests (helpers in ``reconcile_helpers``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import Project, Tenant


@pytest.fixture
def tenant(emulator_tenant: Any) -> Tenant:
    return Tenant(emulator_tenant)


@pytest.fixture
def project(tmp_path: Path, tenant: Tenant) -> Project:
    return Project(tmp_path, tenant)

