"""Helpers for the SMTP rehearsal tests: a tenant with mailboxes, a local smart-host sink, a project whose stacks
point at the tenant, and an SMTP client that presents a declared source address through the emulator-only XCLIENT.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

MAILBOXES = ["alex@contoso.com", "megan@sales.contoso.com", "lee@fabrikam.com"]
VERIFIED = ["contoso.com", "sales.contoso.com", "fabrikam.com"]


def create_relay_tenant(emulator: Any) -> Any:
    """A fresh tenant with mailboxes (the seed's ``mailboxes`` key)."""
    from mailflow_testing import create_tenant

    return create_tenant(emulator.base_url, emulator.ca_path, verified_domains=VERIFIED, mailboxes=MAILBOXES)


class _SinkController(Controller):
    def __init__(self, handler: Any, sock: socket.socket) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1])

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


@dataclass
class Sink:
    """An on-premises smart host stand-in: a real SMTP server on loopback that keeps what it receives."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    controller: Any = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "data": envelope.original_content})
        return "250 2.0.0 Queued on-premises"

    def start(self) -> "Sink":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.controller = _SinkController(self, sock)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for item in self.received for r in item["to"]]


@dataclass
class FrontDoor:
    """The session emulator's SMTP front door, seen from one tenant."""

    emulator: Any
    tenant_id: str

    @property
    def host(self) -> str:
        return str(self.emulator.front_door.host)

    @property
    def port(self) -> int:
        return int(self.emulator.front_door.port)

    def http(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, f"{self.emulator.base_url}{path}", verify=str(self.emulator.ca_path),
                                    timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def map_smart_hosts(self, hosts: dict[str, int]) -> None:
        self.http("POST", "/_emulator/smtp/smart-hosts",
                  json={"tenant": self.tenant_id, "hosts": {k: f"127.0.0.1:{v}" for k, v in hosts.items()}})

    def messages(self) -> list[dict[str, Any]]:
        return list(self.http("GET", "/_emulator/smtp/messages", params={"tenant": self.tenant_id}).json()["value"])

    def certificate(self, name: str, directory: Path) -> tuple[Path, Path]:
        data = self.http("POST", "/_emulator/certificates", json={"name": name}).json()
        cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
        cert.write_text(data["certificate"])
        key.write_text(data["private_key"])
        return cert, key

    def connect(self, *, source_ip: str | None = None, cert: tuple[Path, Path] | None = None,
                starttls: bool = False) -> smtplib.SMTP:
        """An smtplib session after EHLO (XCLIENT with the tenant and the declared IP; STARTTLS if asked)."""
        client = smtplib.SMTP(self.host, self.port, local_hostname="device.contoso.test", timeout=30)
        client.ehlo()
        attrs = f"TENANT={self.tenant_id}" + (f" ADDR={source_ip}" if source_ip else "")
        code, text = client.docmd("XCLIENT", attrs)
        assert code == 250, text
        if starttls or cert:
            context = ssl.create_default_context(cafile=str(self.emulator.ca_path))
            if cert:
                context.load_cert_chain(str(cert[0]), str(cert[1]))
            client.starttls(context=context)
            client.ehlo()
        return client

    def send(self, sender: str, recipient: str, **connect: Any) -> tuple[int, str]:
        """MAIL/RCPT/DATA for one recipient: the RCPT reply when refused, else the DATA reply."""
        client = self.connect(**connect)
        try:
            code, text = client.mail(sender)
            assert code == 250, text
            code, text = client.rcpt(recipient)
            if code != 250:
                return code, text.decode()
            code, text = client.data(f"From: {sender}\r\nTo: {recipient}\r\nSubject: rehearsal\r\n\r\nhello\r\n")
            return code, text.decode()
        finally:
            client.quit()
