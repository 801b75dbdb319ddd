"""The emulated tenant's SMTP front door: ``<domain>.mail.protection.outlook.com`` on loopback.

Why: every relay guide ends with "now send a test message to the tenant's MX endpoint and read the SMTP reply".
Nobody can do that before the connectors exist; this server lets a test (or ``mailflow test-relay``) do it
against the emulated tenant, over real SMTP (aiosmtpd), with STARTTLS on the emulator's CA-issued certificate
and client certificates verified against the same CA.

What it decides comes from :mod:`o365_mailflow.routing_rules` (the one implementation ``mailflow route`` uses),
applied to the tenant's stored records as Get-* returns them: which inbound connector the connection matches,
RestrictDomainsTo* and RequireTls, relay rights (the 2023 rules), and the SMTP reply the service sends when it
refuses (each reply's source and confidence is in ``routing_REPLIES``). Accepted mail goes to a mailbox
(the tenant's ``mailboxes`` from the seed), to an outbound connector's smart host (over SMTP, to a loopback
sink that the smart-host map names), or "to the internet" (recorded only). Every transaction, refused or not,
is recorded and readable over HTTP (``GET /_emulator/smtp/messages``).

Emulator-only extensions, not part of the service:

* ``XCLIENT ADDR=<IPv4> TENANT=<tenant id or domain>`` (after EHLO, before MAIL): present a declared source
  address (a test on loopback cannot send from 203.0.113.10) and name the tenant whose MX this connection
  stands for (the real service knows it from the MX host name). Modelled on Postfix's XCLIENT; accepted from
  any client, which is why the front door listens on loopback only by default.
* The smart-host map (``smart host name -> 127.0.0.1:port``), per tenant or for all tenants, and a banned-IP list
  (answered with 5.7.606), both set through ``/_emulator/smtp/...``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from ..routing_rules import REPLIES, Verdict, decide_recipient
from .certs import TlsFiles
from .store import Store, TenantState

__all__ = ["FrontDoor", "SmtpTarget", "parse_target"]

BANNER_HOST = "mailflow-emulator.mail.protection.outlook.com"
IDENT = "Microsoft ESMTP MAIL Service (o365-mailflow emulator)"
ALL_TENANTS = "*"
_RELAY_TIMEOUT = 15.0
_LOG_CAP = 50_000

# Mail flow intelligence (Learn "Mail flow intelligence in EOP") [D]: what a queued message to an unreachable
# smart host is marked with. The emulator does not retry; the entry stays "queued".
_DNS_FAILED = "450 4.4.312 DNS query failed"
_CONNECTION_REFUSED = "451 4.4.316 Connection refused"


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_target(text: str) -> SmtpTarget:
    """``127.0.0.1:2525`` -> SmtpTarget; the smart-host map only points at loopback (no network here)."""
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:2525)")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"{text!r}: smart hosts map to loopback addresses only")
    except ValueError as exc:
        if host != "localhost":
            raise ValueError(str(exc) if "loopback" in str(exc) else f"{text!r}: {host} is not a loopback IP") \
                from None
    return SmtpTarget(host, int(port))


@dataclass
class _Transaction:
    """One MAIL FROM .. DATA exchange as recorded for ``GET /_emulator/smtp/messages``."""

    entry: dict[str, Any]
    verdicts: list[Verdict] = field(default_factory=list)


class _FrontDoorSMTP(SMTP):
    """aiosmtpd's SMTP server plus the emulator-only XCLIENT command."""

    def __init__(self, handler: Any, door: "FrontDoor", **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.door = door
        self.mailflow_ip: str | None = None
        self.mailflow_tenant: str | None = None

    @syntax("XCLIENT ADDR=<IPv4> TENANT=<tenant id or domain>")
    async def smtp_XCLIENT(self, arg: str) -> None:
        session, envelope = self.session, self.envelope
        assert session is not None and envelope is not None  # aiosmtpd sets both before any command runs
        if not session.host_name:
            await self.push("503 5.5.1 Error: send HELO/EHLO first")
            return
        if envelope.mail_from is not None:
            await self.push("503 5.5.1 Error: MAIL transaction in progress")
            return
        try:
            attrs = _xclient_attributes(arg)
        except ValueError as exc:
            await self.push(f"501 5.5.4 {exc}")
            return
        # Kept on the connection, not the session: aiosmtpd starts a new Session after STARTTLS (RFC 3207 resets
        # the SMTP state), but the declared address and tenant describe the connection itself.
        self.mailflow_ip = attrs.get("ADDR", self.mailflow_ip)
        self.mailflow_tenant = attrs.get("TENANT", self.mailflow_tenant)
        await self.push("250 2.0.0 XCLIENT accepted (emulator-only)")


def _xclient_attributes(arg: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for part in arg.split():
        name, sep, value = part.partition("=")
        name = name.upper()
        if not sep or not value:
            raise ValueError(f"XCLIENT attribute {part!r} is not NAME=VALUE")
        if name == "ADDR":
            try:
                attrs[name] = str(ipaddress.IPv4Address(value))
            except ValueError:
                raise ValueError(f"ADDR={value} is not an IPv4 address (connectors match IPv4 only)") from None
        elif name == "TENANT":
            attrs[name] = value.lower()
        else:
            raise ValueError(f"XCLIENT attribute {name} is not supported (ADDR, TENANT)")
    if not attrs:
        raise ValueError("XCLIENT needs ADDR=<IPv4> and/or TENANT=<tenant>")
    return attrs


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket we bind first (port 0 works, no race for a free port)."""

    def __init__(self, door: "FrontDoor", sock: socket.socket, **kwargs: Any) -> None:
        self._door = door
        self._sock = sock
        host, port = sock.getsockname()[:2]
        super().__init__(door, hostname=host, port=port, **kwargs)

    def factory(self) -> SMTP:
        return _FrontDoorSMTP(self.handler, self._door, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class FrontDoor:
    """The SMTP front door of every tenant in ``store``; ``start()`` runs it on its own event-loop thread."""

    def __init__(self, store: Store, tls: TlsFiles, *, host: str = "127.0.0.1", port: int = 0,
                 default_tenant: Callable[[], str | None] = lambda: None) -> None:
        self.store = store
        self.tls = tls
        self.host = host
        self.port = port
        self.default_tenant = default_tenant
        self._smart_hosts: dict[str, dict[str, SmtpTarget]] = {}
        self._banned: set[str] = set()
        self._log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._controller: _Controller | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.tls.server_cert), str(self.tls.server_key))
        # A client certificate is optional (printers relay by IP); when one is sent it must chain to the
        # emulator's CA, as Exchange Online requires a certificate from a trusted CA.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(str(self.tls.ca_cert))
        return context

    def start(self) -> "FrontDoor":
        if self._controller is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._controller = _Controller(self, sock, server_hostname=BANNER_HOST, ident=IDENT,
                                       tls_context=self._tls_context(), require_starttls=False)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def endpoint(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "starttls": True, "banner": BANNER_HOST,
                "defaultTenant": self.default_tenant()}

    # -- configuration (control endpoints) --------------------------------------------------------------------

    def set_smart_hosts(self, tenant: str | None, mapping: dict[str, str]) -> dict[str, str]:
        parsed = {str(name).lower().rstrip("."): parse_target(value) for name, value in mapping.items()}
        with self._lock:
            self._smart_hosts.setdefault(tenant or ALL_TENANTS, {}).update(parsed)
            return {k: str(v) for k, v in self._smart_hosts[tenant or ALL_TENANTS].items()}

    def clear_smart_hosts(self, tenant: str | None) -> None:
        with self._lock:
            if tenant:
                self._smart_hosts.pop(tenant, None)
            else:
                self._smart_hosts.clear()

    def smart_host_target(self, tenant: str, name: str) -> SmtpTarget | None:
        key = name.lower().rstrip(".")
        with self._lock:
            return (self._smart_hosts.get(tenant, {}).get(key)
                    or self._smart_hosts.get(ALL_TENANTS, {}).get(key))

    def set_banned(self, ips: list[str]) -> list[str]:
        parsed = {str(ipaddress.IPv4Address(str(ip).strip())) for ip in ips}
        with self._lock:
            self._banned = parsed
            return sorted(self._banned)

    def messages(self, tenant: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._log if tenant is None or e.get("tenant") == tenant]

    def clear_messages(self, tenant: str | None = None) -> None:
        with self._lock:
            self._log[:] = [] if tenant is None else [e for e in self._log if e.get("tenant") != tenant]

    # -- aiosmtpd handler hooks -------------------------------------------------------------------------------

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-XCLIENT ADDR TENANT", responses[-1]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        txn = self._transaction(server, session, envelope)
        ip = str(txn.entry["sourceIp"])
        if ip in self._banned:
            return self._refuse(txn, address, REPLIES["ip.banned"].line(ip=ip), "ip.banned")
        state = self._tenant(server)
        if state is None:
            return self._refuse(txn, address, REPLIES["tenant.wrong-region"].line(), "tenant.wrong-region")
        accepted, inbound, outbound, mailboxes = self._records(state)
        verdict = decide_recipient(
            address, ip=ip, cert_subject=txn.entry["certSubject"], tls=txn.entry["tls"],
            sender=envelope.mail_from or None, accepted=accepted, inbound=inbound, outbound=outbound,
            mailboxes=mailboxes)
        with self._lock:
            txn.verdicts.append(verdict)
            txn.entry["recipients"].append({**verdict.to_dict(), "delivery": None})
        if not verdict.accepted:
            return verdict.reply_line()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return verdict.reply_line()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        txn = self._transaction(server, session, envelope)
        content = envelope.original_content or b""
        message_id = f"{uuid.uuid4()}@{BANNER_HOST}"
        loop = asyncio.get_running_loop()
        deliveries: dict[str, dict[str, Any]] = {}
        for verdict in [v for v in txn.verdicts if v.accepted]:
            deliveries[verdict.recipient] = await self._deliver(loop, txn, verdict, envelope, content)
        with self._lock:
            for item in txn.entry["recipients"]:
                if item["recipient"] in deliveries:
                    item["delivery"] = deliveries[item["recipient"]]
            txn.entry.update(data=True, size=len(content), messageId=message_id)
        envelope.mailflow_txn = None  # type: ignore[attr-defined]
        return f"250 2.6.0 <{message_id}> [InternalId={txn.entry['id']}] Queued mail for delivery"

    # -- helpers ----------------------------------------------------------------------------------------------

    def _transaction(self, server: SMTP, session: Session, envelope: Envelope) -> _Transaction:
        txn: _Transaction | None = getattr(envelope, "mailflow_txn", None)
        if txn is not None:
            return txn
        state = self._tenant(server)
        declared = getattr(server, "mailflow_ip", None)
        peercert = (session.ssl or {}).get("peercert") if session.ssl else None
        entry: dict[str, Any] = {
            "id": next(self._ids),
            "time": time.time(),
            "tenant": state.tenant_id if state else getattr(server, "mailflow_tenant", None),
            "peer": (session.peer or ("",))[0],
            "sourceIp": str(declared or (session.peer or ("",))[0]),
            "sourceDeclared": declared is not None,
            "tls": session.ssl is not None,
            "certSubject": _subject_name(peercert),
            "helo": session.host_name,
            "mailFrom": envelope.mail_from,
            "recipients": [],
            "data": False,
        }
        txn = _Transaction(entry)
        envelope.mailflow_txn = txn  # type: ignore[attr-defined]
        with self._lock:
            self._log.append(entry)
            if len(self._log) > _LOG_CAP:
                del self._log[: len(self._log) - _LOG_CAP]
        return txn

    def _refuse(self, txn: _Transaction, address: str, line: str, code: str) -> str:
        with self._lock:
            txn.entry["recipients"].append({"recipient": address, "outcome": "refused", "code": code,
                                            "reply": line, "delivery": None})
        return line

    def _tenant(self, server: SMTP) -> TenantState | None:
        named = getattr(server, "mailflow_tenant", None) or self.default_tenant()
        return self.store.resolve(named) if named else None

    def _records(self, state: TenantState) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """Copies of the tenant's records as Get-* returns them (read under the store lock, like a cmdlet)."""
        with self.store.tenant(state.tenant_id) as locked:
            return (
                [dict(o) for o in locked.list("AcceptedDomain")],
                [dict(o) for o in locked.list("InboundConnector")],
                [dict(o) for o in locked.list("OutboundConnector")],
                [str(m).lower() for m in locked.config.get("mailboxes", [])],
            )

    async def _deliver(self, loop: asyncio.AbstractEventLoop, txn: _Transaction, verdict: Verdict,
                       envelope: Envelope, content: bytes) -> dict[str, Any]:
        if verdict.outcome == "mailbox":
            return {"status": "delivered", "to": "mailbox"}
        if verdict.outcome == "undeliverable":
            return {"status": "bounced", "reason": verdict.reason}
        if verdict.outcome == "connector" and verdict.smart_hosts:
            tenant = str(txn.entry["tenant"])
            return await loop.run_in_executor(None, self._relay, tenant, verdict, envelope.mail_from or "",
                                              content)
        # A connector that uses MX records, or no connector: Exchange Online delivers on the internet.
        return {"status": "internet", "connector": verdict.connector}

    def _relay(self, tenant: str, verdict: Verdict, mail_from: str, content: bytes) -> dict[str, Any]:
        """Send to the connector's smart hosts in order (as the service does), through the smart-host map."""
        result: dict[str, Any] = {}
        for name in verdict.smart_hosts:
            target = self.smart_host_target(tenant, name)
            base = {"connector": verdict.connector, "smartHost": name}
            if target is None:
                result = {**base, "status": "queued", "reply": _DNS_FAILED}
                continue
            try:
                with smtplib.SMTP(target.host, target.port, local_hostname=BANNER_HOST,
                                  timeout=_RELAY_TIMEOUT) as client:
                    client.sendmail(mail_from, [verdict.recipient], content)
            except smtplib.SMTPResponseException as exc:
                error = exc.smtp_error
                reply = f"{exc.smtp_code} {error.decode(errors='replace') if isinstance(error, bytes) else error}"
                return {**base, "target": str(target), "status": "bounced", "reply": reply}
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                return {**base, "target": str(target), "status": "bounced",
                        "reply": f"{code} {text.decode(errors='replace')}"}
            except (OSError, smtplib.SMTPException):
                result = {**base, "target": str(target), "status": "queued", "reply": _CONNECTION_REFUSED}
                continue
            return {**base, "target": str(target), "status": "relayed"}
        return result


def _subject_name(peercert: dict[str, Any] | None) -> str | None:
    """The client certificate's subject CN (what TlsSenderCertificateName is compared with), else its first DNS
    SAN. Whether the service also looks at other SANs is not documented [I]."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "DNS":
            return str(value)
    return None
