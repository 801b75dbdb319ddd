"""Entra token endpoints of the emulator, driven by MSAL Python unchanged and by plain requests.

Matrix:
- discovery: the v2.0 OIDC document (by tenant id and by initial domain), instance discovery, unknown tenant;
- client secret (form or HTTP Basic): MSAL accepts it; a wrong secret, an unknown app, a non-.default scope,
  another grant type are refused;
- certificate assertion: MSAL with PFX (PS256, x5t#S256) and PEM+thumbprint (RS256, x5t) accepted; a bad
  signature, an unregistered or expired certificate, a wrong aud, an expired or not-yet-valid assertion,
  sub != client id refused;
- federated assertion: the emulator's own issuer and a registered JWKS accepted; wrong subject, wrong audience,
  bad signature, expired refused;
- access tokens: RS256, aud, tid, roles, wids, exp follow the configured lifetime; bearer problems give 401.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from mailflow_testing import EXCHANGE_SCOPE, CASession, EmulatedTenant, default_app_token
from o365_mailflow.emulator import DEFAULT_CLIENT_ID, DEFAULT_TENANT_ID

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Cert:
    def __init__(self, directory: Path, *, days: int = 30) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailflow test app")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=max(1, 1 - days)))
            .not_valid_after(now + dt.timedelta(days=days))  # days < 0: already expired
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        self.key_pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        directory.mkdir(parents=True, exist_ok=True)
        self.pfx = directory / f"{uuid.uuid4().hex}.pfx"
        self.pfx.write_bytes(
            pkcs12.serialize_key_and_certificates(b"app", self.key, self.cert, None, serialization.NoEncryption())
        )
        self.sha1 = self.cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - x5t is SHA-1 by definition
        self.x5t = _b64(self.cert.fingerprint(hashes.SHA1()))  # noqa: S303

    def assertion(self, client_id: str, aud: str, *, key: Any = None, exp_delta: int = 600, **extra: Any) -> str:
        now = int(time.time())
        claims = {"aud": aud, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()), "nbf": now,
                  "iat": now, "exp": now + exp_delta, **extra}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"x5t": self.x5t})


def _msal_app(tenant: EmulatedTenant, credential: Any, *, client_id: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id or tenant.client_id,
        authority=f"{tenant.base_url}/{tenant.tenant_id}",
        client_credential=credential,
        instance_discovery=False,
        http_client=CASession(tenant.ca_path),
    )


def _post_token(tenant: EmulatedTenant, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_id": tenant.client_id, "scope": EXCHANGE_SCOPE, **form}
    return requests.post(tenant.token_url, data=data, verify=str(tenant.ca_path), timeout=30)


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# -- discovery ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["tenant id", "initial domain"])
def test_the_openid_configuration_points_at_the_emulator(emulator_tenant: EmulatedTenant, by: str) -> None:
    segment = emulator_tenant.tenant_id if by == "tenant id" else emulator_tenant.initial_domain
    response = requests.get(
        f"{emulator_tenant.base_url}/{segment}/v2.0/.well-known/openid-configuration",
        verify=str(emulator_tenant.ca_path),
        timeout=30,
    )
    assert response.status_code == 200
    doc = response.json()
    assert doc["token_endpoint"] == f"{emulator_tenant.base_url}/{segment}/oauth2/v2.0/token"
    assert doc["issuer"] == f"{emulator_tenant.base_url}/{emulator_tenant.tenant_id}/v2.0"
    keys = requests.get(doc["jwks_uri"], verify=str(emulator_tenant.ca_path), timeout=30).json()["keys"]
    assert keys and keys[0]["kty"] == "RSA"


def test_an_unknown_tenant_fails_discovery_with_an_entra_error(emulator_tenant: EmulatedTenant) -> None:
    response = requests.get(
        f"{emulator_tenant.base_url}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration",
        verify=str(emulator_tenant.ca_path),
        timeout=30,
    )
    assert response.status_code == 400
    assert "AADSTS90002" in response.json()["error_description"]


def test_msal_with_default_instance_discovery_pointed_at_the_emulator_works(emulator_tenant: EmulatedTenant) -> None:
    app = msal.ConfidentialClientApplication(
        emulator_tenant.client_id,
        authority=f"{emulator_tenant.base_url}/{emulator_tenant.tenant_id}",
        client_credential=emulator_tenant.client_secret,
        instance_discovery=f"{emulator_tenant.base_url}/common/discovery/instance",
        http_client=CASession(emulator_tenant.ca_path),
    )
    result = app.acquire_token_for_client([EXCHANGE_SCOPE])
    assert "access_token" in result, result


# -- client secret --------------------------------------------------------------------------------------------


def test_msal_gets_a_token_for_the_default_tenant_well_known_app(emulator: Any) -> None:
    claims = _claims(default_app_token(emulator)["access_token"])
    assert claims["tid"] == DEFAULT_TENANT_ID
    assert claims["appid"] == DEFAULT_CLIENT_ID


def test_an_access_token_carries_the_exchange_audience_tenant_roles_and_directory_roles(
    emulator_tenant: EmulatedTenant,
) -> None:
    result = _msal_app(emulator_tenant, emulator_tenant.client_secret).acquire_token_for_client([EXCHANGE_SCOPE])
    assert result["token_type"] == "Bearer"
    token = result["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = _claims(token)
    assert claims["aud"] == "https://outlook.office365.com"
    assert claims["tid"] == emulator_tenant.tenant_id
    assert claims["roles"] == ["Exchange.ManageAsApp"]
    assert "29232cdf-9323-42fd-ade2-1d097af3e4de" in claims["wids"]
    assert 3500 <= claims["exp"] - claims["iat"] <= 3600


def test_the_token_lifetime_follows_the_fault_knob(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(token_lifetime=120)
    response = _post_token(emulator_tenant, client_secret=emulator_tenant.client_secret or "")
    assert response.json()["expires_in"] == 120
    claims = _claims(response.json()["access_token"])
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({}, 401, "invalid_client", 7000218),
        ({"client_secret": "x", "client_id": "11111111-2222-4333-8444-555555555555"}, 400, "unauthorized_client", 700016),
        ({"client_secret": "x", "scope": "https://outlook.office365.com/Exchange.ManageAsApp"}, 400, "invalid_scope",
         1002012),
        ({"client_secret": "x", "grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
    ids=["wrong secret", "no credential", "unknown app", "scope without .default", "other grant type"],
)
def test_bad_token_requests_get_entra_errors(
    emulator_tenant: EmulatedTenant, form: dict[str, str], status: int, error: str, code: int
) -> None:
    response = _post_token(emulator_tenant, **form)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}:")


def test_msal_reports_a_wrong_secret_as_an_error_result(emulator_tenant: EmulatedTenant) -> None:
    result = _msal_app(emulator_tenant, "not-the-secret").acquire_token_for_client([EXCHANGE_SCOPE])
    assert result.get("error") == "invalid_client"
    assert "access_token" not in result


# -- certificates ---------------------------------------------------------------------------------------------


@pytest.fixture
def cert(tmp_path: Path) -> Cert:
    return Cert(tmp_path)


@pytest.fixture
def cert_tenant(emulator_tenant_factory: Any, cert: Cert) -> EmulatedTenant:
    return emulator_tenant_factory(apps=[{"certificates": [cert.cert_pem]}])


def test_msal_with_a_pfx_certificate_gets_a_token(cert_tenant: EmulatedTenant, cert: Cert) -> None:
    result = _msal_app(cert_tenant, {"private_key_pfx_path": str(cert.pfx)}).acquire_token_for_client([EXCHANGE_SCOPE])
    assert "access_token" in result, result
    assert _claims(result["access_token"])["appidacr"] == "2"
    assert cert_tenant.requests("token")[-1]["method"] == "certificate"


def test_msal_with_a_pem_key_and_sha1_thumbprint_gets_a_token(cert_tenant: EmulatedTenant, cert: Cert) -> None:
    credential = {"private_key": cert.key_pem, "thumbprint": cert.sha1}
    result = _msal_app(cert_tenant, credential).acquire_token_for_client([EXCHANGE_SCOPE])
    assert "access_token" in result, result


def test_a_certificate_app_has_no_secret_to_fall_back_on(cert_tenant: EmulatedTenant) -> None:
    assert cert_tenant.client_secret is None
    assert _post_token(cert_tenant, client_secret="guess").status_code == 401


def _assertion_case(case: str, cert: Cert, tenant: EmulatedTenant) -> str:
    if case == "signed by another key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cert.assertion(tenant.client_id, tenant.token_url, key=other)
    if case == "unregistered certificate":
        stranger = Cert(cert.pfx.parent / "other")
        return stranger.assertion(tenant.client_id, tenant.token_url)
    if case == "wrong aud":
        return cert.assertion(tenant.client_id, "https://login.microsoftonline.com/x/oauth2/v2.0/token")
    if case == "expired":
        return cert.assertion(tenant.client_id, tenant.token_url, exp_delta=-3600)
    if case == "not yet valid":
        return cert.assertion(tenant.client_id, tenant.token_url, nbf=int(time.time()) + 3600, exp_delta=7200)
    if case == "sub is another app":
        return cert.assertion(tenant.client_id, tenant.token_url, sub=str(uuid.uuid4()))
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("signed by another key", 401, 700027),
        ("unregistered certificate", 401, 700027),
        ("wrong aud", 400, 50027),
        ("expired", 400, 700024),
        ("not yet valid", 400, 700024),
        ("sub is another app", 401, 700021),
    ],
)
def test_bad_certificate_assertions_are_refused(
    cert_tenant: EmulatedTenant, cert: Cert, case: str, status: int, code: int
) -> None:
    response = _post_token(
        cert_tenant, client_assertion_type=ASSERTION_TYPE, client_assertion=_assertion_case(case, cert, cert_tenant)
    )
    assert response.status_code == status, response.text
    assert response.json()["error_codes"] == [code]


def test_a_hand_made_certificate_assertion_with_x5t_is_accepted(cert_tenant: EmulatedTenant, cert: Cert) -> None:
    response = _post_token(
        cert_tenant,
        client_assertion_type=ASSERTION_TYPE,
        client_assertion=cert.assertion(cert_tenant.client_id, cert_tenant.token_url),
    )
    assert response.status_code == 200, response.text


# -- federated credentials ------------------------------------------------------------------------------------


def test_a_federated_token_from_the_emulator_issuer_is_exchanged(emulator_tenant_factory: Any, emulator: Any) -> None:
    issuer = f"{emulator.base_url}/_emulator/oidc"
    tenant = emulator_tenant_factory(
        apps=[{"federated_credentials": [{"issuer": issuer, "subject": "repo:contoso/mailflow:ref:refs/heads/main"}]}]
    )
    minted = requests.post(
        f"{tenant.base_url}/_emulator/federated-token",
        json={"subject": "repo:contoso/mailflow:ref:refs/heads/main"},
        verify=str(tenant.ca_path),
        timeout=30,
    ).json()
    assert minted["issuer"] == issuer
    result = _msal_app(tenant, {"client_assertion": lambda: minted["token"]}).acquire_token_for_client([EXCHANGE_SCOPE])
    assert "access_token" in result, result
    assert tenant.requests("token")[-1]["method"] == "federated"


@pytest.fixture
def federated() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk["kid"] = "k1"
    return {"key": key, "jwks": {"keys": [jwk]}, "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:contoso/mailflow:environment:prod"}


def _federated_assertion(fed: dict[str, Any], *, key: Any = None, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": fed["issuer"], "sub": fed["subject"], "aud": "api://AzureADTokenExchange", "iat": now,
              "nbf": now, "exp": now + 600, **overrides}
    return jwt.encode(claims, key or fed["key"], algorithm="RS256", headers={"kid": "k1"})


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("valid", 200, None),
        ("wrong subject", 400, 700213),
        ("wrong issuer", 400, 700211),
        ("wrong audience", 400, 700212),
        ("expired", 400, 700024),
        ("bad signature", 401, 700027),
    ],
)
def test_federated_assertions_against_a_registered_jwks(
    emulator_tenant_factory: Any, federated: dict[str, Any], case: str, status: int, code: int | None
) -> None:
    tenant = emulator_tenant_factory(
        apps=[{"federated_credentials": [
            {"issuer": federated["issuer"], "subject": federated["subject"], "jwks": federated["jwks"]}]}]
    )
    overrides: dict[str, Any] = {
        "valid": {},
        "wrong subject": {"sub": "repo:evil/fork:ref:refs/heads/main"},
        "wrong issuer": {"iss": "https://issuer.invalid"},
        "wrong audience": {"aud": "api://something-else"},
        "expired": {"exp": int(time.time()) - 3600},
        "bad signature": {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)},
    }[case]
    assertion = _federated_assertion(federated, **overrides)
    response = _post_token(tenant, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error_codes"] == [code]


def test_a_secret_sent_with_http_basic_authentication_is_accepted(emulator_tenant: EmulatedTenant) -> None:
    response = requests.post(
        emulator_tenant.token_url,
        data={"grant_type": "client_credentials", "scope": EXCHANGE_SCOPE},
        auth=(emulator_tenant.client_id, emulator_tenant.client_secret or ""),
        verify=str(emulator_tenant.ca_path),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert _claims(response.json()["access_token"])["appid"] == emulator_tenant.client_id


def test_an_assertion_signed_with_an_expired_registered_certificate_is_refused(
    emulator_tenant_factory: Any, tmp_path: Path
) -> None:
    old = Cert(tmp_path, days=-1)
    assert old.cert.not_valid_after_utc < dt.datetime.now(dt.timezone.utc)
    tenant = emulator_tenant_factory(apps=[{"certificates": [old.cert_pem]}])
    response = _post_token(
        tenant, client_assertion_type=ASSERTION_TYPE, client_assertion=old.assertion(tenant.client_id, tenant.token_url)
    )
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]
