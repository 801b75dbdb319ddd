"""``mailflow test-relay``: send one test message to the tenant's MX endpoint and explain the answer.

Why: every relay guide ends with "now test the connector" (Send-MailMessage to
``contoso-com.mail.protection.outlook.com``) and leaves the admin alone with an SMTP reply such as
``550 5.7.64 TenantAttribution``. This command sends the message over real SMTP, prints the conversation, and
explains the outcome in the stack's terms (which inbound connector matched, why the relay was allowed or
refused, what to change) with the same rules the emulator's front door applies (:mod:`o365_mailflow.routing`,
:mod:`o365_mailflow.routing_rules`).

Where the message goes: ``--mx HOST[:PORT]`` if given; for ``tenant: {emulator: true}`` the local emulator's SMTP
front door; for a stack whose tenant has an ``endpoint`` override, the front door that endpoint's emulator reports
(``GET /_emulator/smtp``); otherwise ``<domain-with-dashes>.mail.protection.outlook.com:25`` of the sender's
accepted domain. On a front door (it advertises XCLIENT), ``--source-ip`` is presented with the emulator-only
``XCLIENT ADDR=``; against Exchange Online it only feeds the explanation (the service sees your real address).

Exit codes: 0 the message was accepted; 2 refused (5xx); 3 deferred (4xx, try again later); 1 error (bad input,
invalid stack, the endpoint could not be reached).
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import sys
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .stackarg import fail as _fail, load_stack_arg, project_root

if TYPE_CHECKING:  # pragma: no cover - typing only: the command imports these late
    from typing_extensions import Buffer  # smtplib.SMTP.send's parameter type (collections.abc.Buffer is 3.12+)

    from ..routing import Verdict
    from ..shapes import Fields
    from ..stack import Stack

__all__ = ["command", "EXIT_ACCEPTED", "EXIT_ERROR", "EXIT_REFUSED", "EXIT_DEFERRED"]

EXIT_ACCEPTED, EXIT_ERROR, EXIT_REFUSED, EXIT_DEFERRED = 0, 1, 2, 3
_TYPES = ("AcceptedDomain", "InboundConnector", "OutboundConnector")
_HELO = "mailflow-test-relay.invalid"
_TIMEOUT = 30.0


@dataclass
class Target:
    host: str
    port: int
    kind: str  # "emulator" | "exchange-online" | "given"
    tenant: str | None = None  # tenant id for the emulator's XCLIENT TENANT=
    ca_file: str | None = None

    def to_dict(self) -> dict[str, str | int]:
        return {"host": self.host, "port": self.port, "kind": self.kind}


class _RecordingSMTP(smtplib.SMTP):
    """smtplib's client, keeping the conversation as ``S:``/``C:`` lines (the message body is summarised)."""

    def __init__(self) -> None:
        self.transcript: list[str] = []
        self._in_data = False
        super().__init__(timeout=_TIMEOUT)

    def send(self, s: Buffer | str) -> None:
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)
        if self._in_data:
            self.transcript.append(f"C: <message, {len(text.encode())} bytes>")
            self.transcript.append("C: .")
            self._in_data = False
        else:
            self.transcript.extend(f"C: {line}" for line in text.rstrip("\r\n").split("\r\n"))
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        code, message = super().getreply()
        lines = message.decode("utf-8", "replace").split("\n") if message else [""]
        for i, line in enumerate(lines):
            self.transcript.append(f"S: {code}{'-' if i < len(lines) - 1 else ' '}{line}".rstrip())
        if code == 354:
            self._in_data = True
        return code, message


@dataclass
class Outcome:
    stage: str  # the command the final answer belongs to: connect, STARTTLS, MAIL, RCPT, DATA
    code: int
    reply: str
    transcript: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.stage == "DATA" and self.code == 250:
            return EXIT_ACCEPTED
        if 400 <= self.code < 500:
            return EXIT_DEFERRED
        return EXIT_REFUSED if self.code >= 500 else EXIT_ERROR

    @property
    def result(self) -> str:
        return {EXIT_ACCEPTED: "accepted", EXIT_DEFERRED: "deferred", EXIT_REFUSED: "refused"}.get(
            self.exit_code, "error")


def _certificate_name(cert_file: Path) -> str:
    """The subject CN (else the first DNS SAN) of a PEM certificate: what TlsSenderCertificateName matches."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        _fail(f"cannot read the certificate {cert_file}: {getattr(exc, 'strerror', None) or exc}")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        return str(names[0].value).lower()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return str(san.get_values_for_type(x509.DNSName)[0]).lower()
    except (x509.ExtensionNotFound, IndexError):
        _fail(f"the certificate {cert_file} names no host (no subject CN, no DNS name)")


def _front_door_of(endpoint: str, ca_file: str | None) -> tuple[str, int] | None:
    """Ask an emulator at ``endpoint`` where its SMTP front door listens; None when it is not an emulator."""
    import requests

    try:
        session = requests.Session()
        session.trust_env = False  # loopback or a configured endpoint; never through a proxy from the environment
        response = session.get(f"{endpoint.rstrip('/')}/_emulator/smtp", verify=ca_file or True, timeout=10)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    data = response.json()
    return str(data["host"]), int(data["port"])


def _resolve_target(stack: Stack, sender_domain: str, mx: str | None) -> Target:
    from ..routing import mx_endpoint

    config = stack.tenant
    if mx:
        host, _, port = mx.rpartition(":") if mx.count(":") == 1 else (mx, "", "25")
        if not port.isdigit():
            raise click.BadParameter(f"{mx!r} is not HOST or HOST:PORT", param_hint="--mx")
        return Target(host, int(port), "given", config.tenant_id, config.ca_file)
    if config.emulator:
        from ..emulator import ensure_running
        from ..tenant import emulator_state_dir

        info = ensure_running(emulator_state_dir(root=project_root(stack.path)))
        if not info.smtp_host or not info.smtp_port:
            _fail("the running emulator has no SMTP front door (restart `mailflow emulator serve`)")
        return Target(str(info.smtp_host), int(info.smtp_port), "emulator", config.tenant_id or info.tenant_id,
                      str(info.ca_path))
    if config.endpoint:
        found = _front_door_of(config.endpoint, config.ca_file)
        if found:
            return Target(found[0], found[1], "emulator", config.tenant_id, config.ca_file)
    accepted = [str(o.fields.get("domainName")) for o in stack.of_type("AcceptedDomain")]
    domains = [d for d in accepted if not d.startswith("*") and not d.endswith(".onmicrosoft.com")]
    domain = sender_domain if sender_domain in domains else (domains[0] if domains else None)
    if domain is None:
        _fail("the stack declares no accepted domain to find the tenant's MX endpoint from; pass --mx HOST")
    return Target(mx_endpoint(domain, cloud=config.cloud or "commercial"), 25, "exchange-online")


def _message(sender: str, recipient: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = "mailflow test-relay"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="mailflow-test-relay.invalid")
    msg.set_content("Test message sent by `mailflow test-relay` to check a connector. It can be deleted.\n")
    return msg.as_bytes()


def _tls_context(target: Target, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    # Verification stays on: the emulator is trusted through its own CA file, Exchange Online through the system.
    context = ssl.create_default_context(cafile=target.ca_file) if target.ca_file else ssl.create_default_context()
    if cert:
        try:
            context.load_cert_chain(str(cert), str(key) if key else None)
        except (OSError, ssl.SSLError) as exc:
            _fail(f"cannot use the client certificate {cert}: {getattr(exc, 'strerror', None) or exc}")
    return context


def _converse(target: Target, sender: str, recipient: str, *, starttls: bool, cert: Path | None,
              key: Path | None, source_ip: str | None) -> Outcome:
    """One SMTP conversation; never raises for an SMTP answer, only records it."""
    client = _RecordingSMTP()

    def done(stage: str, code: int, text: bytes | str) -> Outcome:
        reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
        return Outcome(stage, code, f"{code} {reply}".strip(), client.transcript)

    try:
        code, text = client.connect(target.host, target.port)
        if code != 220:
            return done("connect", code, text)
        client.ehlo(_HELO)
        if client.has_extn("xclient"):
            attrs = [f"ADDR={source_ip}"] if source_ip else []
            attrs += [f"TENANT={target.tenant}"] if target.tenant else []
            if attrs:
                code, text = client.docmd("XCLIENT", " ".join(attrs))
                if code != 250:
                    return done("XCLIENT", code, text)
        if starttls or cert:
            if not client.has_extn("starttls"):
                return done("STARTTLS", 554, "the server does not offer STARTTLS")
            code, text = client.starttls(context=_tls_context(target, cert, key))
            if code != 220:
                return done("STARTTLS", code, text)
            client.ehlo(_HELO)
        code, text = client.mail(sender)
        if code != 250:
            return done("MAIL", code, text)
        code, text = client.rcpt(recipient)
        if code not in (250, 251):
            return done("RCPT", code, text)
        try:
            code, text = client.data(_message(sender, recipient))
        except smtplib.SMTPDataError as exc:
            return done("DATA", exc.smtp_code, exc.smtp_error)
        return done("DATA", code, text)
    except ssl.SSLError as exc:
        client.close()
        return Outcome("STARTTLS", 0, f"TLS failed: {exc.reason or exc}", client.transcript)
    except (OSError, smtplib.SMTPException) as exc:
        client.close()
        return Outcome("connect", 0, f"cannot talk to {target.host}:{target.port}: {exc}", client.transcript)


def _objects(stack: Stack) -> tuple[dict[str, list[Fields]], str]:
    """The tenant's objects as it holds them now (what answered), else the stack's declared objects."""
    from ..errors import MailflowError
    from ..snapshot import take_snapshot
    from ..connect import open_client
    from ..tenant import emulator_state_dir

    try:
        client = open_client(stack.tenant, env=os.environ,
                             state_dir=emulator_state_dir(root=project_root(stack.path)))
        snapshot = take_snapshot(client)
        return {t: [dict(o.fields) for o in snapshot.of_type(t)] for t in _TYPES}, "live"
    except (MailflowError, ValueError, OSError):
        return {t: [dict(o.fields) for o in stack.of_type(t)] for t in _TYPES}, "stack"


def _explain(stack: Stack, sender: str, recipient: str, *, ip: str | None, cert_name: str | None,
             tls: bool) -> tuple[Verdict, str, Verdict]:
    from ..routing import decide_recipient

    def verdict(objects: dict[str, list[Fields]]) -> Verdict:
        accepted, inbound, outbound = (objects[t] for t in _TYPES)
        return decide_recipient(recipient, ip=ip, cert_subject=cert_name, tls=tls, sender=sender,
                                accepted=accepted, inbound=inbound, outbound=outbound)

    objects, source = _objects(stack)
    live = verdict(objects)
    declared = verdict({t: [dict(o.fields) for o in stack.of_type(t)] for t in _TYPES}) if source == "live" else live
    return live, source, declared


def _echo_text(stack_name: str, target: Target, outcome: Outcome, verdict: Verdict, source: str, declared: Verdict,
               spf: str | None) -> None:
    click.echo(f"SMTP conversation with {target.host}:{target.port} ({target.kind}):")
    for line in outcome.transcript:
        click.echo(f"  {line}")
    click.echo(f"Result:    {outcome.result} at {outcome.stage}: {outcome.reply}")
    inbound = verdict.inbound
    if inbound.connector:
        how = {"ip": f"sender IP {inbound.ip}", "certificate": f"certificate {inbound.cert_subject}",
               "sender-domain": f"sender domain of {inbound.sender}"}.get(inbound.matched_by or "", "?")
        click.echo(f"Connector: {inbound.connector_type} inbound connector {inbound.connector} (matched by {how})")
    else:
        click.echo("Connector: none (the connection matches no enabled inbound connector)")
    where = {"mailbox": "an Exchange Online mailbox", "internet": "the internet (MX delivery)",
             "connector": f"outbound connector {verdict.connector}"
                          + (f" -> {', '.join(verdict.smart_hosts)}" if verdict.smart_hosts else ""),
             "undeliverable": "nowhere (accepted, then bounced)"}.get(verdict.outcome)
    if where and outcome.exit_code == EXIT_ACCEPTED:
        click.echo(f"Delivery:  {where}")
    click.echo(f"Why:       {verdict.reason}")
    if verdict.fix and outcome.exit_code != EXIT_ACCEPTED:
        click.echo(f"Fix:       {verdict.fix}")
    if spf and outcome.exit_code == EXIT_ACCEPTED and verdict.outcome in ("internet", "connector") \
            and verdict.route is not None and not verdict.route.accepted_domain:
        click.echo(f"SPF:       receivers check the sender domain's SPF record: publish \"{spf}\"")
    if not _agrees(outcome, verdict):
        click.echo(f"Note:      the rules predict {verdict.reply_line()}, but the endpoint answered differently; "
                   "the explanation may not fit this endpoint.")
    if declared is not verdict and declared.reply.code != verdict.reply.code:
        click.echo(f"Stack:     with the stack applied the answer would be {declared.reply_line()}: "
                   f"run `mailflow plan --stack {stack_name}` to see the changes.")
    click.echo(f"Rules fed: {'the tenant as it is now' if source == 'live' else 'the stack file (tenant unreadable)'}")


def _agrees(outcome: Outcome, verdict: Verdict) -> bool:
    if outcome.stage == "RCPT":
        return outcome.code == verdict.reply.code and verdict.reply.status in outcome.reply
    if outcome.stage == "DATA":
        return verdict.accepted
    return True  # refused before RCPT (connection, TLS): the rules do not speak to it


@click.command("test-relay")
@click.option("--stack", "stack_name", required=True, metavar="NAME",
              help="Stack name (stacks/NAME.yaml) or path to a stack file.")
@click.option("--from", "sender", required=True, metavar="ADDRESS", help="MAIL FROM address (e.g. scanner@contoso.com).")
@click.option("--to", "recipient", required=True, metavar="ADDRESS", help="RCPT TO address.")
@click.option("--cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Client certificate (PEM) to present after STARTTLS, as an on-premises server does.")
@click.option("--key", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Private key (PEM) of --cert, if not in the same file.")
@click.option("--starttls", is_flag=True, help="Upgrade to TLS before MAIL FROM (implied by --cert).")
@click.option("--source-ip", metavar="IP",
              help="The public IPv4 the device sends from. Presented to the emulator's front door (XCLIENT, "
                   "emulator-only); for Exchange Online used only in the explanation.")
@click.option("--mx", metavar="HOST[:PORT]", help="Send to this SMTP endpoint instead of the tenant's MX.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project directory holding stacks/ (default: current directory).")
def command(stack_name: str, sender: str, recipient: str, cert: Path | None, key: Path | None, starttls: bool,
            source_ip: str | None, mx: str | None, fmt: str, root: Path | None) -> None:
    """Send one test message to the tenant's MX endpoint and explain the answer.

    Exit codes: 0 accepted, 2 refused (5xx), 3 deferred (4xx), 1 error.
    """
    from ..routing import domain_of, spf_record
    from .route import _check_address

    _check_address(sender, "--from")
    _check_address(recipient, "--to")
    if key and not cert:
        raise click.UsageError("--key goes with --cert")
    if source_ip:
        try:
            import ipaddress

            ipaddress.IPv4Address(source_ip)
        except ValueError:
            raise click.BadParameter(f"{source_ip!r} is not an IPv4 address (connectors match IPv4 only)",
                                     param_hint="--source-ip") from None
    stack = load_stack_arg(stack_name, str(root) if root else None)
    target = _resolve_target(stack, domain_of(sender), mx)
    cert_name = _certificate_name(cert) if cert else None
    outcome = _converse(target, sender, recipient, starttls=starttls, cert=cert, key=key,
                        source_ip=source_ip if target.kind != "exchange-online" else None)
    if outcome.code == 0:
        _echo_transcript_on_error(outcome, fmt)
        _fail(outcome.reply)
    tls = bool(starttls or cert)
    verdict, source, declared = _explain(stack, sender, recipient, ip=source_ip, cert_name=cert_name, tls=tls)
    spf = spf_record([o.fields for o in stack.of_type("InboundConnector")], cloud=stack.tenant.cloud or "commercial")
    if fmt == "json":
        click.echo(json.dumps({
            "stack": stack.name,
            "target": target.to_dict(),
            "transcript": outcome.transcript,
            "result": {"outcome": outcome.result, "stage": outcome.stage, "code": outcome.code,
                       "reply": outcome.reply, "exitCode": outcome.exit_code},
            "explanation": {**verdict.to_dict(), "rulesFed": source, "agrees": _agrees(outcome, verdict)},
            "stackPrediction": declared.reply_line() if declared is not verdict else None,
        }, indent=2))
    else:
        _echo_text(stack_name, target, outcome, verdict, source, declared, spf)
    sys.exit(outcome.exit_code)


def _echo_transcript_on_error(outcome: Outcome, fmt: str) -> None:
    if fmt == "text":
        for line in outcome.transcript:
            click.echo(f"  {line}", err=True)

