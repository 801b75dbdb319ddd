"""What a first run against a real tenant meets, reproduced by the emulator and survived by the client (issue #14).

Matrix (each test fails on the client before #14):
- 403 without a directory role, NUL bytes declared ``Content-Encoding: gzip`` (fault ``forbidden_gzip``):
  PermissionDenied with the role advice, not requests' ContentDecodingError;
- regional redirect (fault ``redirect_to``) to another host name on :446: followed with the token, :446 rewritten
  to 443, the host pinned for later calls; a failure at the regional host is retried there; a redirect outside
  the cloud's admin hosts is refused;
- the connector tasks' own duplicate-name exceptions (ErrorInboundConnectorAlreadyExistsException, outbound twin)
  are AlreadyExists; a New-* whose write committed but whose answer was lost (fault ``drop_after_next``) is read
  back, not duplicated and not an error;
- token endpoint 503 (fault ``token_error_next``): retried with the admin API's back-off; a persisting one is a
  TokenEndpointUnavailable (a Throttled) that says to wait; an expired federated assertion names AADSTS700024;
- the anchor mailbox is the initial .onmicrosoft.com domain or the tenant GUID, never a custom domain.

The redirect test needs one test-only piece, ``tests/tests_client_portmap.LoopbackPortMap``: the emulator listens on
one port, while the client (correctly) sends the rewritten URL to port 443; the adapter changes only the TCP port of
``https://localhost``. The URL, Host header, TLS name check, redirect rules and pinning are the client's own code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest
import requests

from mailflow_testing import CASession
from tests_client_portmap import LoopbackPortMap
from o365_mailflow.client import ExoClient, RetryPolicy, TokenEndpointUnavailable
from o365_mailflow.credentials import ClientSecret, FederatedToken
from o365_mailflow.errors import AlreadyExists, AuthenticationError, PermissionDenied, Throttled, TransportError
from o365_mailflow.tenant import TenantConfig, resolve_endpoints

NO_ROLE = {"client_secret": True, "directory_roles": []}


def _client(tenant: Any, *, session: requests.Session | None = None, **retry: Any) -> ExoClient:
    return ExoClient(tenant.config, ClientSecret(tenant.client_id, tenant.client_secret), session=session,
                     retry=RetryPolicy(sleep=lambda _s: None, **retry))


def _inbound(name: str) -> dict[str, Any]:
    return {"Name": name, "ConnectorType": "Partner", "SenderDomains": ["partner.example.com"]}


# ------------------------------------------------------------------------------------------------ 1. 403 gzip


def test_a_403_whose_nul_body_is_declared_gzip_gives_the_role_advice(
    emulator_tenant_factory: Callable[..., Any],
) -> None:
    tenant = emulator_tenant_factory(apps=[NO_ROLE])
    tenant.faults(forbidden_gzip=True)
    with pytest.raises(PermissionDenied) as info:
        _client(tenant).list("InboundConnector")
    assert "Exchange Administrator" in str(info.value)
    assert info.value.status == 403


def test_the_emulator_declares_gzip_on_the_403_only_when_asked(emulator_tenant_factory: Callable[..., Any]) -> None:
    tenant = emulator_tenant_factory(apps=[NO_ROLE])
    plain = requests.post(tenant.invoke_url, json={"CmdletInput": {"CmdletName": "Get-AcceptedDomain"}},
                          headers={"Authorization": f"Bearer {tenant.token()}"}, verify=str(tenant.ca_path),
                          timeout=30)
    assert plain.status_code == 403 and "Content-Encoding" not in plain.headers
    tenant.faults(forbidden_gzip=True)
    with pytest.raises(requests.exceptions.ContentDecodingError):  # what a naive client meets
        requests.post(tenant.invoke_url, json={"CmdletInput": {"CmdletName": "Get-AcceptedDomain"}},
                      headers={"Authorization": f"Bearer {tenant.token()}"}, verify=str(tenant.ca_path), timeout=30)


# ------------------------------------------------------------------------------------------------ 2. redirects


def test_a_regional_redirect_on_port_446_is_followed_rewritten_and_pinned(emulator: Any, emulator_tenant: Any) -> None:
    emulator_tenant.faults(redirect_to="localhost:446")
    session = CASession(emulator_tenant.ca_path)
    session.mount("https://", LoopbackPortMap(urlsplit(emulator.base_url).port or 0))
    client = _client(emulator_tenant, session=session)
    assert {d["DomainName"] for d in client.list("AcceptedDomain")} >= {"contoso.com"}
    client.list("InboundConnector")
    log = emulator_tenant.requests()
    assert [e["fault"] for e in log].count("redirect") == 1  # pinned: only the first call was redirected
    served = [e for e in log if e["fault"] is None]
    assert served and all(e["host"].startswith("localhost") for e in served)
    assert all(e["status"] == 200 for e in served)  # the token went along (no 401)
    assert client.api_base == "https://localhost"  # :446 became 443


@pytest.mark.parametrize("fault", ["throttle_next", "drop_next", "error_next"])
def test_a_failure_at_the_regional_host_is_retried_there_not_redirected_again(
    emulator: Any, emulator_tenant: Any, fault: str
) -> None:
    """The retry step resends to where the redirect step ended (a 429, a dropped connection, a 503 at the
    regional host), within the same call: one redirect in all."""
    emulator_tenant.faults(redirect_to="localhost:446", **{fault: 1})
    session = CASession(emulator_tenant.ca_path)
    session.mount("https://", LoopbackPortMap(urlsplit(emulator.base_url).port or 0))
    client = _client(emulator_tenant, session=session)
    assert {d["DomainName"] for d in client.list("AcceptedDomain")} >= {"contoso.com"}
    log = emulator_tenant.requests()
    assert [e["fault"] for e in log].count("redirect") == 1
    assert [e["host"].split(":")[0] for e in log[1:]] == ["localhost", "localhost"]  # the failure, then the retry
    assert log[-1]["status"] == 200 and client.stats.retries == 2  # the redirected request and the retry


def test_a_redirect_outside_the_admin_hosts_is_refused(emulator_tenant: Any) -> None:
    emulator_tenant.faults(redirect_to="login.evil.example:446")
    with pytest.raises(TransportError, match="refusing to send the token"):
        _client(emulator_tenant).list("InboundConnector")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("outlook.office365.com", True), ("tenant-abc.outlook.office365.com", True),
     ("outlook.office365.com.evil.example", False), ("evil-outlook.office365.com", False),
     ("login.microsoftonline.com", False)],
)
def test_only_admin_hosts_of_the_cloud_may_receive_the_token(host: str, allowed: bool) -> None:
    endpoints = resolve_endpoints(TenantConfig(tenant_id="6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"))
    assert endpoints.may_receive_token(host) is allowed


# ------------------------------------------------------------------------------------------------ 4. duplicates


@pytest.mark.parametrize("noun", ["InboundConnector", "OutboundConnector"])
def test_the_connector_tasks_duplicate_name_exceptions_are_already_exists(noun: str, emulator_tenant: Any) -> None:
    client = _client(emulator_tenant)
    params = _inbound("Dup") if noun == "InboundConnector" else {
        "Name": "Dup", "ConnectorType": "Partner", "UseMXRecord": True, "RecipientDomains": ["x.example.net"]}
    client.new(noun, params)
    raw = emulator_tenant.invoke(f"New-{noun}", {**params, "Name": "DUP"})
    assert f"Error{noun}AlreadyExistsException" in raw.json()["error"]["details"][0]["message"]
    with pytest.raises(AlreadyExists):
        client.new(noun, {**params, "Name": "DUP"})


def test_a_create_committed_but_whose_answer_was_lost_is_read_back_once(emulator_tenant: Any) -> None:
    emulator_tenant.faults(drop_after_next=1, cmdlets=["New-InboundConnector"])
    result = _client(emulator_tenant).new("InboundConnector", _inbound("Lost answer"))
    assert result.values[0]["Name"] == "Lost answer"
    assert any("answer was lost" in w for w in result.warnings)
    news = [e for e in emulator_tenant.requests() if e["cmdlet"] == "New-InboundConnector"]
    assert [e["fault"] for e in news] == ["drop_after", None]  # the first one ran, its answer was dropped
    listed = _client(emulator_tenant).list("InboundConnector")
    assert [c["Name"] for c in listed] == ["Lost answer"]


# ------------------------------------------------------------------------------------------------ 5. token 5xx


def test_a_token_endpoint_503_is_retried(emulator_tenant: Any) -> None:
    emulator_tenant.faults(token_error_next=2, error_status=503)
    sleeps: list[float] = []
    client = ExoClient(emulator_tenant.config, ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret),
                       retry=RetryPolicy(sleep=sleeps.append, random=lambda: 0.5))
    client.list("AcceptedDomain")
    tokens = emulator_tenant.requests("token")
    assert [t["status"] for t in tokens] == [503, 503, 200]
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]  # the admin API's back-off


def test_a_persisting_token_endpoint_failure_is_typed_and_says_to_wait(emulator_tenant: Any) -> None:
    emulator_tenant.faults(token_error_next=100, error_status=503)
    with pytest.raises(TokenEndpointUnavailable) as info:
        _client(emulator_tenant, max_retries=2).list("AcceptedDomain")
    assert isinstance(info.value, Throttled)
    assert "token endpoint" in str(info.value) and "wait" in str(info.value)
    assert [t["status"] for t in emulator_tenant.requests("token")] == [503, 503, 503]


def test_an_expired_federated_assertion_names_the_expiry(
    emulator: Any, emulator_tenant_factory: Callable[..., Any], tmp_path: Path
) -> None:
    subject = "repo:contoso/mailflow:ref:refs/heads/main"
    tenant = emulator_tenant_factory(apps=[{"federated_credentials": [
        {"issuer": f"{emulator.base_url}/_emulator/oidc", "subject": subject}]}])
    minted = requests.post(f"{emulator.base_url}/_emulator/federated-token",
                           json={"subject": subject, "lifetime": -600}, verify=str(emulator.ca_path), timeout=30)
    token_file = tmp_path / "token"
    token_file.write_text(minted.json()["token"])
    client = ExoClient(tenant.config, FederatedToken(tenant.client_id, str(token_file)),
                       retry=RetryPolicy(sleep=lambda _s: None))
    with pytest.raises(AuthenticationError, match="AADSTS700024") as info:
        client.list("AcceptedDomain")
    assert "expired" in str(info.value)
    assert not isinstance(info.value, TokenEndpointUnavailable)


# ------------------------------------------------------------------------------------------------ 6. anchor


@pytest.mark.parametrize("initial_domain", ["contoso.com", None], ids=["custom-domain", "none"])
def test_the_anchor_is_the_tenant_guid_when_no_initial_domain_is_known(
    emulator_tenant: Any, initial_domain: str | None
) -> None:
    from dataclasses import replace

    config = replace(emulator_tenant.config, initial_domain=initial_domain)
    client = ExoClient(config, ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret))
    client.list("AcceptedDomain")
    anchors = {e["anchor"] for e in emulator_tenant.requests()}
    assert anchors == {f"APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{emulator_tenant.tenant_id}"}


def test_the_anchor_uses_the_initial_onmicrosoft_domain(emulator_tenant: Any) -> None:
    _client(emulator_tenant).list("AcceptedDomain")
    anchors = {e["anchor"] for e in emulator_tenant.requests()}
    assert anchors == {f"APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{emulator_tenant.initial_domain}"}


# ------------------------------------------------------------------------------------------------ doctor


def test_doctor_warns_about_a_certificate_close_to_expiry_with_its_date(
    emulator_tenant_factory: Callable[..., Any], cert_files: Any
) -> None:
    from o365_mailflow.credentials import Certificate
    from o365_mailflow.doctor import run_doctor

    tenant = emulator_tenant_factory(apps=[{"certificates": [cert_files.cert_pem.decode()]}])
    credential = Certificate(tenant.client_id, str(cert_files.pfx), cert_files.password)  # valid for 30 days
    report, _ = run_doctor(tenant.config, lambda observer: ExoClient(tenant.config, credential, observer=observer))
    expiry = next(c for c in report.checks if c.name == "credential expiry")
    assert expiry.status == "warn" and "expires on" in expiry.detail
    assert report.ok  # a warning does not fail CI
