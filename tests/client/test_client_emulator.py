"""The client against the emulated tenant over HTTPS: the real MSAL, TLS and admin-API path.

Matrix:
- credentials: client secret, PFX (password), PEM key+cert, federated token file -> token -> list connectors;
- paging at page size 2: every object once, the same body re-POSTed to each nextLink;
- faults: 429 (Retry-After), 503, 504, the concurrency text, dropped connections -> survived within 5 retries,
  Throttled (or ConnectionRetriesExhausted, also a Throttled) beyond;
- a 401 for an expired token refreshes the token once: success if the new token is good, AuthenticationError
  if not;
- error types from real answers: NotFound, AlreadyExists, ServiceValidationError, AuthenticationError (no
  Exchange.ManageAsApp, wrong secret), PermissionDenied (no directory role), TransportError (untrusted CA);
- outbound listing includes test-mode connectors under both readings of -IncludeTestModeConnectors;
- read-after-create: get(retry_not_found=True) waits out replication lag;
- secrecy: no secret, access token or private key in log records (DEBUG, all loggers) or exception text;
- open_client with ``emulator: true`` reaches the well-known tenant.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import msal
import pytest
import requests

from o365_mailflow.client import ExoClient, RetryPolicy
from o365_mailflow.credentials import Certificate, ClientSecret, FederatedToken
from o365_mailflow.errors import (
    AlreadyExists,
    AuthenticationError,
    NotFound,
    PermissionDenied,
    ServiceValidationError,
    Throttled,
    TransportError,
)
from o365_mailflow.connect import open_client
from o365_mailflow.tenant import TenantConfig

SUBJECT = "repo:contoso/mailflow:ref:refs/heads/main"


def fast_retry(**overrides: Any) -> RetryPolicy:
    return RetryPolicy(sleep=lambda _s: None, **overrides)


def secret_client(tenant: Any, **retry: Any) -> ExoClient:
    return ExoClient(tenant.config, ClientSecret(tenant.client_id, tenant.client_secret), retry=fast_retry(**retry))


def inbound(name: str) -> dict[str, Any]:
    return {"Name": name, "ConnectorType": "Partner", "SenderDomains": [f"{name.lower().replace(' ', '-')}.example.com"]}


def outbound(name: str, *, test_mode: bool = False) -> dict[str, Any]:
    return {"Name": name, "ConnectorType": "Partner", "UseMXRecord": True,
            "RecipientDomains": [f"{name.lower().replace(' ', '-')}.example.net"], "TestMode": test_mode}


def federated_token_file(tenant: Any, path: Path) -> Path:
    response = requests.post(f"{tenant.base_url}/_emulator/federated-token", json={"subject": SUBJECT},
                             verify=str(tenant.ca_path), timeout=30)
    assert response.status_code == 200, response.text
    path.write_text(response.json()["token"])
    return path


@pytest.mark.parametrize("kind", ["secret", "pfx", "pem", "pem-encrypted", "federated"])
def test_each_credential_kind_gets_a_token_and_lists_connectors(
    kind: str, emulator: Any, emulator_tenant_factory: Callable[..., Any], cert_files: Any, tmp_path: Path
) -> None:
    issuer = f"{emulator.base_url}/_emulator/oidc"
    app: dict[str, Any] = {
        "secret": {"client_secret": True},
        "pfx": {"certificates": [cert_files.cert_pem.decode()]},
        "pem": {"certificates": [cert_files.cert_pem.decode()]},
        "pem-encrypted": {"certificates": [cert_files.cert_pem.decode()]},
        "federated": {"federated_credentials": [{"issuer": issuer, "subject": SUBJECT}]},
    }[kind]
    tenant = emulator_tenant_factory(apps=[app])
    credential: Any = {
        "secret": lambda: ClientSecret(tenant.client_id, tenant.client_secret or ""),
        "pfx": lambda: Certificate(tenant.client_id, str(cert_files.pfx), cert_files.password),
        "pem": lambda: Certificate(tenant.client_id, str(cert_files.pem)),
        "pem-encrypted": lambda: Certificate(tenant.client_id, str(cert_files.pem_encrypted), cert_files.password),
        "federated": lambda: FederatedToken(tenant.client_id, str(federated_token_file(tenant, tmp_path / "t"))),
    }[kind]()
    client = ExoClient(tenant.config, credential, retry=fast_retry())
    client.new("InboundConnector", inbound("Partner A"))
    assert [c["Name"] for c in client.list("InboundConnector")] == ["Partner A"]
    assert [e["status"] for e in tenant.requests(kind="token")] == [200]  # one token, reused from the cache


def test_listing_follows_every_page_at_page_size_two(emulator_tenant: Any) -> None:
    client = secret_client(emulator_tenant)
    names = [f"Partner {i}" for i in range(5)]
    for name in names:
        client.new("InboundConnector", inbound(name))
    emulator_tenant.clear_requests()
    before = client.stats.requests
    result = client.invoke("Get-InboundConnector", {"ResultSize": "Unlimited"}, page_size=2)
    assert sorted(v["Name"] for v in result.values) == names
    assert not any("@" in key for v in result.values for key in v)
    log = emulator_tenant.requests()
    assert [e["page"] for e in log] == [False, True, True]
    assert all(e["parameters"] == {"ResultSize": "Unlimited"} for e in log)
    assert client.stats.requests - before == 3
    assert result.warnings == []


FAULTS = {
    "429": {"throttle_next": 1, "retry_after": 0.5},
    "503": {"error_next": 1, "error_status": 503},
    "504": {"error_next": 1, "error_status": 504},
    "concurrency-text": {"concurrency_next": 1},
    "dropped-connection": {"drop_next": 1},
}


def _times(knobs: dict[str, Any], n: int) -> dict[str, Any]:
    return {k: (n if k.endswith("_next") else v) for k, v in knobs.items()}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_injected_faults_are_survived_within_the_retry_cap(fault: str, emulator_tenant: Any) -> None:
    waits: list[float] = []
    client = ExoClient(emulator_tenant.config,
                       ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret),
                       retry=RetryPolicy(sleep=waits.append))
    client.list("AcceptedDomain")  # token first, so only InvokeCommand requests are faulted below
    emulator_tenant.faults(**_times(FAULTS[fault], 5))
    domains = client.list("AcceptedDomain")
    assert "contoso.com" in {d["DomainName"] for d in domains}
    assert client.stats.retries == 5
    if fault == "429":
        assert waits == [0.5] * 5  # the service's fractional Retry-After, honoured exactly


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_faults_beyond_the_retry_cap_are_reported_as_throttled(fault: str, emulator_tenant: Any) -> None:
    client = secret_client(emulator_tenant)
    emulator_tenant.faults(**_times(FAULTS[fault], 6))
    with pytest.raises(Throttled) as info:
        client.list("InboundConnector")
    assert "Get-InboundConnector" in str(info.value)
    assert len(emulator_tenant.requests()) == 6


def _pretend_cached_tokens_are_fresh(client: ExoClient) -> None:
    """Make MSAL believe its (server-side expired) token is good for an hour: a clock skew or a revocation."""
    app = client._tokens._app
    assert app is not None
    changed = 0
    for item in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, now=0)):
        later = str(int(time.time()) + 3600)
        app.token_cache.modify(msal.TokenCache.CredentialType.ACCESS_TOKEN, item,
                               {"expires_on": later, "extended_expires_on": later})
        changed += 1
    assert changed == 1


def test_a_401_for_an_expired_token_refreshes_it_once_and_succeeds(emulator_tenant: Any) -> None:
    client = secret_client(emulator_tenant)
    emulator_tenant.faults(token_lifetime=-60)  # the next token is already expired when issued
    client._tokens.token()
    _pretend_cached_tokens_are_fresh(client)
    emulator_tenant.clear_faults()
    assert client.list("InboundConnector") == []
    assert [e["status"] for e in emulator_tenant.requests()] == [401, 200]
    assert len(emulator_tenant.requests(kind="token")) == 2


def test_a_second_401_after_the_refresh_is_an_authentication_error(emulator_tenant: Any) -> None:
    client = secret_client(emulator_tenant)
    emulator_tenant.faults(token_lifetime=-60)  # every token is expired: the refresh cannot help
    with pytest.raises(AuthenticationError, match="Exchange.ManageAsApp"):
        client.list("InboundConnector")
    assert [e["status"] for e in emulator_tenant.requests()] == [401, 401]


def test_not_found_already_exists_and_validation_errors_are_typed(emulator_tenant: Any) -> None:
    client = secret_client(emulator_tenant)
    with pytest.raises(NotFound) as missing:
        client.get("InboundConnector", "No such connector")
    assert missing.value.cmdlet == "Get-InboundConnector"
    with pytest.raises(NotFound, match="couldn't be found"):
        client.set("InboundConnector", "No such connector", {"Comment": "x"})
    client.new("InboundConnector", inbound("Partner A"))
    with pytest.raises(AlreadyExists, match="already exists"):
        client.new("InboundConnector", inbound("Partner A"))
    with pytest.raises(ServiceValidationError) as invalid:
        client.new("InboundConnector", {**inbound("Partner B"), "ConnectorType": "Sideways"})
    assert invalid.value.exception_type.endswith("Exception")
    assert "Sideways" in str(invalid.value)


@pytest.mark.parametrize(
    ("app", "expected", "hint"),
    [
        ({"client_secret": True, "app_roles": []}, AuthenticationError, "Exchange.ManageAsApp"),
        ({"client_secret": True, "directory_roles": []}, PermissionDenied, "Exchange Administrator"),
    ],
    ids=["no-app-permission-401", "no-directory-role-403"],
)
def test_missing_permissions_say_what_to_fix(app: dict[str, Any], expected: type, hint: str,
                                             emulator_tenant_factory: Callable[..., Any]) -> None:
    tenant = emulator_tenant_factory(apps=[app])
    with pytest.raises(expected, match=hint):
        secret_client(tenant).list("InboundConnector")


def test_a_wrong_secret_is_an_authentication_error_from_entra(emulator_tenant: Any) -> None:
    client = ExoClient(emulator_tenant.config, ClientSecret(emulator_tenant.client_id, "not-the-secret-123"))
    with pytest.raises(AuthenticationError) as info:
        client.list("InboundConnector")
    assert "invalid_client" in str(info.value)
    assert "not-the-secret-123" not in str(info.value)


def test_an_untrusted_certificate_is_a_transport_error_and_verification_stays_on(
    emulator_tenant: Any, cert_files: Any, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(cert_files.cert_pem)
    config = TenantConfig(tenant_id=emulator_tenant.tenant_id, initial_domain=emulator_tenant.initial_domain,
                          endpoint=emulator_tenant.base_url, authority=emulator_tenant.base_url,
                          scope=emulator_tenant.config.scope, ca_file=str(other_ca))
    with pytest.raises(TransportError, match="TLS verification failed"):
        ExoClient(config, ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret)).list("InboundConnector")


@pytest.mark.parametrize("reading", ["only", "include"])
def test_outbound_listing_includes_test_mode_connectors_under_both_readings(
    reading: str, emulator_tenant_factory: Callable[..., Any]
) -> None:
    tenant = emulator_tenant_factory(settings={"test_mode_listing": reading})
    client = secret_client(tenant)
    client.new("OutboundConnector", outbound("Live route"))
    client.new("OutboundConnector", outbound("Trial route", test_mode=True))
    names = [c["Name"] for c in client.list("OutboundConnector")]
    assert sorted(names) == ["Live route", "Trial route"]
    assert client.get("OutboundConnector", "Trial route")["TestMode"] is True


def test_a_read_right_after_a_create_waits_out_replication_lag(emulator_tenant: Any) -> None:
    client = ExoClient(emulator_tenant.config,
                       ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret),
                       retry=RetryPolicy(not_found_delay=0.2))
    emulator_tenant.faults(read_lag=0.5)
    client.new("InboundConnector", inbound("Fresh"))
    with pytest.raises(NotFound):
        client.get("InboundConnector", "Fresh")  # a plain read reports absence at once
    assert client.get("InboundConnector", "Fresh", retry_not_found=True)["Name"] == "Fresh"


def test_no_secret_token_or_key_appears_in_logs_or_errors(
    emulator: Any, emulator_tenant_factory: Callable[..., Any], cert_files: Any, caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    federated = {"federated_credentials": [{"issuer": f"{emulator.base_url}/_emulator/oidc", "subject": SUBJECT}]}
    tenant = emulator_tenant_factory(
        apps=[{"client_secret": True}, {"certificates": [cert_files.cert_pem.decode()]}, federated]
    )
    secret = tenant.client_secret
    client = secret_client(tenant)
    client.new("InboundConnector", inbound("Partner A"))
    token_file = federated_token_file(tenant, tmp_path / "federated-token")
    assertion = token_file.read_text()
    ExoClient(tenant.config, Certificate(tenant.apps[1]["client_id"], str(cert_files.pem))).list("InboundConnector")
    ExoClient(tenant.config, FederatedToken(tenant.apps[2]["client_id"], str(token_file))).list("InboundConnector")
    errors: list[str] = []
    for action in (
        lambda: client.new("InboundConnector", inbound("Partner A")),
        lambda: client.get("InboundConnector", "missing"),
        lambda: ExoClient(tenant.config, ClientSecret(tenant.client_id, secret + "x")).list("InboundConnector"),
        lambda: ExoClient(tenant.config, Certificate(tenant.apps[1]["client_id"], str(cert_files.pfx), "bad-pw"))
        .list("InboundConnector"),
    ):
        with pytest.raises(Exception) as info:
            action()
        errors.append(f"{info.value!s} {info.value!r}")
    tenant.faults(throttle_next=6, retry_after=0.1)
    with pytest.raises(Throttled) as throttled:
        client.list("InboundConnector")
    errors.append(str(throttled.value))
    token = client._tokens.token()
    pem_key = cert_files.key_pem.decode().splitlines()[1]
    text = caplog.text + "\n".join(errors) + repr(client) + json.dumps([r.getMessage() for r in caplog.records])
    for leaked in (secret, token, cert_files.password, pem_key, assertion):
        assert leaked not in text
    assert "Get-InboundConnector" in caplog.text  # the log is not empty: the test would see a leak


def test_open_client_for_the_emulator_uses_its_well_known_tenant(tmp_path: Path) -> None:
    client = open_client(TenantConfig(emulator=True), env={}, state_dir=tmp_path / "emulator")
    domains = {d["DomainName"] for d in client.list("AcceptedDomain")}
    assert {"contoso.com", "contoso.onmicrosoft.com"} <= domains
    assert client.config.initial_domain == "contoso.onmicrosoft.com"


def test_open_client_reads_azure_identity_variables_for_a_real_style_tenant(emulator_tenant: Any) -> None:
    from dataclasses import replace

    config = replace(emulator_tenant.config, tenant_id=None)  # AZURE_TENANT_ID fills it in
    client = open_client(config, env=emulator_tenant.env)
    assert client.config.tenant_id == emulator_tenant.tenant_id
    assert client.list("InboundConnector") == []


def test_open_client_without_credentials_names_the_variables(emulator_tenant: Any) -> None:
    with pytest.raises(AuthenticationError, match="AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET"):
        open_client(emulator_tenant.config, env={})


def test_a_slow_answer_hits_the_per_request_timeout_and_is_retried(emulator_tenant: Any) -> None:
    client = ExoClient(emulator_tenant.config,
                       ClientSecret(emulator_tenant.client_id, emulator_tenant.client_secret),
                       timeout=0.3, retry=fast_retry(max_retries=1))
    client.list("AcceptedDomain")
    emulator_tenant.faults(latency=1.0, cmdlets=["Get-InboundConnector"])
    with pytest.raises(Throttled, match="failed 2 times"):
        client.list("InboundConnector")
    assert client.stats.by_cmdlet["Get-InboundConnector"] == 2


def test_a_corrected_certificate_password_is_used_by_the_next_client(
    emulator_tenant_factory: Callable[..., Any], cert_files: Any
) -> None:
    tenant = emulator_tenant_factory(apps=[{"certificates": [cert_files.cert_pem.decode()]}])
    with pytest.raises(AuthenticationError, match="password"):
        ExoClient(tenant.config, Certificate(tenant.client_id, str(cert_files.pfx), "wrong")).list("InboundConnector")
    fixed = ExoClient(tenant.config, Certificate(tenant.client_id, str(cert_files.pfx), cert_files.password))
    assert fixed.list("InboundConnector") == []


def test_select_trims_the_returned_records(emulator_tenant: Any) -> None:
    client = secret_client(emulator_tenant)
    client.new("InboundConnector", inbound("Partner A"))
    client.new("InboundConnector", inbound("Partner B"))
    result = client.invoke("Get-InboundConnector", select=["Name", "Guid"], page_size=1)
    assert sorted(r["Name"] for r in result.values) == ["Partner A", "Partner B"]
    assert all(set(r) == {"Name", "Guid"} for r in result.values)
