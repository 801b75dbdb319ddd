"""Fixtures for the reconciler's end-to-end tests (helpers in ``reconcile_helpers``)."""

from __future__ import annotations

from collections.abc import Callable
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


@pytest.fixture
def roleless_project(tmp_path: Path, emulator_tenant_factory: Callable[..., Any]) -> Project:
    """A project on a tenant whose app holds no directory role: the admin API answers 403, with the service's
    NUL-byte body that declares gzip but is not (fault ``forbidden_gzip``)."""
    tenant = emulator_tenant_factory(apps=[{"client_secret": True, "directory_roles": []}])
    tenant.faults(forbidden_gzip=True)
    return Project(tmp_path, Tenant(tenant))

