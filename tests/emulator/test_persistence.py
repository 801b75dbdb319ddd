"""State survives restarts, and servers are found and reused through ``server.json``.

Matrix:
- restart on the same state directory: tenants (default and added), objects, the CA and the token-signing
  key are kept (a token issued before the restart still works after it);
- ``POST /_emulator/reset``: one tenant's objects emptied, or everything back to the seed;
- one server per state directory: a second one is refused (EmulatorBusy);
- ``ensure_running``: starts an in-process server and records it, reuses it on a second call, reuses a
  ``mailflow emulator serve`` started in another process; ``MAILFLOW_STATE_DIR`` wins over the project default;
- ``mailflow emulator serve`` prints endpoint, tenant, app credentials and CA, and stops on Ctrl-C (SIGINT),
  removing its ``server.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from mailflow_testing import EXCHANGE_SCOPE, create_tenant, default_app_token
from o365_mailflow.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT_ID,
    EmulatorBusy,
    EmulatorServer,
    ensure_running,
    read_server_json,
)

ROOT = Path(__file__).resolve().parents[2]


def _default_token(server: EmulatorServer) -> str:
    return str(default_app_token(server)["access_token"])


def _invoke(server: EmulatorServer, token: str, cmdlet: str, params: dict[str, Any] | None = None,
            tenant: str = DEFAULT_TENANT_ID) -> requests.Response:
    return requests.post(
        f"{server.base_url}/adminapi/beta/{tenant}/InvokeCommand",
        json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": params or {}}},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(server.ca_path),
        timeout=30,
    )


def test_objects_tenants_ca_and_signing_key_survive_a_restart(tmp_path: Path) -> None:
    first = EmulatorServer(tmp_path).start()
    try:
        token = _default_token(first)
        created = _invoke(first, token, "New-InboundConnector",
                          {"Name": "survivor", "ConnectorType": "Partner", "SenderDomains": ["contoso.com"]})
        assert created.status_code == 200
        extra = create_tenant(first.base_url, first.ca_path)
        extra_token = extra.token()
        assert extra.invoke("New-InboundConnector", {"Name": "extra", "ConnectorType": "Partner",
                                                     "SenderDomains": ["*"]}, token=extra_token).status_code == 200
        ca_before = first.ca_path.read_bytes()
    finally:
        first.stop()

    second = EmulatorServer(tmp_path).start()
    try:
        assert second.ca_path.read_bytes() == ca_before
        again = _invoke(second, token, "Get-InboundConnector", {"Identity": "survivor"})  # token from before
        assert again.status_code == 200
        assert again.json()["value"][0]["Guid"] == created.json()["value"][0]["Guid"]
        assert again.json()["value"][0]["SenderDomains"] == ["smtp:contoso.com;1"]
        other = _invoke(second, extra_token, "Get-InboundConnector", tenant=extra.tenant_id)
        assert [v["Name"] for v in other.json()["value"]] == ["extra"]
    finally:
        second.stop()


def test_a_second_server_on_the_same_state_directory_is_refused(tmp_path: Path) -> None:
    with EmulatorServer(tmp_path):
        with pytest.raises(EmulatorBusy):
            EmulatorServer(tmp_path).start()


def test_reset_empties_one_tenant_or_returns_everything_to_the_seed(tmp_path: Path) -> None:
    with EmulatorServer(tmp_path) as server:
        token = _default_token(server)
        _invoke(server, token, "New-InboundConnector", {"Name": "a", "ConnectorType": "Partner", "SenderDomains": ["*"]})
        extra = create_tenant(server.base_url, server.ca_path)
        extra.invoke("New-InboundConnector", {"Name": "b", "ConnectorType": "Partner", "SenderDomains": ["*"]})

        post = requests.post(f"{server.base_url}/_emulator/reset", json={"tenant": extra.tenant_id},
                             verify=str(server.ca_path), timeout=30)
        assert post.status_code == 200
        assert extra.invoke("Get-InboundConnector").json()["value"] == []
        assert len(extra.invoke("Get-AcceptedDomain").json()["value"]) == 4
        assert len(_invoke(server, token, "Get-InboundConnector").json()["value"]) == 1

        requests.post(f"{server.base_url}/_emulator/reset", verify=str(server.ca_path), timeout=30).raise_for_status()
        assert _invoke(server, token, "Get-InboundConnector").json()["value"] == []
        tenants = requests.get(f"{server.base_url}/_emulator/tenants", verify=str(server.ca_path), timeout=30).json()
        assert [t["tenant_id"] for t in tenants["value"]] == [DEFAULT_TENANT_ID]


def test_ensure_running_starts_once_records_it_and_reuses_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    info = ensure_running(state)
    assert info.tenant_id == DEFAULT_TENANT_ID
    assert info.client_id == DEFAULT_CLIENT_ID
    assert info.client_secret == DEFAULT_CLIENT_SECRET
    assert "secret" not in repr(info).replace("client_secret=***", "")
    recorded = read_server_json(state.resolve())
    assert recorded is not None and recorded["base_url"] == info.base_url
    assert ensure_running(state).base_url == info.base_url
    health = requests.get(f"{info.base_url}/_emulator/health", verify=str(info.ca_path), timeout=30)
    assert health.status_code == 200


def test_the_state_dir_variable_wins_over_the_project_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILFLOW_STATE_DIR", str(tmp_path / "env-state"))
    project_default = tmp_path / "project" / ".mailflow" / "emulator"
    info = ensure_running(project_default)
    assert Path(info.ca_path).is_relative_to(tmp_path / "env-state")
    assert not project_default.exists()


def _serve(state: Path) -> subprocess.Popen[str]:
    # Ctrl-C as at a terminal: a suite started in the background by a non-interactive shell (`cmd &` in a script)
    # passes SIGINT down ignored, and Python then leaves it ignored, as a background job should.
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from o365_mailflow.cli.emulator import command; command()")
    return subprocess.Popen(
        # Both ports free ones: SMTP's default (2525) may be held by an emulator the developer is running.
        [sys.executable, "-c", code, "serve", "--state-dir", str(state), "--port", "0", "--smtp-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_serve_prints_what_a_client_needs_is_reused_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "served"
    process = _serve(state)
    try:
        lines = [process.stdout.readline() for _ in range(8)]  # type: ignore[union-attr]
        text = "".join(lines)
        assert "endpoint:       https://127.0.0.1:" in text
        assert DEFAULT_TENANT_ID in text and "contoso.onmicrosoft.com" in text
        assert DEFAULT_CLIENT_ID in text and DEFAULT_CLIENT_SECRET in text
        assert str(state / "tls" / "ca.pem") in text
        recorded = json.loads((state / "server.json").read_text())
        assert recorded["pid"] == process.pid
        info = ensure_running(state)  # another process: reuses the served emulator instead of starting one
        assert info.base_url == recorded["base_url"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0, err
    assert "Emulator stopped." in err
    assert not (state / "server.json").exists()


def test_serve_refuses_a_state_directory_already_served(tmp_path: Path) -> None:
    state = tmp_path / "busy"
    with EmulatorServer(state):
        process = _serve(state)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 1
        assert "already serving" in err


def test_stale_server_json_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "stale"
    state.mkdir()
    (state / "server.json").write_text(json.dumps({
        "base_url": "https://127.0.0.1:9", "ca_path": str(state / "missing.pem"), "tenant_id": "x",
        "initial_domain": "x", "client_id": "x", "client_secret": None, "pid": 999999, "started": time.time(),
    }))
    info = ensure_running(state)
    assert info.base_url != "https://127.0.0.1:9"
    assert info.tenant_id == DEFAULT_TENANT_ID


def test_a_custom_seed_serves_several_tenants_and_is_applied_once(tmp_path: Path) -> None:
    seed = {"tenants": [
        {"tenant_id": "11111111-1111-4111-8111-111111111111", "initial_domain": "first.onmicrosoft.com",
         "verified_domains": ["first.example"], "apps": [{"client_id": "22222222-2222-4222-8222-222222222222",
                                                           "client_secret": "first-secret"}]},
        {"tenant_id": "33333333-3333-4333-8333-333333333333", "initial_domain": "second.onmicrosoft.com",
         "apps": []},
    ]}
    with EmulatorServer(tmp_path, seed=seed) as server:
        assert server.default_tenant()["client_secret"] == "first-secret"
        for segment in ("first.onmicrosoft.com", "33333333-3333-4333-8333-333333333333", "first.example"):
            doc = requests.get(f"{server.base_url}/{segment}/v2.0/.well-known/openid-configuration",
                               verify=str(server.ca_path), timeout=30)
            assert doc.status_code == 200, segment
    with EmulatorServer(tmp_path) as server:  # no seed given: the state directory keeps its tenants
        listed = requests.get(f"{server.base_url}/_emulator/tenants", verify=str(server.ca_path), timeout=30).json()
        assert sorted(t["initial_domain"] for t in listed["value"]) == ["first.onmicrosoft.com",
                                                                        "second.onmicrosoft.com"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"tenant_id": "not-a-guid"}, 400),
        ({"initial_domain": "contoso.com"}, 400),
        ({"tenant_id": DEFAULT_TENANT_ID}, 409),
        ({"apps": [{"certificates": ["not a certificate"]}]}, 400),
        ({"settings": {"no_such_setting": 1}}, 400),
    ],
    ids=["bad id", "initial domain not onmicrosoft", "existing tenant", "bad certificate", "unknown setting"],
)
def test_adding_a_bad_tenant_is_refused(emulator: EmulatorServer, body: dict[str, Any], status: int) -> None:
    response = requests.post(f"{emulator.base_url}/_emulator/tenants", json=body, verify=str(emulator.ca_path),
                             timeout=30)
    assert response.status_code == status
    assert response.json()["error"]


def test_the_default_app_is_the_state_directory_s_own_even_when_restarted_without_its_seed(tmp_path: Path) -> None:
    seed = {"tenants": [{"initial_domain": "own.onmicrosoft.com", "apps": [{"client_secret": True}]}]}
    with EmulatorServer(tmp_path, seed=seed) as server:
        first = server.default_tenant()
    assert first["initial_domain"] == "own.onmicrosoft.com" and first["client_secret"]
    with EmulatorServer(tmp_path) as server:  # started with the default seed: the directory's own tenant wins
        assert server.default_tenant() == first
        token = requests.post(
            f"{server.base_url}/{first['tenant_id']}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": first["client_id"],
                  "client_secret": first["client_secret"], "scope": EXCHANGE_SCOPE},
            verify=str(server.ca_path), timeout=30,
        )
        assert token.status_code == 200
