"""No configured secret reaches Pulumi state: not in the pickled ``__provider`` of any resource, not in any
serialized input or output, not in an error message, through a whole lifecycle over the engine protocol."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from .host import CONTOSO, DOMAIN, INBOUND, RELAY, Pulumi, Res, provider_config


def test_no_configured_secret_reaches_the_provider_blob_or_any_input_or_output(
    pulumi: Pulumi, emulator_tenant: Any
) -> None:
    secret = pulumi.config["clientSecret"]
    assert secret
    domain, relay = Res(DOMAIN, "contoso.com", CONTOSO), Res(INBOUND, "relay", RELAY)
    pulumi.up(domain, relay)
    relay.program = {**RELAY, "comment": "v2"}
    pulumi.up(domain, relay)
    pulumi.refresh(relay)
    with pytest.raises(grpc.RpcError) as info:  # an error message must not quote it either
        pulumi.up(Res(INBOUND, "dup", {**RELAY, "comment": "different"}))
    assert secret not in (info.value.details() or "")
    pulumi.destroy(relay)
    pulumi.destroy(domain)

    providers: set[str] = set()
    for host in pulumi.hosts:
        for method, request, reply in host.transcript:
            if method != "Configure":  # the engine hands the config to the host there, by design
                assert secret.encode() not in request, method
            assert secret.encode() not in reply, method
        for res in (domain, relay):
            for props in (res.inputs, res.outputs):
                if "__provider" in props:
                    providers.add(props["__provider"])
    assert len(providers) == 2
    for blob in providers:
        decoded = base64.b64decode(blob)
        assert secret.encode() not in decoded
        assert emulator_tenant.tenant_id.encode() not in decoded  # no config at all, not even the tenant


def _pfx(directory: Path, password: str) -> tuple[bytes, bytes, Path]:
    """A self-signed app certificate: (public PEM, private key PEM, PFX protected by ``password``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365-mailflow pulumi test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    pfx = directory / "app.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(password.encode())))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, pfx


def test_a_certificate_credential_from_config_works_and_its_password_and_key_stay_out_of_state(
    tmp_path: Path, emulator_tenant_factory: Any
) -> None:
    password = "pfx-password-for-pulumi-7731"
    cert_pem, key_pem, pfx = _pfx(tmp_path, password)
    tenant = emulator_tenant_factory(apps=[{"certificates": [cert_pem.decode()]}])
    config = {k: v for k, v in provider_config(tenant).items() if k != "clientSecret"}
    config.update(certificatePath=str(pfx), certificatePassword=password)
    pulumi = Pulumi(config)
    try:
        relay = Res(INBOUND, "relay", RELAY)
        assert pulumi.up(relay) == ["create"]
        pulumi.refresh(relay)
        pulumi.destroy(relay)
        key_body = b"".join(key_pem.splitlines()[1:-1])[:64]  # a piece of the base64 key material
        for host in pulumi.hosts:
            for method, request, reply in host.transcript:
                if method != "Configure":
                    assert password.encode() not in request, method
                assert password.encode() not in reply and key_body not in reply and key_body not in request
        for props in (relay.inputs, relay.outputs):
            decoded = base64.b64decode(props["__provider"])
            assert password.encode() not in decoded and str(pfx).encode() not in decoded
    finally:
        pulumi.close()
