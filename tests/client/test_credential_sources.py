"""Credentials as users already have them: managed identity, GitHub's OIDC token service, a refreshed token file.

Matrix (all through MSAL and HTTPS to the emulator, which verifies every assertion and token):
- managed identity, App Service style (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER`` on loopback): system-assigned,
  user-assigned (picked by ``AZURE_CLIENT_ID`` via ``credential_from_env``); a host without that identity, or a
  wrong identity header, is an AuthenticationError that says how to fix it;
- GitHub Actions: a loopback stand-in for the runner's token service (``ACTIONS_ID_TOKEN_REQUEST_URL``, bearer
  ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``, ``&audience=``, answer ``{"value": jwt}``) signs short-lived assertions with a
  key registered on the app; a sign-in after the first assertion has expired fetches a new one and succeeds, while
  the same first assertion kept in a file is refused (AADSTS700024); a refusing token service names
  ``id-token: write``;
- ``AZURE_FEDERATED_TOKEN_FILE``: an expired token is read again once (the platform may have refreshed it); if it
  is still expired the error names AADSTS700024, when the token expired and the fix. A named pipe stands for the
  file so that each read is observed: the test serves one token per read.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from o365_mailflow.client import ExoClient, RetryPolicy
from o365_mailflow.credentials import (
    FederatedToken,
    GitHubActionsOidc,
    ManagedIdentity,
    credential_from_env,
)
from o365_mailflow.emulator.tokens import CLOCK_SKEW
from o365_mailflow.errors import AuthenticationError

SUBJECT = "repo:contoso/mailflow:environment:prod"
ISSUER = "https://token.actions.githubusercontent.com"
# The emulator accepts an assertion up to CLOCK_SKEW seconds past its exp, as Entra allows some skew. Assertions
# below are issued so that they are refused ASSERTION_LIFE seconds after they were issued.
ASSERTION_LIFE = 3


def _client(tenant: Any, credential: Any) -> ExoClient:
    return ExoClient(tenant.config, credential, retry=RetryPolicy(sleep=lambda _s: None))


def _tenant_environment(tenant: Any) -> dict[str, str]:
    listing = requests.get(f"{tenant.base_url}/_emulator/tenants", verify=str(tenant.ca_path), timeout=30).json()
    entry = next(t for t in listing["value"] if t["tenant_id"] == tenant.tenant_id)
    return {"IDENTITY_ENDPOINT": entry["identity_endpoint"], "IDENTITY_HEADER": entry["identity_header"]}


@pytest.fixture
def identity_host(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], dict[str, str]]:
    """Make this process look like an App Service host of ``tenant``: MSAL reads these from os.environ."""
    for name in ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)

    def become(tenant: Any, **override: str) -> dict[str, str]:
        env = {**_tenant_environment(tenant), **override}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    return become


# ------------------------------------------------------------------------------------------ managed identity


def test_a_system_assigned_managed_identity_gets_a_token_the_admin_api_accepts(
    emulator_tenant_factory: Callable[..., Any], identity_host: Callable[..., Any]
) -> None:
    tenant = emulator_tenant_factory(apps=[{"managed_identity": "system"}])
    identity_host(tenant)
    domains = _client(tenant, ManagedIdentity()).list("AcceptedDomain")
    assert domains
    assert [(t["method"], t["status"]) for t in tenant.requests("token")] == [("managed_identity", 200)]
    assert {e["status"] for e in tenant.requests()} == {200}


def test_a_user_assigned_managed_identity_is_chosen_by_azure_client_id(
    emulator_tenant_factory: Callable[..., Any], identity_host: Callable[..., Any]
) -> None:
    user_id = str(uuid.uuid4())
    tenant = emulator_tenant_factory(apps=[{"managed_identity": "system"},
                                           {"managed_identity": "user", "client_id": user_id}])
    identity_host(tenant)
    credential = credential_from_env({"AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
                                      "AZURE_CLIENT_ID": user_id})
    assert credential == ManagedIdentity(user_id)
    _client(tenant, credential).list("InboundConnector")
    assert [(t["client_id"], t["status"]) for t in tenant.requests("token")] == [(user_id, 200)]


@pytest.mark.parametrize("case", ["no-such-identity", "wrong-identity-header"])
def test_a_host_without_the_managed_identity_says_how_to_fix_it(
    case: str, emulator_tenant_factory: Callable[..., Any], identity_host: Callable[..., Any]
) -> None:
    tenant = emulator_tenant_factory(apps=[{"managed_identity": "system"}])
    if case == "wrong-identity-header":
        identity_host(tenant, IDENTITY_HEADER="not-the-header")
        credential = ManagedIdentity()
    else:
        identity_host(tenant)
        credential = ManagedIdentity(str(uuid.uuid4()))
    with pytest.raises(AuthenticationError) as info:
        _client(tenant, credential).list("AcceptedDomain")
    assert "AZURE_TOKEN_CREDENTIALS" in str(info.value) and "Exchange.ManageAsApp" in str(info.value)
    assert [t["status"] for t in tenant.requests("token")] == [401 if case == "wrong-identity-header" else 400]
    assert tenant.requests() == []  # nothing reached the admin API


# ------------------------------------------------------------------------------------------ GitHub Actions


class FakeGitHubTokenService:
    """The runner's OIDC token service on loopback: checks the bearer and the audience, signs a new JWT each time."""

    def __init__(self, issuer_key: rsa.RSAPrivateKey, request_token: str, *, refuse: int | None = None) -> None:
        self.key = issuer_key
        self.request_token = request_token
        self.refuse = refuse
        self.issued: list[str] = []
        self.audiences: list[str] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/_apis/distributedtask/oidctoken?api-version=2.0"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @Request.application  # type: ignore[misc]
    def _app(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.request_token}":
            return Response(json.dumps({"message": "bad token"}), 401, content_type="application/json")
        if self.refuse:
            return Response(json.dumps({"message": "refused"}), self.refuse, content_type="application/json")
        self.audiences.append(request.args.get("audience", ""))
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": SUBJECT, "aud": request.args.get("audience"), "iat": now, "nbf": now,
                  "exp": now + ASSERTION_LIFE - CLOCK_SKEW, "jti": str(uuid.uuid4())}
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "gh"})
        self.issued.append(token)
        return Response(json.dumps({"count": 1, "value": token}), 200, content_type="application/json")

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def github_issuer() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk["kid"] = "gh"
    return {"key": key, "app": {"federated_credentials": [{"issuer": ISSUER, "subject": SUBJECT,
                                                           "jwks": {"keys": [jwk]}}]}}


@pytest.fixture
def github_service(github_issuer: dict[str, Any]) -> Iterator[Callable[..., FakeGitHubTokenService]]:
    made: list[FakeGitHubTokenService] = []

    def make(**kwargs: Any) -> FakeGitHubTokenService:
        service = FakeGitHubTokenService(github_issuer["key"], "runner-request-token-123", **kwargs)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def test_a_sign_in_after_the_github_token_expired_fetches_a_new_one(
    emulator_tenant_factory: Callable[..., Any], github_issuer: dict[str, Any],
    github_service: Callable[..., FakeGitHubTokenService], tmp_path: Path,
) -> None:
    tenant = emulator_tenant_factory(apps=[github_issuer["app"]])
    # Access tokens of 2 minutes: MSAL treats a token with under 5 minutes left as expired, so every call signs in.
    tenant.faults(token_lifetime=120)
    service = github_service()
    credential = credential_from_env({"AZURE_CLIENT_ID": tenant.client_id,
                                      "ACTIONS_ID_TOKEN_REQUEST_URL": service.url,
                                      "ACTIONS_ID_TOKEN_REQUEST_TOKEN": service.request_token})
    assert isinstance(credential, GitHubActionsOidc)
    client = _client(tenant, credential)
    client.list("AcceptedDomain")
    time.sleep(ASSERTION_LIFE + 0.5)  # the first GitHub token is now refused by Entra
    client.list("InboundConnector")
    assert len(service.issued) == 2 and service.issued[0] != service.issued[1]
    assert service.audiences == ["api://AzureADTokenExchange"] * 2
    assert [(t["method"], t["status"]) for t in tenant.requests("token")] == [("federated", 200)] * 2
    # Control: the first token, written to a file once (what the old workflows did), is refused by now.
    stale = tmp_path / "token"
    stale.write_text(service.issued[0])
    with pytest.raises(AuthenticationError, match="AADSTS700024"):
        _client(tenant, FederatedToken(tenant.client_id, str(stale))).list("AcceptedDomain")


def test_a_refusing_github_token_service_names_the_id_token_permission(
    emulator_tenant_factory: Callable[..., Any], github_issuer: dict[str, Any],
    github_service: Callable[..., FakeGitHubTokenService],
) -> None:
    tenant = emulator_tenant_factory(apps=[github_issuer["app"]])
    service = github_service(refuse=403)
    with pytest.raises(AuthenticationError, match="id-token: write") as info:
        _client(tenant, GitHubActionsOidc(tenant.client_id, service.url, service.request_token)).list("AcceptedDomain")
    assert service.request_token not in str(info.value)
    assert tenant.requests("token") == []


# ------------------------------------------------------------------------------------------ token file


class TokenPipe:
    """A named pipe in place of AZURE_FEDERATED_TOKEN_FILE: each read by the client gets the next token."""

    def __init__(self, path: Path, tokens: list[str]) -> None:
        self.path = path
        os.mkfifo(path)
        self.served = 0
        self._tokens = tokens
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for token in self._tokens:
            with open(self.path, "w", encoding="utf-8") as pipe:  # blocks until the client opens it to read
                pipe.write(token)
            self.served += 1
            # Let that reader see the end of file and close before the next open: a writer that reopens while
            # the reader still holds the pipe would append the next token to the same read.
            time.sleep(0.2)

    def wait(self) -> None:
        self._thread.join(timeout=30)


def _own_issuer_token(tenant: Any, lifetime: int) -> str:
    minted = requests.post(f"{tenant.base_url}/_emulator/federated-token",
                           json={"subject": SUBJECT, "lifetime": lifetime}, verify=str(tenant.ca_path), timeout=30)
    return str(minted.json()["token"])


@pytest.fixture
def own_issuer_tenant(emulator: Any, emulator_tenant_factory: Callable[..., Any]) -> Any:
    return emulator_tenant_factory(apps=[{"federated_credentials": [
        {"issuer": f"{emulator.base_url}/_emulator/oidc", "subject": SUBJECT}]}])


def test_an_expired_token_file_is_read_again_and_the_refreshed_token_is_used(
    own_issuer_tenant: Any, tmp_path: Path
) -> None:
    tenant = own_issuer_tenant
    pipe = TokenPipe(tmp_path / "token", [_own_issuer_token(tenant, -600), _own_issuer_token(tenant, 600)])
    _client(tenant, FederatedToken(tenant.client_id, str(pipe.path))).list("AcceptedDomain")
    pipe.wait()
    assert pipe.served == 2
    assert [t["status"] for t in tenant.requests("token")] == [400, 200]


def test_a_token_file_still_expired_when_read_again_names_the_expiry_and_the_fix(
    own_issuer_tenant: Any, tmp_path: Path
) -> None:
    tenant = own_issuer_tenant
    expired = _own_issuer_token(tenant, -600)
    # Two reads by the sign-in (the first and the second try), one by the message that says when it expired.
    pipe = TokenPipe(tmp_path / "token", [expired] * 3)
    with pytest.raises(AuthenticationError) as info:
        _client(tenant, FederatedToken(tenant.client_id, str(pipe.path))).list("AcceptedDomain")
    pipe.wait()
    assert pipe.served == 3
    message = str(info.value)
    exp = jwt.decode(expired, options={"verify_signature": False})["exp"]
    assert "AADSTS700024" in message
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(exp)) in message  # when it expired
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" in message and "id-token: write" in message  # the fix
    assert expired not in message
    assert tenant.requests() == []
