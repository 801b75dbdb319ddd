"""Credentials from azure-identity's variables, their secrecy, and the cloud table.

Matrix:
- credential_from_env: secret > certificate > federated token file > GitHub Actions' token service
  (azure-identity's precedence, then the runner's); AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential picks the
  managed identity (system-assigned, or the user-assigned one AZURE_CLIENT_ID names); missing client id or missing
  credential named by variable; the runner's request URL must be https (or loopback);
- certificates: PFX with password, PEM key+cert, encrypted PEM; wrong password and missing parts give an
  AuthenticationError that names the file and the variable, never the password;
- repr of every credential hides the secret;
- clouds: commercial, GCC High, DoD, China authority/host/scope; endpoint/authority/scope overrides; plain
  http refused (TLS is never turned off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from o365_mailflow.credentials import (
    Certificate,
    ClientSecret,
    FederatedToken,
    GitHubActionsOidc,
    ManagedIdentity,
    credential_from_env,
)
from o365_mailflow.errors import AuthenticationError
from o365_mailflow.tenant import TenantConfig, resolve_endpoints



SECRET = "super-secret-value-42"
GITHUB = {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.githubusercontent.com/x/idtoken?api-version=2.0",
          "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token"}

@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"AZURE_CLIENT_SECRET": SECRET, "AZURE_CLIENT_CERTIFICATE_PATH": "/x.pem"}, ClientSecret),
        ({"AZURE_CLIENT_CERTIFICATE_PATH": "/x.pem", "AZURE_FEDERATED_TOKEN_FILE": "/t"}, Certificate),
        ({"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"}, FederatedToken),
        ({"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token", **GITHUB}, FederatedToken),
        (GITHUB, GitHubActionsOidc),
        ({"AZURE_CLIENT_SECRET": SECRET, **GITHUB}, ClientSecret),
        ({"AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential", "AZURE_CLIENT_SECRET": SECRET}, ManagedIdentity),
    ],
    ids=["secret-first", "certificate-before-federated", "federated", "file-before-github", "github",
         "secret-before-github", "managed-identity-when-asked"],
)
def test_credentials_come_from_azure_identity_variables_in_its_order(env: dict[str, str], kind: type) -> None:
    credential = credential_from_env({"AZURE_CLIENT_ID": "app", **env})
    assert isinstance(credential, kind) and credential.client_id == "app"


def test_a_managed_identity_is_system_assigned_unless_azure_client_id_names_one() -> None:
    asked = {"AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential"}
    assert credential_from_env(asked) == ManagedIdentity("")
    assert credential_from_env({**asked, "AZURE_CLIENT_ID": "mi-client"}) == ManagedIdentity("mi-client")
    assert ManagedIdentity("").describe() == "system-assigned managed identity"


def test_the_runner_request_url_must_be_https_unless_it_is_loopback() -> None:
    with pytest.raises(AuthenticationError, match="ACTIONS_ID_TOKEN_REQUEST_URL"):
        GitHubActionsOidc("app", "http://runner.example/idtoken", "t")
    assert GitHubActionsOidc("app", "http://127.0.0.1:9/idtoken", "t").client_id == "app"


def test_the_github_request_url_needs_a_client_id() -> None:
    with pytest.raises(AuthenticationError, match="AZURE_CLIENT_ID.*ACTIONS_ID_TOKEN_REQUEST_URL"):
        credential_from_env(GITHUB)


def test_a_missing_credential_names_the_variables_to_set() -> None:
    with pytest.raises(AuthenticationError, match="AZURE_CLIENT_SECRET.*AZURE_CLIENT_CERTIFICATE_PATH"):
        credential_from_env({"AZURE_CLIENT_ID": "app"})
    with pytest.raises(AuthenticationError, match="AZURE_CLIENT_ID"):
        credential_from_env({"AZURE_CLIENT_SECRET": SECRET})


def test_no_credential_repr_shows_its_secret(cert_files: Any) -> None:
    shown = " ".join(
        repr(c)
        for c in (
            ClientSecret("app", SECRET),
            Certificate("app", str(cert_files.pfx), cert_files.password),
            FederatedToken("app", "/var/run/token"),
            GitHubActionsOidc("app", GITHUB["ACTIONS_ID_TOKEN_REQUEST_URL"], SECRET),
        )
    )
    assert SECRET not in shown and cert_files.password not in shown
    assert "app.pfx" in shown


@pytest.mark.parametrize("which", ["pfx", "pem", "pem_encrypted"])
def test_certificates_load_in_every_supported_format(cert_files: Any, which: str) -> None:
    path = getattr(cert_files, which)
    password = None if which == "pem" else cert_files.password
    credential = Certificate("app", str(path), password).msal_credential()
    if which == "pfx":
        assert credential["private_key_pfx_path"] == str(path)
    else:
        assert "BEGIN CERTIFICATE" in credential["public_certificate"]
        assert "thumbprint" not in credential  # MSAL then derives the SHA-256 thumbprint itself


@pytest.mark.parametrize("which", ["pfx", "pem_encrypted"])
def test_a_wrong_certificate_password_is_explained_without_echoing_it(cert_files: Any, which: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        Certificate("app", str(getattr(cert_files, which)), "wrong-password-xyz").msal_credential()
    assert "AZURE_CLIENT_CERTIFICATE_PASSWORD" in str(info.value)
    assert "wrong-password-xyz" not in str(info.value)


def test_a_pem_without_its_certificate_is_refused(tmp_path: Path, cert_files: Any) -> None:
    key_only = tmp_path / "key.pem"
    key_only.write_bytes(cert_files.key_pem)
    with pytest.raises(AuthenticationError, match="both a private key and a certificate") as info:
        Certificate("app", str(key_only)).msal_credential()
    assert "PRIVATE KEY-----\n" not in str(info.value)


def test_the_federated_token_file_is_read_each_time(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    credential = FederatedToken("app", str(token_file))
    assertion = credential.msal_credential()["client_assertion"]
    token_file.write_text("first")
    assert assertion() == "first"
    token_file.write_text("second\n")
    assert assertion() == "second"


@pytest.mark.parametrize(
    ("cloud", "authority", "api", "scope"),
    [
        ("commercial", "https://login.microsoftonline.com/t", "https://outlook.office365.com",
         "https://outlook.office365.com/.default"),
        ("gcchigh", "https://login.microsoftonline.us/t", "https://outlook.office365.us",
         "https://outlook.office365.us/.default"),
        ("dod", "https://login.microsoftonline.us/t", "https://outlook-dod.office365.us",
         "https://outlook-dod.office365.us/.default"),
        ("china", "https://login.partner.microsoftonline.cn/t", "https://outlook.office365.cn",
         "https://outlook.office365.cn/.default"),
    ],
    ids=["commercial", "gcchigh", "dod", "china"],
)
def test_each_cloud_has_its_authority_api_host_and_scope(cloud: str, authority: str, api: str, scope: str) -> None:
    endpoints = resolve_endpoints(TenantConfig(tenant_id="t", cloud=cloud))
    assert (endpoints.authority, endpoints.api_base, endpoints.scope) == (authority, api, scope)
    assert endpoints.known_authority


def test_overrides_replace_the_cloud_defaults_separately() -> None:
    endpoints = resolve_endpoints(TenantConfig(tenant_id="t", endpoint="https://127.0.0.1:8443/",
                                               authority="https://127.0.0.1:9443", scope="api://x/.default"))
    assert endpoints.api_base == "https://127.0.0.1:8443"
    assert endpoints.authority == "https://127.0.0.1:9443/t"
    assert endpoints.scope == "api://x/.default"
    assert not endpoints.known_authority


@pytest.mark.parametrize("field", ["endpoint", "authority"])
def test_plain_http_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="https"):
        resolve_endpoints(TenantConfig(tenant_id="t", **{field: "http://127.0.0.1:8080"}))


def test_an_unknown_cloud_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="commercial, gcchigh, dod, china"):
        resolve_endpoints(TenantConfig(tenant_id="t", cloud="germany"))


def test_pulumi_config_credential_managed_identity_reaches_the_client_as_azure_identity_names() -> None:
    from o365_mailflow.providers.config import settings_from_config

    config = {"o365-mailflow:tenantId": "t", "o365-mailflow:credential": "managedIdentity",
              "o365-mailflow:clientId": "mi-client"}
    settings = settings_from_config(config, env={})
    assert settings is not None
    # A stray secret in the host's environment does not win over the configured managed identity.
    env = settings.client_env({"AZURE_CLIENT_SECRET": SECRET})
    assert credential_from_env(env) == ManagedIdentity("mi-client")


def test_an_unknown_pulumi_credential_kind_lists_the_allowed_one() -> None:
    from o365_mailflow.providers.config import ConfigurationError, settings_from_config

    with pytest.raises(ConfigurationError, match="managedIdentity"):
        settings_from_config({"o365-mailflow:tenantId": "t", "o365-mailflow:credential": "imds"}, env={})
