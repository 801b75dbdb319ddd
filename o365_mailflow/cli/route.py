"""``mailflow route``: where Exchange Online would send a message, before the stack is merged.

Why a command: an admin reviewing a connector change wants to ask "where does mail to user@contoso.com go
now?" or "will my printer at 203.0.113.10 be allowed to relay?" without sending test mail. The answer comes
from :mod:`o365_mailflow.routing` applied to the stack's declared objects (over the service defaults), or to
the live tenant with ``--live``. Exit codes: 0 answered, 1 error (bad stack, bad input, tenant unreachable).

    mailflow route --stack dev user@contoso.com [--live] [--format json]
    mailflow route --stack dev --from-ip 203.0.113.10 [--cert-subject mail.contoso.com] [--sender a@contoso.com]
    mailflow route --stack dev --from-ip 203.0.113.10 --sender a@contoso.com [--tls] user@fabrikam.com

The last form answers what the SMTP front door of the tenant replies to that RCPT TO (the rules of
:func:`o365_mailflow.routing.decide_recipient`, which the emulator's front door runs too).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Sequence

import click

from ..errors import Diagnostic, MailflowError
from .stackarg import fail as _fail, load_stack_arg, project_root

if TYPE_CHECKING:  # pragma: no cover - typing only: the command imports these late (offline path stays light)
    from ..routing import ConnectorNote, InboundDecision, RouteDecision, Verdict
    from ..shapes import Fields
    from ..stack import Stack

__all__ = ["command"]

_TYPES = ("AcceptedDomain", "InboundConnector", "OutboundConnector")


def _check_address(value: str, hint: str, *, address: bool = True, wildcard: bool = False) -> None:
    """Refuse text that is not ``user@domain`` (or a bare domain) before simulating anything: routing a typo
    would print a confident but meaningless answer ("MX delivery for not an address")."""
    from ..specs import Domain

    text = value.strip().strip("<>").strip()
    domain = text
    if "@" in text:
        local, _, domain = text.rpartition("@")
        quoted = local.startswith('"') and local.endswith('"') and len(local) > 1
        if not address or not local or (not quoted and ("@" in local or any(c.isspace() for c in local))):
            allowed = "a domain such as contoso.com" if not address else "user@contoso.com or contoso.com"
            raise click.BadParameter(f"{value!r} is not a valid {'domain' if not address else 'email address'} "
                                     f"(allowed: {allowed})", param_hint=hint)
    _, problems = Domain(wildcard=wildcard).validate(domain)
    if problems:
        allowed = "user@contoso.com or contoso.com" if address else (
            "a domain such as mail.contoso.com" + (" or *.contoso.com" if wildcard else ""))
        raise click.BadParameter(f"{value!r}: {problems[0].message} (allowed: {allowed})", param_hint=hint)


def _stack_objects(stack: Stack) -> dict[str, list[Fields]]:
    return {t: [dict(o.fields) for o in stack.of_type(t)] for t in _TYPES}


def _live_objects(stack: Stack) -> dict[str, list[Fields]]:
    """Every object the tenant holds now (one list call per type). Imported late: the offline path must not
    load the HTTP client."""
    from ..snapshot import take_snapshot
    from ..connect import open_client
    from ..tenant import emulator_state_dir

    # Same state location as plan/apply: $MAILFLOW_STATE_DIR if set, else the project's .mailflow/emulator.
    state_dir = emulator_state_dir(root=project_root(stack.path))
    try:
        client = open_client(stack.tenant, env=os.environ, state_dir=state_dir)
        snapshot = take_snapshot(client)
    except (MailflowError, ValueError, OSError) as exc:
        # The snapshot's own wording ("nothing was planned") is about plan; name the underlying cause instead.
        cause = getattr(exc, "cause", None) or exc
        _fail(f"could not read the tenant: {str(cause).rstrip('.')}. Nothing was simulated.")
    return {t: [dict(o.fields) for o in snapshot.of_type(t)] for t in _TYPES}


def _warnings(stack: Stack, objects: dict[str, list[Fields]], live: bool) -> list[Diagnostic]:
    from ..routing import check_objects, check_stack

    if live:
        cloud = getattr(stack.tenant, "cloud", "commercial") or "commercial"
        return check_objects(objects["AcceptedDomain"], objects["InboundConnector"], objects["OutboundConnector"],
                             cloud=cloud)
    return check_stack(stack)


def _text_outbound(d: RouteDecision) -> list[str]:
    accepted = (f", {d.domain_type} accepted domain {d.accepted_domain}" if d.accepted_domain
                else ", not an accepted domain")
    lines = [f"Recipient: {d.recipient} (domain {d.domain}{accepted})"]
    route = {
        "connector": f"outbound connector {d.connector}",
        "internal-relay": f"InternalRelay: mailboxes in Exchange Online, unknown recipients via {d.connector}",
        "mailbox": "the recipient's Exchange Online mailbox",
        "mx": "MX delivery on the internet",
        "undeliverable": "undeliverable for unknown recipients (no OnPremises connector)",
        "blocked": "blocked (sendingToDomainDisabled)",
    }.get(d.path, d.path)
    if d.smart_hosts:
        route += f" -> smart hosts {', '.join(d.smart_hosts)}"
    lines += [f"Route:     {route}", f"Why:       {d.reason}"]
    return lines


def _text_inbound(d: InboundDecision) -> list[str]:
    seen = ", ".join(x for x in (f"IP {d.ip}" if d.ip else "", f"certificate {d.cert_subject}" if d.cert_subject
                                 else "", f"MAIL FROM {d.sender}" if d.sender else "") if x)
    connector = f"{d.connector_type} inbound connector {d.connector}" if d.connector else "none"
    if d.rejected:
        connector += " (message rejected)"
    relay = {True: "allowed", False: "refused", None: "undecided"}[d.relay_allowed]
    return [f"Connection: {seen}", f"Connector:  {connector}", f"Why:        {d.reason}",
            f"Relay:      {relay}: {d.relay_reason}"]


def _text_smtp(v: Verdict) -> list[str]:
    lines = _text_inbound(v.inbound) + (_text_outbound(v.route) if v.route is not None else [])
    lines.append(f"SMTP:      RCPT TO:<{v.recipient}> -> {v.reply_line()} ({v.outcome})")
    if v.fix and not v.accepted:
        lines.append(f"Fix:       {v.fix}")
    return lines


def _echo_text(lines: list[str], notes: Sequence[ConnectorNote], warnings: list[Diagnostic], source: str) -> None:
    for line in lines:
        click.echo(line)
    if notes:
        click.echo("Connectors:")
        for n in notes:
            click.echo(f"  {n.outcome:<9} {n.name}: {n.why}")
    click.echo(f"Source:    {source}")
    if warnings:
        click.echo("Warnings:")
        for w in warnings:
            click.echo(f"  {w.format()}")


@click.command("route")
@click.argument("recipient", required=False)
@click.option("--stack", "stack_name", required=True, metavar="NAME",
              help="Stack name (stacks/NAME.yaml) or path to a stack file.")
@click.option("--from-ip", metavar="IP", help="Inbound: the sending server's public IPv4 address.")
@click.option("--cert-subject", metavar="NAME", help="Inbound: the domain name on the sender's TLS certificate.")
@click.option("--sender", metavar="ADDRESS", help="Inbound: the MAIL FROM address (decides relaying).")
@click.option("--tls", is_flag=True, help="With RECIPIENT and --from-ip: the connection uses STARTTLS "
              "(implied by --cert-subject).")
@click.option("--mailbox/--no-mailbox", "has_mailbox", default=None,
              help="With RECIPIENT and --from-ip: whether the recipient has an Exchange Online mailbox (stacks do "
                   "not declare mailboxes; default: assume it does).")
@click.option("--live", is_flag=True, help="Route with what the tenant holds now instead of the stack file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(recipient: str | None, stack_name: str, from_ip: str | None, cert_subject: str | None,
            sender: str | None, tls: bool, has_mailbox: bool | None, live: bool, fmt: str) -> None:
    """Simulate where Exchange Online routes a message.

    With RECIPIENT: the outbound connector Exchange Online would use (exact recipientDomains match, then the
    most specific wildcard, then allAcceptedDomains, then *), MX delivery, or the InternalRelay path.
    With --from-ip/--cert-subject: the inbound connector that accepts the connection and whether relaying
    to the internet is allowed (the certificate or MAIL FROM domain must be an accepted domain).
    With both: the SMTP reply the tenant's MX gives to RCPT TO:<RECIPIENT> on that connection.
    """
    inbound_mode = bool(from_ip or cert_subject)
    if not recipient and not inbound_mode:
        raise click.UsageError("give a RECIPIENT such as user@contoso.com, or --from-ip IP [--cert-subject NAME]")
    if tls and not (recipient and inbound_mode):
        raise click.UsageError("--tls goes with RECIPIENT and --from-ip or --cert-subject")
    if sender and not inbound_mode:
        raise click.UsageError("--sender goes with --from-ip or --cert-subject (inbound)")
    if recipient and "@" in recipient and not recipient.split("@", 1)[1].strip():
        raise click.UsageError(f"{recipient} has no domain after the @")
    if recipient:
        _check_address(recipient, "RECIPIENT")
    if sender:
        _check_address(sender, "--sender")
    if cert_subject:
        _check_address(cert_subject, "--cert-subject", address=False, wildcard=True)

    from ..routing import RouteDecision, Verdict, decide_recipient, match_inbound, route_outbound

    stack = load_stack_arg(stack_name)
    objects = _live_objects(stack) if live else _stack_objects(stack)
    accepted, inbound, outbound = (objects[t] for t in _TYPES)
    decision: Verdict | RouteDecision | InboundDecision
    if recipient and inbound_mode:
        try:
            decision = decide_recipient(recipient, ip=from_ip, cert_subject=cert_subject,
                                        tls=tls or bool(cert_subject), sender=sender, accepted=accepted,
                                        inbound=inbound, outbound=outbound, has_mailbox=has_mailbox)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--from-ip") from None
    elif recipient:
        decision = route_outbound(recipient, accepted, outbound)
    else:
        try:
            decision = match_inbound(from_ip, cert_subject, sender, accepted, inbound)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--from-ip") from None
    warnings = _warnings(stack, objects, live)
    source = (f"live tenant {stack.tenant.label}" if live else
              f"stack {stack.name} ({stack.path}): declared objects over service defaults; "
              "objects the stack does not declare are unknown (use --live to route with the tenant's)")
    if fmt == "json":
        click.echo(json.dumps({
            "stack": stack.name,
            "source": "live" if live else "stack",
            "decision": decision.to_dict(),
            "warnings": [w.to_dict() for w in warnings],
        }, indent=2))
        return
    if isinstance(decision, Verdict):
        _echo_text(_text_smtp(decision), decision.inbound.notes, warnings, source)
    elif isinstance(decision, RouteDecision):
        _echo_text(_text_outbound(decision), decision.notes, warnings, source)
    else:
        _echo_text(_text_inbound(decision), decision.notes, warnings, source)
