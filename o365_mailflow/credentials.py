"""App-only credentials for the Exchange Online admin API, turned into MSAL ``client_credential`` values.

Why a module of its own: the CLI reads credentials from azure-identity's environment variable names, the Pulumi
providers from config, and both must hand MSAL exactly one well-formed credential without ever letting the secret
escape into a repr, a log line, an exception message or a pickled provider. Each class here keeps its secret in a
field that ``repr`` does not show, and reads files (certificates, federated tokens) only when MSAL asks.

The kinds, with azure-identity's names for the variables that select them:

- :class:`ClientSecret`: ``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_SECRET``;
- :class:`Certificate`: ``AZURE_CLIENT_CERTIFICATE_PATH`` (PFX/PKCS#12, or PEM holding the private key and the
  certificate) + optional ``AZURE_CLIENT_CERTIFICATE_PASSWORD``;
- :class:`FederatedToken`: ``AZURE_FEDERATED_TOKEN_FILE`` (workload identity: Kubernetes, or any platform that
  keeps a token file fresh), re-read on every token request because the platform rotates the file;
- :class:`GitHubActionsOidc`: inside a GitHub Actions job with ``id-token: write`` (the runner sets
  ``ACTIONS_ID_TOKEN_REQUEST_URL`` + ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``), a fresh OIDC token is requested for every
  sign-in, so a deploy that outlives one token (5-10 minutes) keeps signing in;
- :class:`ManagedIdentity`: an Azure managed identity (self-hosted runners on Azure VMs, Azure-hosted agents,
  App Service, Functions, Automation), chosen explicitly with azure-identity's ``AZURE_TOKEN_CREDENTIALS=
  ManagedIdentityCredential``; ``AZURE_CLIENT_ID`` then names a user-assigned identity (unset: system-assigned).

Why not azure-identity's classes: MSAL is already our token engine (its cache, its retry and throttling
behaviour, its sovereign-cloud authorities, and the emulator speaks exactly what it sends), and azure-identity
would bring a second HTTP stack, a second cache and its own async/credential-chain machinery for the two sources we
lacked. MSAL itself has ``ManagedIdentityClient`` (IMDS, App Service, Azure Arc, Machine Learning, Service Fabric)
and takes a client-assertion callable; what azure-identity adds on top (its variable names and precedence) is
followed here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

from .errors import AuthenticationError, TransportError

__all__ = [
    "Credential",
    "ClientSecret",
    "Certificate",
    "FederatedToken",
    "GitHubActionsOidc",
    "ManagedIdentity",
    "credential_from_env",
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_CERTIFICATE_PATH",
    "ENV_CERTIFICATE_PASSWORD",
    "ENV_FEDERATED_TOKEN_FILE",
    "ENV_TENANT_ID",
    "ENV_TOKEN_CREDENTIALS",
    "ENV_ACTIONS_REQUEST_URL",
    "ENV_ACTIONS_REQUEST_TOKEN",
    "MANAGED_IDENTITY",
]

ENV_TENANT_ID = "AZURE_TENANT_ID"
ENV_CLIENT_ID = "AZURE_CLIENT_ID"
ENV_CLIENT_SECRET = "AZURE_CLIENT_SECRET"
ENV_CERTIFICATE_PATH = "AZURE_CLIENT_CERTIFICATE_PATH"
ENV_CERTIFICATE_PASSWORD = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
ENV_FEDERATED_TOKEN_FILE = "AZURE_FEDERATED_TOKEN_FILE"
# azure-identity's switch for which credential DefaultAzureCredential uses; we honour its explicit
# "ManagedIdentityCredential" value (a machine's identity is never picked up by accident).
ENV_TOKEN_CREDENTIALS = "AZURE_TOKEN_CREDENTIALS"
MANAGED_IDENTITY = "ManagedIdentityCredential"
# Set by the GitHub Actions runner in a job with `permissions: id-token: write`.
ENV_ACTIONS_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
ENV_ACTIONS_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"  # Entra's audience for federated credentials
_GITHUB_TIMEOUT = (10, 30)  # connect, read (seconds) for the runner's token service
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


@runtime_checkable
class Credential(Protocol):
    """What :class:`o365_mailflow.client.ExoClient` needs from a credential."""

    @property
    def client_id(self) -> str:
        """The app registration's Application (client) ID (read-only: the credentials are frozen)."""
        ...

    def msal_credential(self) -> str | dict[str, Any]:
        """The ``client_credential`` argument for ``msal.ConfidentialClientApplication``."""
        ...

    def cache_key(self) -> str:
        """A stable, non-secret key: two credentials with the same key may share one MSAL app and token cache."""
        ...

    def describe(self) -> str:
        """A human description for error messages, e.g. ``client secret for app 0e0e...``; never the secret."""
        ...


def _require_client_id(client_id: str) -> None:
    if not client_id:
        raise AuthenticationError("the client id is empty; set it to the app registration's Application (client) ID")


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class ClientSecret:
    """An app registration's client secret."""

    client_id: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        _require_client_id(self.client_id)
        if not self.secret:
            raise AuthenticationError(f"the client secret for app {self.client_id} is empty")

    def __repr__(self) -> str:
        return f"ClientSecret(client_id={self.client_id!r}, secret=<redacted>)"

    def msal_credential(self) -> str:
        return self.secret

    def cache_key(self) -> str:
        # A digest, so that a wrong secret never reuses a token obtained with the right one.
        return "secret:" + _digest(self.client_id, self.secret)

    def describe(self) -> str:
        return f"client secret for app {self.client_id}"


@dataclass(frozen=True)
class Certificate:
    """A certificate credential: a PFX/PKCS#12 file, or a PEM file holding the private key and the certificate.

    PFX goes to MSAL as ``private_key_pfx_path`` (MSAL >= 1.29 derives the SHA-256 thumbprint and signs PS256).
    PEM goes as ``private_key`` + ``public_certificate`` without ``thumbprint``: MSAL >= 1.35 then computes the
    SHA-256 thumbprint itself (``x5t#S256``, PS256) instead of the deprecated SHA-1 form (checked in msal 1.39
    ``application.py``: a given ``thumbprint`` is treated as SHA-1, a ``public_certificate`` string yields SHA-256).
    """

    client_id: str
    path: str
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _require_client_id(self.client_id)
        object.__setattr__(self, "path", os.fspath(self.path))

    def __repr__(self) -> str:
        pw = "<redacted>" if self.password else None
        return f"Certificate(client_id={self.client_id!r}, path={self.path!r}, password={pw})"

    def _read(self) -> bytes:
        try:
            return Path(self.path).read_bytes()
        except OSError as exc:
            raise AuthenticationError(
                f"cannot read the certificate file {self.path} ({exc.strerror or type(exc).__name__}); "
                f"check {ENV_CERTIFICATE_PATH} or the certificate path in the provider config"
            ) from None

    def msal_credential(self) -> dict[str, Any]:
        data = self._read()
        password = self.password.encode() if self.password else None
        if b"-----BEGIN" in data:
            return self._pem_credential(data, password)
        # PKCS#12: check it opens here, so that a wrong password gives a message naming the file and the
        # variable instead of MSAL's bare ValueError.
        # late: cryptography loads only for a certificate credential
        from cryptography.hazmat.primitives.serialization import pkcs12

        try:
            key, cert, _ = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError):
            raise AuthenticationError(
                f"cannot open the PFX/PKCS#12 file {self.path}: the password is wrong or the file is not PKCS#12 "
                f"(set {ENV_CERTIFICATE_PASSWORD} to the file's password, or leave it unset for an unprotected file)"
            ) from None
        if key is None or cert is None:
            raise AuthenticationError(f"the PFX file {self.path} must hold both the private key and the certificate")
        cred: dict[str, Any] = {"private_key_pfx_path": self.path}
        if self.password:
            cred["passphrase"] = self.password
        return cred

    def _pem_credential(self, data: bytes, password: bytes | None) -> dict[str, Any]:
        # late: cryptography loads only for a certificate credential
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        key_block = cert_block = None
        for match in _PEM_BLOCK.finditer(data):
            label = match.group(1)
            if label.endswith(b"PRIVATE KEY") and key_block is None:
                key_block = match.group(0)
            elif label == b"CERTIFICATE" and cert_block is None:
                cert_block = match.group(0)
        if key_block is None or cert_block is None:
            raise AuthenticationError(
                f"the PEM file {self.path} must hold both a private key and a certificate "
                "(concatenate them into one file, as azure-identity expects)"
            )
        try:
            serialization.load_pem_private_key(key_block, password)
            x509.load_pem_x509_certificate(cert_block)
        except (ValueError, TypeError):
            raise AuthenticationError(
                f"cannot load the private key or certificate in {self.path}: the password is wrong or missing, "
                f"or the PEM is malformed (see {ENV_CERTIFICATE_PASSWORD})"
            ) from None
        cred: dict[str, Any] = {"private_key": key_block.decode(), "public_certificate": cert_block.decode()}
        if self.password:
            cred["passphrase"] = self.password
        return cred

    def not_after(self) -> dt.datetime:
        """The certificate's expiry (an aware UTC datetime), for `mailflow doctor`."""
        # late: cryptography loads only for a certificate credential
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import pkcs12

        data = self._read()
        try:
            if b"-----BEGIN" in data:
                block = next((m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) == b"CERTIFICATE"), None)
                if block is None:
                    raise ValueError("no certificate")
                cert = x509.load_pem_x509_certificate(block)
            else:
                _, found, _ = pkcs12.load_key_and_certificates(data, self.password.encode() if self.password else None)
                if found is None:
                    raise ValueError("no certificate")
                cert = found
        except (ValueError, TypeError):
            raise AuthenticationError(f"cannot read the certificate in {self.path} (wrong password or format)") from None
        return cert.not_valid_after_utc

    def cache_key(self) -> str:
        # The file's content and the password are part of the key: a rotated certificate or a corrected
        # password must get a new MSAL app, not the one that holds the old key (or failed to open it).
        try:
            content = hashlib.sha256(Path(self.path).read_bytes()).hexdigest()
        except OSError:
            content = "unreadable"
        return "cert:" + _digest(self.client_id, os.path.abspath(self.path), content, self.password or "")

    def describe(self) -> str:
        return f"certificate {self.path} for app {self.client_id}"


def _assertion_expiry(assertion: str) -> dt.datetime | None:
    """The ``exp`` of a JWT, unverified (only to say when it expired), or None when it has none."""
    # late: PyJWT loads only when a token file is read
    import jwt

    try:
        exp = jwt.decode(assertion, options={"verify_signature": False}).get("exp")
        return dt.datetime.fromtimestamp(int(exp), dt.timezone.utc) if exp is not None else None
    except (jwt.PyJWTError, TypeError, ValueError, OverflowError):
        return None


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "at an unknown time (the token has no readable exp claim)"
    ago = int((dt.datetime.now(dt.timezone.utc) - moment).total_seconds())
    age = f"{ago // 60} min {ago % 60} s ago" if ago >= 0 else f"in {-ago} s"
    return f"at {moment.strftime('%Y-%m-%d %H:%M:%S')} UTC ({age})"


_GITHUB_FIX = (
    f"on GitHub Actions do not write the OIDC token to a file: leave {ENV_FEDERATED_TOKEN_FILE} unset and give the "
    f"job 'permissions: id-token: write', so that mailflow requests a fresh token from {ENV_ACTIONS_REQUEST_URL} "
    "for every sign-in"
)


@dataclass(frozen=True)
class FederatedToken:
    """Workload identity federation: a JWT issued by Kubernetes, GitHub Actions, ... in a file.

    The file is read fresh on every token request (MSAL calls the callable), because the platform rotates it; the
    token is never kept beyond that one request.
    """

    client_id: str
    token_file: str

    def __post_init__(self) -> None:
        _require_client_id(self.client_id)
        object.__setattr__(self, "token_file", os.fspath(self.token_file))

    def read_assertion(self) -> str:
        try:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuthenticationError(
                f"cannot read the federated token file {self.token_file} "
                f"({exc.strerror or type(exc).__name__}); check {ENV_FEDERATED_TOKEN_FILE}"
            ) from None
        if not token:
            raise AuthenticationError(f"the federated token file {self.token_file} is empty")
        return token

    def msal_credential(self) -> dict[str, Callable[[], str]]:
        return {"client_assertion": self.read_assertion}

    def cache_key(self) -> str:
        return "federated:" + _digest(self.client_id, os.path.abspath(self.token_file))

    def describe(self) -> str:
        return f"federated token {self.token_file} for app {self.client_id}"

    def expiry_advice(self) -> str:
        """Why the assertion was refused as expired and what to change (the file was read twice by then)."""
        try:
            expiry = _when(_assertion_expiry(self.read_assertion()))
        except AuthenticationError as exc:
            expiry = f"(the file cannot be read now: {exc})"
        return (
            f"The token in {self.token_file} expired {expiry}, and it was still expired when the file was read "
            "again. Federated tokens live minutes, so whatever writes this file must replace it before it expires "
            f"(a Kubernetes projected service-account token is refreshed by the kubelet); {_GITHUB_FIX}. "
            "If the token is fresh, check this machine's clock."
        )


@dataclass(frozen=True)
class GitHubActionsOidc:
    """Workload identity federation from inside a GitHub Actions job, with a fresh OIDC token for every sign-in.

    GitHub's tokens live 5-10 minutes; a token written to a file once (the old workflows did) expires in the middle
    of a long deploy. The runner offers a token service instead (``ACTIONS_ID_TOKEN_REQUEST_URL`` with the bearer
    ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``, answer ``{"value": "<jwt>"}``); MSAL calls :meth:`fetch_assertion` each time
    it needs an access token, so no assertion is reused.
    """

    client_id: str
    request_url: str
    request_token: str = field(repr=False)
    audience: str = FEDERATED_AUDIENCE

    def __post_init__(self) -> None:
        _require_client_id(self.client_id)
        parts = urlsplit(self.request_url)
        # The request token is a bearer credential: it goes over TLS, or stays on this machine.
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise AuthenticationError(
                f"{ENV_ACTIONS_REQUEST_URL} must be an https:// URL (it is set by the GitHub Actions runner)"
            )
        if not self.request_token:
            raise AuthenticationError(f"{ENV_ACTIONS_REQUEST_TOKEN} is empty; the job needs 'id-token: write'")

    def __repr__(self) -> str:
        return f"GitHubActionsOidc(client_id={self.client_id!r}, request_token=<redacted>)"

    def _url(self) -> str:
        separator = "&" if urlsplit(self.request_url).query else "?"
        return f"{self.request_url}{separator}audience={quote(self.audience, safe='')}"

    def fetch_assertion(self) -> str:
        """A new OIDC token from the runner's token service (never cached: one per token request)."""
        # late: the HTTP stack loads only at sign-in (the Pulumi program imports this module)
        import requests

        try:
            response = requests.get(self._url(), headers={"Authorization": f"Bearer {self.request_token}",
                                                          "Accept": "application/json"}, timeout=_GITHUB_TIMEOUT)
        except requests.RequestException as exc:
            raise TransportError(
                f"cannot reach GitHub's OIDC token service ({ENV_ACTIONS_REQUEST_URL}): {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            hint = ("the job (or the workflow) needs 'permissions: id-token: write'"
                    if response.status_code in (401, 403) else "GitHub's token service failed; run the job again")
            raise AuthenticationError(
                f"GitHub refused to issue an OIDC token (HTTP {response.status_code}): {hint}"
            )
        try:
            value = response.json().get("value")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise AuthenticationError("GitHub's OIDC token service answered without a token ('value')")
        return value

    def msal_credential(self) -> dict[str, Callable[[], str]]:
        return {"client_assertion": self.fetch_assertion}

    def cache_key(self) -> str:
        # Neither the URL (it names the job) nor the token is secret-free enough to keep: a digest of both.
        return "github-oidc:" + _digest(self.client_id, self.request_url, self.request_token, self.audience)

    def describe(self) -> str:
        return f"GitHub Actions OIDC token for app {self.client_id}"

    def expiry_advice(self) -> str:
        return (
            "A token fetched from GitHub just now was refused as expired or not yet valid: check this machine's "
            "clock (Entra ID allows a few minutes of skew), and that the app's federated credential trusts "
            "https://token.actions.githubusercontent.com."
        )


@dataclass(frozen=True)
class ManagedIdentity:
    """An Azure managed identity: system-assigned (``client_id`` empty) or user-assigned (its client id).

    MSAL's ``ManagedIdentityClient`` finds the platform's endpoint itself (IMDS on VMs and VM scale sets, e.g. a
    self-hosted runner; ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER`` on App Service, Functions, Automation and
    container apps; Azure Arc; Azure Machine Learning; Service Fabric). It reads those variables from the process
    environment, where the platform puts them. No secret lives on this side.
    """

    client_id: str = ""

    def msal_managed_identity(self) -> Any:
        # late: msal loads only at sign-in (the Pulumi program imports this module)
        import msal

        if self.client_id:
            return msal.UserAssignedManagedIdentity(client_id=self.client_id)
        return msal.SystemAssignedManagedIdentity()

    def msal_credential(self) -> dict[str, Any]:
        # The Credential protocol's slot; the client builds a ManagedIdentityClient from msal_managed_identity().
        return dict(self.msal_managed_identity())

    def cache_key(self) -> str:
        return "managed-identity:" + (self.client_id or "system")

    def describe(self) -> str:
        if self.client_id:
            return f"user-assigned managed identity {self.client_id}"
        return "system-assigned managed identity"


_AnyCredential = ClientSecret | Certificate | FederatedToken | GitHubActionsOidc | ManagedIdentity


def credential_from_env(env: Mapping[str, str] | None = None) -> _AnyCredential:
    """Build a credential from azure-identity's variable names (and the GitHub Actions runner's).

    Precedence follows azure-identity (EnvironmentCredential, then WorkloadIdentityCredential): a client secret,
    then a certificate, then a federated token file; then, inside a GitHub Actions job that may request OIDC tokens,
    the runner's token service. ``AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential`` selects the machine's managed
    identity instead (as it restricts DefaultAzureCredential to it). Raises :class:`AuthenticationError` naming the
    variables.
    """
    env = os.environ if env is None else env
    client_id = (env.get(ENV_CLIENT_ID) or "").strip()
    if (env.get(ENV_TOKEN_CREDENTIALS) or "").strip().lower() == MANAGED_IDENTITY.lower():
        return ManagedIdentity(client_id)
    secret = env.get(ENV_CLIENT_SECRET) or ""
    cert_path = (env.get(ENV_CERTIFICATE_PATH) or "").strip()
    cert_password = env.get(ENV_CERTIFICATE_PASSWORD) or None
    token_file = (env.get(ENV_FEDERATED_TOKEN_FILE) or "").strip()
    request_url = (env.get(ENV_ACTIONS_REQUEST_URL) or "").strip()
    request_token = env.get(ENV_ACTIONS_REQUEST_TOKEN) or ""
    github = bool(request_url and request_token)
    if not (secret or cert_path or token_file or github):
        given = f"{ENV_CLIENT_ID} is set but no credential goes with it" if client_id else "no credential found"
        raise AuthenticationError(
            f"{given}: set {ENV_CLIENT_ID} and one of {ENV_CLIENT_SECRET}, "
            f"{ENV_CERTIFICATE_PATH} (with {ENV_CERTIFICATE_PASSWORD} if the file is protected) or "
            f"{ENV_FEDERATED_TOKEN_FILE}; in GitHub Actions give the job 'permissions: id-token: write'; "
            f"on an Azure machine with a managed identity set {ENV_TOKEN_CREDENTIALS}={MANAGED_IDENTITY}"
        )
    if not client_id:
        present = [n for n, v in ((ENV_CLIENT_SECRET, secret), (ENV_CERTIFICATE_PATH, cert_path),
                                  (ENV_FEDERATED_TOKEN_FILE, token_file), (ENV_ACTIONS_REQUEST_URL, github)) if v]
        raise AuthenticationError(
            f"{ENV_CLIENT_ID} is not set; it is required with {present[0]} "
            "(the app registration's Application (client) ID)"
        )
    if secret:
        return ClientSecret(client_id, secret)
    if cert_path:
        return Certificate(client_id, cert_path, cert_password)
    if token_file:
        return FederatedToken(client_id, token_file)
    return GitHubActionsOidc(client_id, request_url, request_token)
