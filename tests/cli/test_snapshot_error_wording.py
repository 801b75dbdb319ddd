"""A failed tenant read says what to fix: sign-in and permission failures keep their own advice.

Reviewer finding: ``SnapshotError`` told the admin to "check connectivity and permissions" whatever stopped the
read, so an app without the Exchange role (HTTP 403) or without Exchange.ManageAsApp (HTTP 401) sent them to the
network. ``plan`` and ``export`` run against emulated tenants whose app lacks one grant; ``take_snapshot`` is
also checked directly with each kind of failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from reconcile_helpers import Project, Tenant

from o365_mailflow.errors import AuthenticationError, PermissionDenied, TransportError
from o365_mailflow.snapshot import SnapshotError, take_snapshot

STACK = """\
inboundConnectors:
  - name: From partner
    connectorType: Partner
    senderDomains: [partner.example.com]
"""

NO_ROLE = {"client_secret": True, "directory_roles": []}  # the admin API answers 403
NO_APP_PERMISSION = {"client_secret": True, "app_roles": []}  # no Exchange.ManageAsApp: 401


def _project(tmp_path: Path, factory: Callable[..., Any], app: dict[str, Any]) -> Project:
    project = Project(tmp_path, Tenant(factory(apps=[app])))
    project.write_stack(STACK)
    return project


@pytest.mark.parametrize("command", [["plan", "--stack", "test"], ["export", "--stack", "test", "--out", "-"]],
                         ids=["plan", "export"])
def test_a_missing_role_names_the_role_not_connectivity(
        tmp_path: Path, emulator_tenant_factory: Callable[..., Any], command: list[str]) -> None:
    project = _project(tmp_path, emulator_tenant_factory, NO_ROLE)
    result = project.run(*command)
    assert result.exit_code == 1, result.output
    assert "Exchange Administrator" in result.stderr, result.stderr
    assert "HTTP 403" in result.stderr, result.stderr
    assert "connectivity" not in result.stderr, result.stderr
    assert "Nothing was planned or changed" in result.stderr, result.stderr


def test_a_missing_app_permission_is_a_sign_in_failure(
        tmp_path: Path, emulator_tenant_factory: Callable[..., Any]) -> None:
    project = _project(tmp_path, emulator_tenant_factory, NO_APP_PERMISSION)
    result = project.run("plan", "--stack", "test")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: cannot sign in to the tenant:"), result.stderr
    assert "Exchange.ManageAsApp" in result.stderr, result.stderr
    assert "connectivity" not in result.stderr, result.stderr


class _Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def list(self, noun: str) -> list[dict[str, Any]]:
        raise self.exc


@pytest.mark.parametrize(("cause", "kept", "advice"), [
    (AuthenticationError("the client secret for app 123 is wrong; create a new one"), "create a new one",
     "cannot sign in to the tenant"),
    (PermissionDenied("assign the app the 'Exchange Administrator' role"), "Exchange Administrator",
     "may not read"),
    (TransportError("connection refused"), "connection refused", "Check connectivity"),
], ids=["authentication", "permission", "transport"])
def test_the_snapshot_error_keeps_the_cause_advice(cause: Exception, kept: str, advice: str) -> None:
    with pytest.raises(SnapshotError) as info:
        take_snapshot(_Failing(cause))
    message = str(info.value)
    assert kept in message and advice in message, message
    assert info.value.cause is cause
    if not isinstance(cause, TransportError):
        assert "connectivity" not in message, message
