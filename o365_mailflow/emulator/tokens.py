"""The emulated Entra ID (Azure AD) endpoints: OIDC discovery, the v2.0 token endpoint, and access tokens.

Why: the project's client gets its tokens with MSAL Python, unchanged, exactly as against
``login.microsoftonline.com``; so the emulator speaks the parts of Entra that MSAL uses (exo-admin-api.md §6):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (MSAL's tenant discovery; MSAL must be built with
  ``instance_discovery=False``, or pointed at our ``/common/discovery/instance``, since its default instance
  discovery goes to login.microsoftonline.com for any unknown host);
* ``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials`` and a client secret, a
  certificate-signed ``client_assertion`` (signature, ``x5t``/``x5t#S256``, ``aud``, ``iss``/``sub``, ``exp``,
  ``nbf`` checked against the app's registered certificate), or a federated assertion (workload identity:
  an external issuer's JWT whose issuer/subject/audience match a federated credential registered on the app).

And the managed-identity endpoint of an Azure host, App Service style (the one that is easy to point at loopback):
``GET /{tenant}/msi/token?api-version=2019-08-01&resource=...[&client_id=...]`` with the ``X-IDENTITY-HEADER``
the platform puts in ``IDENTITY_HEADER``; it answers ``{access_token, expires_on, resource, token_type,
client_id}``. On a real host the endpoint (``IDENTITY_ENDPOINT``) is local to the machine and serves that machine's
identities; here an app registered with ``"managed_identity": "system" | "user"`` plays that identity.

Access tokens are RS256 JWTs signed by a key kept in the state directory, shaped like the v1 tokens Exchange
receives (``aud`` = the requested resource, ``tid``, ``roles`` = the app's application permissions, ``wids`` =
its directory role template ids). The admin API validates them with the same key.

Entra's exact error codes for some assertion failures are not captured in the reference; the AADSTS codes
below are the documented ones where known and plausible otherwise ([INF]). Clients should key on ``error``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .certs import write_private_key

__all__ = [
    "EXCHANGE_APP_ROLE",
    "EXCHANGE_AUDIENCES",
    "DIRECTORY_ROLES",
    "WRITE_ROLES",
    "READ_ROLES",
    "FEDERATED_AUDIENCE",
    "TokenError",
    "InvalidToken",
    "SigningKey",
    "load_signing_key",
    "openid_configuration",
    "instance_discovery",
    "app_config_from_seed",
    "hash_secret",
    "authenticate_client",
    "issue_access_token",
    "validate_access_token",
    "mint_federated_token",
    "thumbprints",
    "identity_header",
    "managed_identity_app",
]

EXCHANGE_APP_ROLE = "Exchange.ManageAsApp"
EXCHANGE_RESOURCE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
# Audiences the admin API accepts (the emulator's own base URL is added at run time, for clients that use
# `<endpoint>/.default` as the scope). A Graph token is refused, as by the service [LIVE S5].
EXCHANGE_AUDIENCES = frozenset(
    {"https://outlook.office365.com", "https://outlook.office.com", EXCHANGE_RESOURCE_APP_ID}
)
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"  # Entra's default audience for federated credentials
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Directory role template ids (public, the same in every tenant). Names are accepted in seeds for readability.
DIRECTORY_ROLES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Exchange Recipient Administrator": "31392ffb-586c-42d1-9346-e59415a2cc4e",
    "Compliance Administrator": "17315797-102d-40b4-93e0-432062caca18",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
}
# The docs: only Global Administrator and Exchange Administrator cover "any task" (connector and domain writes);
# the other listed roles are enough to connect and read [DOC S9a]. Which cmdlets each reader role may run is
# not captured: here any listed role may run Get-*, and only the two admin roles may write ([INF]).
WRITE_ROLES = frozenset({DIRECTORY_ROLES["Global Administrator"], DIRECTORY_ROLES["Exchange Administrator"]})
READ_ROLES = frozenset(DIRECTORY_ROLES.values())

# How far apart the emulator's clock and a client's may be when checking assertion times (Entra allows minutes).
CLOCK_SKEW = 60


class TokenError(Exception):
    """An Entra-style token endpoint error: ``{"error", "error_description", "error_codes", ...}``."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def body(self) -> dict[str, Any]:
        trace = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace}",
            "error_codes": [self.code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
        }


class InvalidToken(Exception):
    """A bearer token the admin API refuses (401)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """The emulator's token-signing key (RS256), kept in the state directory so tokens survive a restart."""

    private_key: rsa.RSAPrivateKey
    kid: str

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}


def load_signing_key(state_dir: Path) -> SigningKey:
    """Load (or create once) ``state_dir/tls/token-signing-key.pem``."""
    path = state_dir / "tls" / "token-signing-key.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_private_key(path, key)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(key, _b64url(hashlib.sha256(public).digest())[:27])


# -- discovery -----------------------------------------------------------------------------------------------


def openid_configuration(base_url: str, segment: str, tenant_id: str) -> dict[str, Any]:
    """The v2.0 OIDC discovery document, with every URL pointing at the emulator."""
    root = f"{base_url}/{segment}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base_url}/{tenant_id}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base_url}/{tenant_id}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base_url}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "emulator.invalid",
        "msgraph_host": "graph.microsoft.com",
    }


def instance_discovery(base_url: str, authorization_endpoint: str) -> dict[str, Any]:
    """Answer MSAL's instance discovery (``/common/discovery/instance``) for the emulator's own host."""
    from urllib.parse import urlsplit

    host = base_url.split("://", 1)[1]
    # MSAL sends the authorization endpoint without the port; keep only its path (the tenant) and use our URL.
    tenant_path = urlsplit(authorization_endpoint).path.split("/oauth2/", 1)[0]
    return {
        "tenant_discovery_endpoint": f"{base_url}{tenant_path}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }


# -- app registrations ---------------------------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    """Secrets are kept hashed in the tenant config (SQLite), like a directory would."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    """(x5t, x5t#S256) of a certificate: base64url SHA-1 and SHA-256 of its DER encoding."""
    return _b64url(cert.fingerprint(hashes.SHA1())), _b64url(cert.fingerprint(hashes.SHA256()))  # noqa: S303


def _role_id(role: str) -> str:
    return DIRECTORY_ROLES.get(role, role).lower()


def app_config_from_seed(entry: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Seed/API app entry -> (stored app config, the plain secret to hand back once or None).

    Seed keys: ``client_id`` (default: a new GUID), ``display_name``, ``client_secret`` (string; ``true``
    generates one), ``app_roles`` (default ``["Exchange.ManageAsApp"]``), ``directory_roles`` (names or
    template ids; default ``["Exchange Administrator"]``), ``certificates`` (PEM strings),
    ``federated_credentials`` (``{"issuer", "subject", "audiences"?, "jwks"? | "public_key_pem"?}``),
    ``managed_identity`` (``"system"`` or ``"user"``: the app is a managed identity of the emulated Azure host,
    signed in through the managed-identity endpoint, with no secret).
    """
    client_id = str(entry.get("client_id") or uuid.uuid4()).lower()
    secret = entry.get("client_secret")
    certificates = [str(c) for c in entry.get("certificates", [])]
    federated = [dict(f) for f in entry.get("federated_credentials", [])]
    managed = entry.get("managed_identity")
    if managed not in (None, "system", "user"):
        raise ValueError("managed_identity must be 'system' or 'user'")
    if secret is True or (secret is None and not certificates and not federated and not managed):
        secret = secrets.token_urlsafe(30)
    for pem in certificates:
        x509.load_pem_x509_certificate(pem.encode("ascii"))  # fail early on a bad certificate
    for cred in federated:
        if not cred.get("issuer") or not cred.get("subject"):
            raise ValueError("a federated credential needs an issuer and a subject")
        cred.setdefault("audiences", [FEDERATED_AUDIENCE])
    app = {
        "client_id": client_id,
        "display_name": str(entry.get("display_name") or f"app {client_id}"),
        "secret_sha256": [hash_secret(secret)] if isinstance(secret, str) else [],
        "app_roles": list(entry.get("app_roles", [EXCHANGE_APP_ROLE])),
        "directory_roles": [_role_id(r) for r in entry.get("directory_roles", ["Exchange Administrator"])],
        "certificates": certificates,
        "federated_credentials": federated,
    }
    if managed:
        app["managed_identity"] = managed
    return app, secret if isinstance(secret, str) else None


# -- client authentication -----------------------------------------------------------------------------------


def _invalid_client(code: int, text: str, status: int = 401) -> TokenError:
    return TokenError(status, "invalid_client", code, text)


def _check_secret(app: Mapping[str, Any], secret: str) -> str:
    given = hash_secret(secret)
    if not any(hmac.compare_digest(given, stored) for stored in app.get("secret_sha256", [])):
        raise _invalid_client(
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{app['client_id']}'.",
        )
    return "secret"


def _decode_assertion(
    assertion: str,
    key: Any,
    *,
    algorithms: list[str],
    audience: list[str],
    audience_error: TokenError,
    issuer: str | None = None,
) -> dict[str, Any]:
    """Verify a client assertion's signature, times and audience; map PyJWT's failures to Entra's errors."""
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key=key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuer,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "aud", "iss", "sub"]},
        )
    except jwt.InvalidSignatureError:
        raise _invalid_client(700027, "Client assertion failed signature validation.") from None
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise _invalid_client(700024, "Client assertion is not within its valid time range.", 400) from None
    except jwt.InvalidAudienceError:
        raise audience_error from None
    except jwt.PyJWTError as exc:
        raise _invalid_client(50027, f"JWT token is invalid or malformed ({exc}).", 400) from None
    return claims


def _check_certificate_assertion(
    app: Mapping[str, Any], assertion: str, header: Mapping[str, Any], token_endpoints: set[str]
) -> str:
    # base64url with or without padding: MSAL keeps the '=' padding, RFC 7515 says to drop it.
    want_sha1 = str(header.get("x5t") or "").rstrip("=")
    want_sha256 = str(header.get("x5t#S256") or "").rstrip("=")
    if not want_sha1 and not want_sha256:
        raise _invalid_client(700027, "Client assertion contains no x5t or x5t#S256 certificate thumbprint.")
    match = None
    for pem in app.get("certificates", []):
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        sha1, sha256 = thumbprints(cert)
        if (want_sha256 and want_sha256 == sha256) or (not want_sha256 and want_sha1 == sha1):
            match = cert
            break
    if match is None:
        raise _invalid_client(
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application. "
            f"[Reason - The key was not found., Thumbprint of key used by client: "
            f"'{want_sha256 or want_sha1}', Please visit the Azure Portal to register the certificate.]",
        )
    # Entra stops accepting a key credential after its end date (the certificate's notAfter by default).
    if match.not_valid_after_utc.timestamp() < time.time():
        raise _invalid_client(700027, "The certificate used to sign the client assertion has expired.")
    claims = _decode_assertion(
        assertion,
        match.public_key(),
        algorithms=["RS256", "PS256", "RS384", "RS512", "PS384", "PS512", "ES256"],
        audience=list(token_endpoints),
        audience_error=_invalid_client(
            50027, "Client assertion audience claim does not match the token endpoint of this tenant.", 400
        ),
    )
    if str(claims["iss"]).lower() != app["client_id"] or str(claims["sub"]).lower() != app["client_id"]:
        raise _invalid_client(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
    return "certificate"


def _federated_key(cred: Mapping[str, Any], kid: str | None, own_key: SigningKey, own_issuer: str) -> Any:
    if cred["issuer"].rstrip("/") == own_issuer.rstrip("/"):
        return own_key.private_key.public_key()
    if cred.get("public_key_pem"):
        return serialization.load_pem_public_key(str(cred["public_key_pem"]).encode("ascii"))
    keys = (cred.get("jwks") or {}).get("keys", [])
    for jwk in keys:
        if kid is None or jwk.get("kid") == kid or len(keys) == 1:
            return jwt.PyJWK(jwk).key
    raise _invalid_client(700027, f"No signing key with kid '{kid}' is registered for issuer '{cred['issuer']}'.")


def _check_federated_assertion(
    app: Mapping[str, Any],
    assertion: str,
    header: Mapping[str, Any],
    unverified: Mapping[str, Any],
    own_key: SigningKey,
    own_issuer: str,
) -> str:
    issuer, subject = unverified.get("iss"), unverified.get("sub")
    by_issuer = [c for c in app.get("federated_credentials", []) if c["issuer"].rstrip("/") == str(issuer).rstrip("/")]
    if not by_issuer:
        raise _invalid_client(
            700211, f"No matching federated identity record found for presented assertion issuer '{issuer}'.", 400
        )
    matches = [c for c in by_issuer if c["subject"] == subject]
    if not matches:
        raise _invalid_client(
            700213, f"No matching federated identity record found for presented assertion subject '{subject}'.", 400
        )
    cred = matches[0]
    key = _federated_key(cred, header.get("kid"), own_key, own_issuer)
    _decode_assertion(
        assertion,
        key,
        algorithms=["RS256", "PS256", "ES256", "RS384", "RS512"],
        audience=list(cred.get("audiences") or [FEDERATED_AUDIENCE]),
        issuer=cred["issuer"],
        audience_error=_invalid_client(
            700212, "No matching federated identity record found for presented assertion audience.", 400
        ),
    )
    return "federated"


def authenticate_client(
    app: Mapping[str, Any],
    form: Mapping[str, str],
    *,
    token_endpoints: set[str],
    own_key: SigningKey,
    own_issuer: str,
) -> str:
    """Check the client credential in a token request; return how it authenticated or raise TokenError."""
    if form.get("client_secret"):
        return _check_secret(app, form["client_secret"])
    assertion = form.get("client_assertion")
    if not assertion:
        raise _invalid_client(
            7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
        )
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise TokenError(
            400, "invalid_request", 50027, f"client_assertion_type must be '{ASSERTION_TYPE}'."
        )
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid_client(50027, "JWT token is invalid or malformed.", 400) from None
    # A certificate assertion is self-issued (iss = client id); anything else is a federated one.
    if str(unverified.get("iss", "")).lower() == app["client_id"]:
        return _check_certificate_assertion(app, assertion, header, token_endpoints)
    return _check_federated_assertion(app, assertion, header, unverified, own_key, own_issuer)


# -- managed identities ----------------------------------------------------------------------------------------


def identity_header(key: SigningKey, tenant_id: str) -> str:
    """The emulated host's ``IDENTITY_HEADER`` for one tenant: a secret derived from the signing key, so it is
    stable across restarts and needs no storage."""
    secret = key.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return hmac.new(secret, f"identity-header:{tenant_id}".encode(), hashlib.sha256).hexdigest()


def managed_identity_app(apps: list[Mapping[str, Any]], args: Mapping[str, str]) -> Mapping[str, Any]:
    """The managed identity a request to the identity endpoint names: ``client_id`` / ``object_id`` for a
    user-assigned one, none for the system-assigned one. Raises TokenError with App Service's answer shape."""
    managed = [a for a in apps if a.get("managed_identity")]
    client_id = (args.get("client_id") or "").lower()
    if args.get("mi_res_id") or args.get("principal_id") or args.get("object_id"):
        raise TokenError(400, "invalid_request", 400, "Only client_id is supported by the emulator for user-assigned "
                         "identities.")
    if client_id:
        found = [a for a in managed if a["managed_identity"] == "user" and a["client_id"] == client_id]
        if not found:
            raise TokenError(400, "invalid_request", 400,
                             f"No user-assigned identity with client_id '{client_id}' is assigned to this resource.")
        return found[0]
    system = [a for a in managed if a["managed_identity"] == "system"]
    if not system:
        raise TokenError(400, "invalid_request", 400, "No system-assigned identity is enabled on this resource.")
    return system[0]


# -- access tokens -------------------------------------------------------------------------------------------


def issue_access_token(
    key: SigningKey,
    *,
    tenant_id: str,
    app: Mapping[str, Any],
    audience: str,
    lifetime: int,
    method: str,
    now: float | None = None,
) -> str:
    now = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now - 5 if lifetime > 0 else now + lifetime - 5,
        "exp": now + lifetime,
        "app_displayname": app.get("display_name", ""),
        "appid": app["client_id"],
        "appidacr": "1" if method == "secret" else "2",
        "idp": f"https://sts.windows.net/{tenant_id}/",
        "idtyp": "app",
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id}:{app['client_id']}")),
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id}:{app['client_id']}")),
        "tid": tenant_id,
        "uti": _b64url(secrets.token_bytes(16)),
        "ver": "1.0",
        "wids": list(app.get("directory_roles", [])),
    }
    roles = list(app.get("app_roles", []))
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "x5t": key.kid})


def validate_access_token(token: str, key: SigningKey, audiences: set[str]) -> dict[str, Any]:
    """Signature, expiry and audience of a bearer token; raise InvalidToken when any is wrong."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.private_key.public_key(),
            algorithms=["RS256"],
            audience=list(audiences),
            options={"require": ["exp", "aud", "tid"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    return claims


def mint_federated_token(
    key: SigningKey, *, issuer: str, subject: str, audience: str = FEDERATED_AUDIENCE, lifetime: int = 600
) -> str:
    """A workload-identity token from the emulator's own issuer (like a CI system's OIDC token), for tests."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now, "exp": now + lifetime,
              "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
