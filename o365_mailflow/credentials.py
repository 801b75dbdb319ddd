"""App-only credentials for the Exchange Online admin API, turned into MSAL ``client_credential`` values.

Why a module of its own: the CLI reads credentials from azure-identity's environment variable names, the Pulumi
providers from config, and both must hand MSAL exactly one well-formed credential without ever letting the secret
escape into a repr, a log line, an exception message or a pickled provider. Each class here keeps its secret in a
field that ``repr`` does not show, and reads files (certificates, federated tokens) only when MSAL asks.

Three kinds are supported, as azure-identity names them:

- :class:`ClientSecret`: ``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_SECRET``;
- :class:`Certificate`: ``AZURE_CLIENT_CERTIFICATE_PATH`` (PFX/PKCS#12, or PEM holding the private key and the
  certificate) + optional ``AZURE_CLIENT_CERTIFICATE_PASSWORD``;
- :class:`FederatedToken`: ``AZURE_FEDERATED_TOKEN_FILE`` (workload identity: GitHub Actions OIDC, Kubernetes),
  re-read on every token request because the platform rotates the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from .errors import AuthenticationError

__all__ = [
    "Credential",
    "ClientSecret",
    "Certificate",
    "FederatedToken",
    "credential_from_env",
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_CERTIFICATE_PATH",
    "ENV_CERTIFICATE_PASSWORD",
    "ENV_FEDERATED_TOKEN_FILE",
    "ENV_TENANT_ID",
]

ENV_TENANT_ID = "AZURE_TENANT_ID"
ENV_CLIENT_ID = "AZURE_CLIENT_ID"
ENV_CLIENT_SECRET = "AZURE_CLIENT_SECRET"
ENV_CERTIFICATE_PATH = "AZURE_CLIENT_CERTIFICATE_PATH"
ENV_CERTIFICATE_PASSWORD = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
ENV_FEDERATED_TOKEN_FILE = "AZURE_FEDERATED_TOKEN_FILE"

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


@runtime_checkable
class Credential(Protocol):
    """What :class:`o365_mailflow.client.ExoClient` needs from a credential."""

    client_id: str

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

    def not_after(self) -> Any:
        """The certificate's expiry (an aware UTC datetime), for `mailflow doctor`."""
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
                _, cert, _ = pkcs12.load_key_and_certificates(data, self.password.encode() if self.password else None)
                if cert is None:
                    raise ValueError("no certificate")
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


@dataclass(frozen=True)
class FederatedToken:
    """Workload identity federation: a JWT issued by GitHub Actions, Kubernetes, ... in a file.

    The file is read fresh on every token request (MSAL calls the callable), because the platform rotates it.
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


def credential_from_env(env: Mapping[str, str] | None = None) -> ClientSecret | Certificate | FederatedToken:
    """Build a credential from azure-identity's variable names.

    Precedence follows azure-identity (EnvironmentCredential, then WorkloadIdentityCredential): a client secret,
    then a certificate, then a federated token file. Raises :class:`AuthenticationError` naming the variables.
    """
    env = os.environ if env is None else env
    client_id = (env.get(ENV_CLIENT_ID) or "").strip()
    secret = env.get(ENV_CLIENT_SECRET) or ""
    cert_path = (env.get(ENV_CERTIFICATE_PATH) or "").strip()
    cert_password = env.get(ENV_CERTIFICATE_PASSWORD) or None
    token_file = (env.get(ENV_FEDERATED_TOKEN_FILE) or "").strip()
    if not (secret or cert_path or token_file):
        given = f"{ENV_CLIENT_ID} is set but no credential goes with it" if client_id else "no credential found"
        raise AuthenticationError(
            f"{given}: set {ENV_CLIENT_ID} and one of {ENV_CLIENT_SECRET}, "
            f"{ENV_CERTIFICATE_PATH} (with {ENV_CERTIFICATE_PASSWORD} if the file is protected) or "
            f"{ENV_FEDERATED_TOKEN_FILE}"
        )
    if not client_id:
        given = [n for n, v in ((ENV_CLIENT_SECRET, secret), (ENV_CERTIFICATE_PATH, cert_path),
                                (ENV_FEDERATED_TOKEN_FILE, token_file)) if v]
        raise AuthenticationError(
            f"{ENV_CLIENT_ID} is not set; it is required with {given[0]} "
            "(the app registration's Application (client) ID)"
        )
    if secret:
        return ClientSecret(client_id, secret)
    if cert_path:
        return Certificate(client_id, cert_path, cert_password)
    return FederatedToken(client_id, token_file)
