"""Helpers for the client tests: self-signed certificates in the formats azure-identity accepts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFiles:
    cert_pem: bytes  # the public certificate, for registering on the emulated app
    pfx: Path  # PKCS#12 protected by `password`
    pem: Path  # private key (unencrypted) + certificate in one file
    pem_encrypted: Path  # private key encrypted with `password` + certificate
    password: str
    key_pem: bytes  # the unencrypted key, to prove it never leaks


def make_cert_files(directory: Path, password: str = "pfx-pass-phrase-123") -> CertFiles:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365-mailflow test app")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_enc = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    directory.mkdir(parents=True, exist_ok=True)
    pfx = directory / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", key, cert, None, serialization.BestAvailableEncryption(password.encode())
        )
    )
    pem = directory / "app.pem"
    pem.write_bytes(key_pem + cert_pem)
    pem_encrypted = directory / "app-encrypted.pem"
    pem_encrypted.write_bytes(key_enc + cert_pem)
    return CertFiles(cert_pem, pfx, pem, pem_encrypted, password, key_pem)


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert_files(tmp_path_factory.mktemp("certs"))
