"""Exchange Online's mail-flow rules as pure functions over connector and accepted-domain records.

Why this module exists: ``mailflow route`` (which simulates routing from a stack or a live snapshot) and the
emulator's SMTP front door (which applies the same rules to real SMTP conversations) must never disagree, so
the rules exist once, here. The emulator is written from the service contract and must not import the client's
specs or normalisation (a shared bug would hide itself); this module imports nothing from either side, only
the standard library, and reads records **as the service returns them** (the Get-* property names of
``exo-cmdlets.md``: ``SenderIPAddresses``, ``RecipientDomains``, ``SenderDomains`` as ``smtp:<domain>;1`` ...).
The emulator hands it its stored records; :mod:`o365_mailflow.routing` hands it the stack's (or the live
tenant's) normalised objects renamed to the same property names through the specs table. See
docs/architecture.md, "One set of mail-flow rules".

* :func:`route_outbound`: which outbound connector Exchange Online uses for a recipient, or MX delivery, or the
  InternalRelay path for unknown recipients, and why (``exo-cmdlets.md`` §10, §6.4);
* :func:`match_inbound`: which inbound connector a connection is attributed to by TLS certificate name or
  sender IP, and whether it may relay to the internet (§2.3, the 2023 relay rules);
* :func:`decide_recipient`: what the service answers to one ``RCPT TO`` on such a connection: accepted (and
  where the message goes) or refused, with the SMTP reply and enhanced status code of :data:`REPLIES`.

Records may omit properties; a missing property takes the service default where one matters (``Enabled``
true). Explanations are written in the stack's terms (``senderIpAddresses``, ``recipientDomains``) because a
mail admin reads them next to a stack file.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = [
    "sender_networks",
    "OUTBOUND_PRECEDENCE",
    "ConnectorNote",
    "RouteDecision",
    "InboundDecision",
    "Reply",
    "REPLIES",
    "ACCEPTED_REPLY",
    "Verdict",
    "route_outbound",
    "match_inbound",
    "decide_recipient",
    "domain_of",
    "address_space_domain",
]

Fields = Mapping[str, Any]

# ---------------------------------------------------------------------------------------------------------------------
# Outbound connector precedence (exo-cmdlets.md §10, item 1 and 2)
#
# The Microsoft article "Set up connectors to route mail" (S2, section "What happens when I have multiple
# connectors for the same scenario?") lists the order as:
#     1. exact RecipientDomains match, 2. the connector for all accepted domains, 3. wildcard match.
# Its own worked example contradicts that list: with accepted domains contoso.com, sales.contoso.com and
# fabrikam.com, connector 1 = all accepted domains, connector 2 = contoso.com, connector 3 = *.contoso.com, it
# says sales.contoso.com goes to connector 3 ("the most specific connector possible"), although a literal
# reading of the list would pick connector 1 (sales.contoso.com is an accepted domain).
# We follow the example, as the reference recommends [I]: exact > most specific wildcard > all accepted
# domains > bare "*" > MX (or the mailbox). To change the order, reorder this tuple; nothing else encodes it.
# ---------------------------------------------------------------------------------------------------------------------
OUTBOUND_PRECEDENCE: tuple[str, ...] = ("exact", "wildcard", "all-accepted-domains", "star")

_MATCH_WORDS = {
    "exact": "exact recipientDomains match",
    "wildcard": "wildcard recipientDomains match",
    "all-accepted-domains": "allAcceptedDomains: the recipient domain is an accepted domain",
    "star": "recipientDomains * (every domain)",
}


def _records(objs: Iterable[Fields] | None) -> list[Fields]:
    return list(objs or ())


# ---------------------------------------------------------------------------------------------------------------------
# Domain helpers
# ---------------------------------------------------------------------------------------------------------------------


def domain_of(address: str) -> str:
    """The domain of ``user@domain`` (or the text itself when it has no ``@``), lower-cased."""
    text = address.strip().strip("<>").strip()
    return text.rsplit("@", 1)[-1].strip().rstrip(".").lower()


def _wildcard_depth(pattern: str, domain: str) -> int | None:
    """How specific a ``*.suffix`` pattern is for ``domain`` (labels in the suffix), or None if it does not match.

    ``*.contoso.com`` stands for the domain and its subdomains (§4.1 RecipientDomains [D]), so it matches
    ``contoso.com`` as well as ``a.b.contoso.com``; a bare ``*`` is not a wildcard here (it has its own rank).
    """
    if not pattern.startswith("*."):
        return None
    suffix = pattern[2:]
    return suffix.count(".") + 1 if _is_within(domain, suffix) else None


def _name_covers(pattern: str, name: str) -> bool:
    """A certificate or domain pattern (exact, or ``*.suffix`` = suffix and subdomains [I]) covers ``name``."""
    pattern, name = pattern.lower(), name.lower()
    return pattern == name or _wildcard_depth(pattern, name.removeprefix("*.")) is not None


def _is_within(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def address_space_domain(entry: object) -> str:
    """The domain of a SenderDomains entry, as the service returns it (``smtp:contoso.com;1``, exo-admin-api.md
    §3.2 [LIVE]) or as a stack writes it (``contoso.com``), lower-cased."""
    text = str(entry).strip().lower()
    if text.startswith("smtp:"):
        text = text[5:].rsplit(";", 1)[0] if ";" in text else text[5:]
    return text


def _domain_pattern_covers(pattern: object, domain: str) -> bool:
    """A recipientDomains/senderDomains entry covers ``domain``: ``*``, the domain itself, or a ``*.`` wildcard."""
    text = address_space_domain(pattern)
    return text == "*" or text == domain or _wildcard_depth(text, domain) is not None


def _accepted_entry(domain: str, accepted: Sequence[Fields]) -> Fields | None:
    """The accepted domain that receives mail for ``domain``: its exact entry, else a wildcard entry, else the
    closest parent with ``matchSubDomains`` (§6.2: subdomains are accepted only with MatchSubDomains)."""
    best: tuple[int, Fields] | None = None
    for entry in accepted:
        name = str(entry.get("DomainName") or "").lower()
        if name == domain:
            return entry
        depth = _wildcard_depth(name, domain)
        if depth is None and entry.get("MatchSubDomains") and domain.endswith("." + name):
            depth = name.count(".") + 1
        if depth is not None and (best is None or depth > best[0]):
            best = (depth, entry)
    return best[1] if best else None


def _is_accepted_name(domain: str, accepted: Sequence[Fields]) -> bool:
    """``domain`` is itself an accepted domain (what AllAcceptedDomains covers: §10.7 and S3 say subdomains
    under MatchSubDomains need ``*.domain`` on the connector, so they do not count here)."""
    return any(str(a.get("DomainName") or "").lower() == domain for a in accepted)


def _belongs_to_accepted(name: str, accepted_names: Iterable[object]) -> bool:
    """A certificate domain "belongs to" an accepted domain: equal to it or a host under it (``mail.contoso.com``
    under ``contoso.com``). S11 does not say whether MatchSubDomains matters here; we assume it does not [I]."""
    name = name.lower().removeprefix("*.")
    for accepted_name in accepted_names:
        accepted_name = str(accepted_name or "").lower().removeprefix("*.")
        if accepted_name and _is_within(name, accepted_name):
            return True
    return False


def _names(accepted: Sequence[Fields]) -> list[str]:
    return [str(a.get("DomainName") or "") for a in accepted]


def sender_networks(values: Iterable[object]) -> list[ipaddress.IPv4Network]:
    out = []
    for value in values or ():
        net = _network(str(value))
        if net is not None:
            out.append(net)
    return out


@functools.lru_cache(maxsize=65536)
def _network(text: str) -> ipaddress.IPv4Network | None:
    """One sender network (None when it does not parse: a live value we cannot parse is not ours to route on).

    Parsed once per process: a plan reads each connector's networks for the SPF record, the overlap check and
    both states of the mail-flow impact, and ipaddress parsing costs more than all of those uses together.
    Networks are immutable, so sharing one object between callers changes no answer.
    """
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return None


def _net_str(net: ipaddress.IPv4Network) -> str:
    return str(net.network_address) if net.prefixlen == 32 else str(net)


# ---------------------------------------------------------------------------------------------------------------------
# Outbound
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectorNote:
    """What the simulator made of one connector: ``chosen``, ``candidate``, ``skipped`` or ``no-match``."""

    name: str
    outcome: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "outcome": self.outcome, "why": self.why}


@dataclass(frozen=True)
class RouteDecision:
    """Where Exchange Online sends mail for one recipient.

    ``path``: ``connector`` (an outbound connector), ``internal-relay`` (InternalRelay domain: mailboxes in
    Exchange Online, unknown recipients relayed on-premises through ``connector``), ``mailbox`` (Authoritative
    accepted domain, no connector), ``mx`` (internet delivery by the domain's MX records), ``undeliverable``
    (InternalRelay domain with no OnPremises connector), ``blocked`` (sendingToDomainDisabled).
    """

    recipient: str
    domain: str
    path: str
    reason: str
    connector: str | None = None
    match: str | None = None  # one of OUTBOUND_PRECEDENCE
    pattern: str | None = None  # the recipientDomains entry that matched
    smart_hosts: tuple[str, ...] = ()
    accepted_domain: str | None = None
    domain_type: str | None = None
    notes: tuple[ConnectorNote, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": "outbound",
            "recipient": self.recipient,
            "domain": self.domain,
            "path": self.path,
            "connector": self.connector,
            "match": self.match,
            "pattern": self.pattern,
            "smartHosts": list(self.smart_hosts),
            "acceptedDomain": self.accepted_domain,
            "domainType": self.domain_type,
            "reason": self.reason,
            "connectors": [n.to_dict() for n in self.notes],
        }


@dataclass(frozen=True)
class _Match:
    """An outbound connector that matches a recipient domain, with what ranks it against the others."""

    rank: int  # index in OUTBOUND_PRECEDENCE
    depth: int  # wildcard specificity (labels); 0 otherwise
    kind: str
    pattern: str | None
    connector: Mapping[str, Any]

    @property
    def key(self) -> tuple[int, int]:
        return (self.rank, -self.depth)


def _skip_reason(c: Fields) -> str | None:
    if not c.get("Enabled", True):
        return "disabled"
    if c.get("IsTransportRuleScoped"):
        return "rule-scoped: used only when a mail flow rule redirects to it"
    # Test-mode connectors: their routing behaviour is undocumented (§10 item 4 [I]); we route through them.
    return None


def _connector_match(c: Fields, domain: str, accepted: Sequence[Fields]) -> _Match | None:
    """The best way one connector matches ``domain`` under :data:`OUTBOUND_PRECEDENCE`, or None."""
    found: list[_Match] = []
    rank = OUTBOUND_PRECEDENCE.index
    for pattern in c.get("RecipientDomains") or ():
        pattern = str(pattern).lower()
        if pattern == domain:
            found.append(_Match(rank("exact"), 0, "exact", pattern, c))
        elif pattern == "*":
            found.append(_Match(rank("star"), 0, "star", pattern, c))
        else:
            depth = _wildcard_depth(pattern, domain)
            if depth is not None:
                found.append(_Match(rank("wildcard"), depth, "wildcard", pattern, c))
    if c.get("AllAcceptedDomains") and _is_accepted_name(domain, accepted):
        found.append(_Match(rank("all-accepted-domains"), 0, "all-accepted-domains", None, c))
    return min(found, key=lambda m: m.key) if found else None


def _choose(domain: str, connectors: Sequence[Fields], accepted: Sequence[Fields],
            allow: Callable[[Fields], str | None] = lambda c: None) -> tuple[list[_Match], list[ConnectorNote]]:
    """The best matches (several only on a tie) and a note per connector. ``allow`` may exclude more."""
    matches: list[_Match] = []
    notes: dict[str, ConnectorNote] = {}
    for c in connectors:
        name = str(c.get("Name") or "?")
        why_not = _skip_reason(c) or allow(c)
        if why_not:
            notes[name] = ConnectorNote(name, "skipped", why_not)
            continue
        m = _connector_match(c, domain, accepted)
        if m is None:
            notes[name] = ConnectorNote(name, "no-match", f"does not cover {domain}")
            continue
        matches.append(m)
        notes[name] = ConnectorNote(name, "candidate", _describe(m))
    if not matches:
        return [], list(notes.values())
    best_key = min(m.key for m in matches)
    best = sorted((m for m in matches if m.key == best_key), key=lambda m: str(m.connector.get("Name")).casefold())
    for m in best:
        name = str(m.connector.get("Name") or "?")
        notes[name] = ConnectorNote(name, "chosen" if m is best[0] else "candidate", _describe(m))
    for m in matches:
        if all(m is not b for b in best):
            name = str(m.connector.get("Name") or "?")
            notes[name] = ConnectorNote(name, "candidate",
                                        f"{_describe(m)}; loses to {best[0].connector.get('Name')} ({best[0].kind})")
    return best, list(notes.values())


def _describe(m: _Match) -> str:
    words = _MATCH_WORDS[m.kind]
    return f"{words} {m.pattern}" if m.kind in ("exact", "wildcard") else words


def route_outbound(recipient: str, accepted: Sequence[Fields], outbound: Sequence[Fields]) -> RouteDecision:
    """Simulate Exchange Online's outbound routing for one recipient address (or bare domain)."""
    domain = domain_of(recipient)
    acc = _records(accepted)
    conns = _records(outbound)
    entry = _accepted_entry(domain, acc)
    domain_type = str(entry.get("DomainType")) if entry else None
    accepted_name = str(entry.get("DomainName")) if entry else None
    base: dict[str, Any] = dict(recipient=recipient, domain=domain, accepted_domain=accepted_name,
                                domain_type=domain_type)

    if entry and entry.get("SendingToDomainDisabled"):
        return RouteDecision(**base, path="blocked",
                             reason=f"{accepted_name} has sendingToDomainDisabled: true, so Exchange Online does "
                                    "not deliver mail to it. Set it to false to allow delivery.")

    if domain_type == "InternalRelay":
        return _internal_relay(domain, acc, conns, base)

    best, notes = _choose(domain, conns, acc)
    if best:
        chosen = best[0]
        reason = f"Exchange Online routes mail for {domain} through outbound connector " \
                 f"{chosen.connector.get('Name')!s} ({_describe(chosen)})."
        reason += _tie_text(best) + _precedence_text(notes)
        if domain_type == "Authoritative":
            reason += (f" {accepted_name} is an Authoritative accepted domain: a recipient with an Exchange Online "
                       "mailbox gets the mail there and an unknown recipient is rejected; the connector carries "
                       "mail for recipients hosted elsewhere (hybrid mail users, contacts).")
        return RouteDecision(**base, path="connector", connector=str(chosen.connector.get("Name")),
                             match=chosen.kind, pattern=chosen.pattern,
                             smart_hosts=_smart_hosts(chosen.connector), reason=reason, notes=tuple(notes))
    if domain_type == "Authoritative":
        return RouteDecision(**base, path="mailbox", notes=tuple(notes),
                             reason=f"{domain} is covered by the Authoritative accepted domain {accepted_name} and no "
                                    "enabled outbound connector covers it: Exchange Online delivers to the recipient's "
                                    "mailbox and rejects unknown recipients (Directory-Based Edge Blocking).")
    return RouteDecision(**base, path="mx", notes=tuple(notes),
                         reason=f"No enabled outbound connector covers {domain} and it is not an accepted domain: "
                                f"Exchange Online delivers by the MX records of {domain} on the internet.")


def _internal_relay(domain: str, acc: Sequence[Fields], conns: Sequence[Fields],
                    base: dict[str, Any]) -> RouteDecision:
    """§6.4, §10.7: mailboxes get the mail in Exchange Online; unknown recipients go on-premises through an
    enabled OnPremises outbound connector covering the domain. Only OnPremises connectors are considered for
    that path [I: §10.7 says "through an OnPremises outbound connector"]."""
    best, notes = _choose(domain, conns, acc, allow=lambda c: None if c.get("ConnectorType") == "OnPremises"
                          else "not OnPremises: the InternalRelay path uses OnPremises connectors only")
    accepted_name = base["accepted_domain"]
    head = (f"{domain} is covered by the InternalRelay accepted domain {accepted_name}: a recipient with an Exchange "
            "Online mailbox gets the mail there; an unknown recipient is relayed on-premises")
    if best:
        chosen = best[0]
        reason = (f"{head} through outbound connector {chosen.connector.get('Name')} ({_describe(chosen)})."
                  + _tie_text(best) + _precedence_text(notes))
        return RouteDecision(**base, path="internal-relay", connector=str(chosen.connector.get("Name")),
                             match=chosen.kind, pattern=chosen.pattern, smart_hosts=_smart_hosts(chosen.connector),
                             reason=reason, notes=tuple(notes))
    sub = "" if domain == accepted_name else f" (a subdomain: the connector needs *.{accepted_name})"
    add = domain if not sub else f"*.{accepted_name}"
    return RouteDecision(**base, path="undeliverable", notes=tuple(notes),
                         reason=f"{head}, but no enabled OnPremises outbound connector covers {domain}{sub}, so mail "
                                f"to unknown recipients cannot be delivered. Add {add} "
                                "to recipientDomains of an OnPremises outbound connector (or allAcceptedDomains: true), "
                                "or make the domain Authoritative.")


def _smart_hosts(c: Fields) -> tuple[str, ...]:
    return tuple(str(h) for h in c.get("SmartHosts") or ()) if c.get("UseMXRecord") is False else ()


def _tie_text(best: Sequence[_Match]) -> str:
    if len(best) < 2:
        return ""
    names = ", ".join(str(m.connector.get("Name")) for m in best)
    return (f" Several connectors match equally well ({names}); which one Exchange Online uses is not documented, "
            "so this simulator picks the first by name. Remove the domain from all but one.")


def _precedence_text(notes: Sequence[ConnectorNote]) -> str:
    losers = [n for n in notes if n.outcome == "candidate" and "loses to" in n.why]
    if not losers:
        return ""
    return " Also matching but less specific: " + "; ".join(f"{n.name} ({n.why.split(';')[0]})" for n in losers) + "."


# ---------------------------------------------------------------------------------------------------------------------
# Inbound
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundDecision:
    """Which inbound connector accepts a connection, and whether it may relay to the internet.

    ``matched_by``: ``certificate``, ``ip`` or ``sender-domain`` (Partner connectors only), or None.
    ``relay_allowed``: True/False, or None when it depends on a MAIL FROM address that was not given.
    ``rejected``: a Partner connector restricted to IPs or a certificate refuses the message.
    """

    ip: str | None
    cert_subject: str | None
    sender: str | None
    reason: str
    relay_allowed: bool | None
    relay_reason: str
    connector: str | None = None
    connector_type: str | None = None
    matched_by: str | None = None
    rejected: bool = False
    notes: tuple[ConnectorNote, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": "inbound",
            "ip": self.ip,
            "certSubject": self.cert_subject,
            "sender": self.sender,
            "connector": self.connector,
            "connectorType": self.connector_type,
            "matchedBy": self.matched_by,
            "rejected": self.rejected,
            "reason": self.reason,
            "relayAllowed": self.relay_allowed,
            "relayReason": self.relay_reason,
            "connectors": [n.to_dict() for n in self.notes],
        }


def _ip_in(ip: ipaddress.IPv4Address | None, c: Fields) -> bool:
    return ip is not None and any(ip in net for net in sender_networks(c.get("SenderIPAddresses") or ()))


def _cert_in(cert: str | None, c: Fields) -> bool:
    name = c.get("TlsSenderCertificateName")
    return bool(cert and name and _name_covers(str(name), cert))


def _parse_ip(ip: str | None) -> ipaddress.IPv4Address | None:
    if not ip:
        return None
    try:
        return ipaddress.IPv4Address(ip.strip())
    except ValueError:
        raise ValueError(f"{ip} is not an IPv4 address (Exchange Online connectors match IPv4 only)") from None


def match_inbound(ip: str | None, cert_subject: str | None, sender: str | None, accepted: Sequence[Fields],
                  inbound: Sequence[Fields]) -> InboundDecision:
    """Simulate which inbound connector Exchange Online attributes a connection to (§2.3).

    OnPremises connectors are matched by TLS certificate name first, then by sender IP. Which of the two wins
    when they point at different connectors is not documented; the certificate is the stronger identity, so it
    goes first [I]. Without an OnPremises match, Partner connectors are matched by certificate, IP or the
    MAIL FROM domain, and their RestrictDomainsTo* settings may refuse the message.
    """
    addr = _parse_ip(ip)
    cert = cert_subject.strip().lower() if cert_subject else None
    acc = _records(accepted)
    conns = _records(inbound)
    sender_domain = domain_of(sender) if sender else None
    notes: list[ConnectorNote] = []
    enabled = []
    for c in conns:
        if not c.get("Enabled", True):
            notes.append(ConnectorNote(str(c.get("Name")), "skipped", "disabled"))
        else:
            enabled.append(c)
    on_prem = [c for c in enabled if c.get("ConnectorType") == "OnPremises"]
    partner = [c for c in enabled if c.get("ConnectorType") != "OnPremises"]
    base: dict[str, Any] = dict(ip=ip, cert_subject=cert_subject, sender=sender)

    tests: tuple[tuple[str, Callable[[Fields], bool]], ...] = (
        ("certificate", lambda c: _cert_in(cert, c)), ("ip", lambda c: _ip_in(addr, c)))
    for how, test in tests:
        hits = sorted((c for c in on_prem if test(c)), key=lambda c: str(c.get("Name")).casefold())
        if hits:
            chosen = hits[0]
            notes += _inbound_notes(on_prem + partner, chosen, cert, addr)
            if how == "certificate":
                what = f"TLS certificate {cert_subject} (tlsSenderCertificateName {chosen.get('TlsSenderCertificateName')})"
            else:
                what = f"sender IP {ip} (senderIpAddresses)"
            reason = f"The connection is attributed to OnPremises inbound connector {chosen.get('Name')} by its {what}."
            if len(hits) > 1:
                reason += (" Other OnPremises connectors match too (" + ", ".join(str(h.get("Name")) for h in hits[1:])
                           + "): remove the overlap so attribution does not depend on an undocumented order.")
            allowed, why = _relay(how, cert, sender_domain, acc)
            return InboundDecision(**base, reason=reason, relay_allowed=allowed, relay_reason=why,
                                   connector=str(chosen.get("Name")), connector_type="OnPremises", matched_by=how,
                                   notes=tuple(notes))
    return _partner_match(base, partner, on_prem, cert, addr, sender_domain, notes)


def _relay(how: str, cert: str | None, sender_domain: str | None,
           accepted: Sequence[Fields]) -> tuple[bool | None, str]:
    """The 2023 relay rules (§2.3, S11): an OnPremises connector matched, and the certificate domain or the
    MAIL FROM domain is an accepted domain. Otherwise 550 5.7.64 (TenantAttribution family)."""
    if not accepted:
        return None, ("No accepted domains are known (declare them in the stack, or use --live), so whether "
                      "relaying is allowed cannot be decided.")
    if how == "certificate" and cert and _belongs_to_accepted(cert, _names(accepted)):
        return True, (f"Relaying to the internet is allowed: the certificate domain {cert} belongs to an accepted "
                      "domain.")
    if sender_domain and _accepted_entry(sender_domain, accepted) is not None:
        return True, (f"Relaying to the internet is allowed: the MAIL FROM domain {sender_domain} is an accepted "
                      "domain.")
    cert_part = (f"the certificate domain {cert} is not an accepted domain" if how == "certificate"
                 else "the connection was matched by IP, not by a certificate")
    if sender_domain is None:
        return None, (f"Relaying depends on the MAIL FROM address ({cert_part}): give --sender to check; it is "
                      "allowed only if the sender's domain is an accepted domain.")
    return False, (f"Relaying to the internet would be refused (550 5.7.64, TenantAttribution): {cert_part}, and the "
                   f"MAIL FROM domain {sender_domain} is not an accepted domain. Send from an accepted domain, or "
                   "use a certificate whose domain is an accepted domain on a certificate-based OnPremises connector.")


def _inbound_notes(conns: Sequence[Fields], chosen: Fields | None, cert: str | None,
                   addr: ipaddress.IPv4Address | None) -> list[ConnectorNote]:
    out = []
    for c in conns:
        name = str(c.get("Name"))
        hit = [w for w, ok in (("certificate", _cert_in(cert, c)), ("ip", _ip_in(addr, c))) if ok]
        if c is chosen:
            out.append(ConnectorNote(name, "chosen", "matches by " + " and ".join(hit)))
        elif hit:
            out.append(ConnectorNote(name, "candidate", f"{c.get('ConnectorType')} connector matching by "
                                     + " and ".join(hit)))
        else:
            out.append(ConnectorNote(name, "no-match", "neither the certificate nor the IP matches"))
    return out


def _partner_match(base: dict[str, Any], partner: Sequence[Fields], on_prem: Sequence[Fields], cert: str | None,
                   addr: ipaddress.IPv4Address | None, sender_domain: str | None,
                   notes: list[ConnectorNote]) -> InboundDecision:
    no_relay = ("Relaying to the internet would be refused (550 5.7.64, TenantAttribution): no OnPremises inbound "
                "connector matches the connection's IP or certificate.")

    def by_domain(c: Fields) -> bool:
        return bool(sender_domain) and any(
            _domain_pattern_covers(d, str(sender_domain)) for d in c.get("SenderDomains") or ())

    for how, test in (("certificate", lambda c: _cert_in(cert, c)), ("ip", lambda c: _ip_in(addr, c)),
                      ("sender-domain", by_domain)):
        hits = sorted((c for c in partner if test(c)), key=lambda c: str(c.get("Name")).casefold())
        if not hits:
            continue
        chosen = hits[0]
        notes += _inbound_notes(list(on_prem) + list(partner), chosen, cert, addr)
        reason = f"No OnPremises connector matches; Partner inbound connector {chosen.get('Name')} applies by {how}."
        rejected = False
        if chosen.get("RestrictDomainsToIPAddresses") and not _ip_in(addr, chosen):
            rejected = True
            reason += " It has restrictDomainsToIpAddresses: true and the IP is not in its senderIpAddresses, so " \
                      "the message is rejected."
        if chosen.get("RestrictDomainsToCertificate") and not _cert_in(cert, chosen):
            rejected = True
            reason += " It has restrictDomainsToCertificate: true and the certificate does not match " \
                      "tlsSenderCertificateName, so the message is rejected."
        return InboundDecision(**base, reason=reason, relay_allowed=False, relay_reason=no_relay,
                               connector=str(chosen.get("Name")), connector_type=str(chosen.get("ConnectorType")),
                               matched_by=how, rejected=rejected, notes=tuple(notes))
    notes += _inbound_notes(list(on_prem) + list(partner), None, cert, addr)
    return InboundDecision(**base, notes=tuple(notes), relay_allowed=False, relay_reason=no_relay,
                           reason="No enabled inbound connector matches this connection: Exchange Online treats it as "
                                  "anonymous internet mail (accepted only for its own recipients).")



# ---------------------------------------------------------------------------------------------------------------------
# What the service answers to RCPT TO
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: basic code, enhanced status code (RFC 3463) and text, with where we found it.

    ``confidence`` follows the reference's tags: ``D`` the text is in Microsoft's documentation, ``C`` seen in
    real transcripts or community write-ups, ``I`` our inference of which reply the service sends in this case.
    """

    code: int
    status: str
    text: str
    source: str
    confidence: str

    def line(self, **values: str) -> str:
        return f"{self.code} {self.status} {self.text.format(**values)}"

    @property
    def permanent(self) -> bool:
        return self.code >= 500


ACCEPTED_REPLY = Reply(250, "2.1.5", "Recipient OK", "RFC 3463 (2.1.5 destination address valid)", "I")

# Each refusal the front door sends, keyed by our own diagnostic code. Texts are the service's where one was
# found; where a text carries per-message data (an IP), it is a ``str.format`` field.
REPLIES: dict[str, Reply] = {
    # Learn "Fix NDR error 550 5.7.64 in Exchange Online" and KB 4051495: the inbound connector's IP or
    # certificate no longer matches the server relaying mail out through Microsoft 365.
    "relay.not-attributed": Reply(
        550, "5.7.64", "TenantAttribution; Relay Access Denied",
        "learn.microsoft.com exchange/troubleshoot/email-delivery/ndr/fix-error-code-5-7-64-in-exchange-online; "
        "KB 4051495", "D"),
    # KB 4019940 "550 5.7.64 Relay Access Denied ATTR36": an OnPremises connector matches, but neither the
    # certificate's domain nor the sender's domain is an accepted domain (the 2023 relay rules, S11). That the
    # IP-matched case answers the same ATTR36 text is [I].
    "relay.not-accepted-domain": Reply(
        550, "5.7.64", "Relay Access Denied ATTR36. For more details please refer to: "
        "https://support.microsoft.com/kb/3169958",
        "OfficeDocs-Support hybrid-configuration-wizard-errors/relay-access-denied-attr36-ndr.md (KB 4019940)", "D"),
    # NDR table "5.7.1 Unable to relay": an anonymous or non-relaying sender to a domain the tenant does not
    # accept. Used when a Partner connector (which never grants relay) or no connector matches and nothing
    # attributes the message to the tenant [I: which of 5.7.1 / 5.7.64 the service picks here].
    "relay.denied": Reply(
        550, "5.7.1", "Unable to relay",
        "learn.microsoft.com exchange/troubleshoot/email-delivery/ndr/non-delivery-reports-in-exchange-online", "D"),
    # RestrictDomainsToIPAddresses / RestrictDomainsToCertificate on a Partner connector: "reject mail from the
    # source domains that doesn't come from" those IPs / that certificate [D New-InboundConnector]. The reply
    # text is from transcripts and vendor write-ups [C].
    "partner.restricted": Reply(
        550, "5.7.51", "TenantInboundAttribution; Rejecting",
        "New-InboundConnector RestrictDomainsTo* [D]; reply text from published transcripts [C]", "C"),
    # RequireTls on a Partner connector: "Reject messages if they aren't sent over TLS" [D]. The text is the one
    # Exchange transport answers when TLS is required (transcripts) [C].
    "tls.required": Reply(
        451, "5.7.3", "STARTTLS is required to send mail",
        "New-InboundConnector RequireTls [D]; reply text from Exchange transcripts [C]", "C"),
    # Directory-Based Edge Blocking on an Authoritative domain: NDR table "5.4.1 Recipient address rejected:
    # Access denied" [D]; live replies add "AS(201806281)" [C].
    "recipient.unknown": Reply(
        550, "5.4.1", "Recipient address rejected: Access denied. AS(201806281)",
        "learn.microsoft.com .../non-delivery-reports-in-exchange-online (5.4.1); AS code from transcripts", "D"),
    # SendingToDomainDisabled: the service does not deliver to the domain; the reply is [I].
    "recipient.domain-disabled": Reply(
        550, "5.7.1", "Delivery not authorized",
        "NDR table 5.7.1 'Delivery not authorized' [D]; its use for SendingToDomainDisabled is [I]", "I"),
    # Learn "ATTR35 response code when sending mail to EOP/EXO": the MX or smart host used does not host the
    # tenant (here: the connection named a tenant this emulator does not hold).
    "tenant.wrong-region": Reply(
        451, "4.4.62", "Mail sent to the wrong Office 365 region. ATTR35.",
        "learn.microsoft.com exchange/troubleshoot/email-delivery/wrong-office-365-region-exo", "D"),
    # NDR table "5.7.606-649 Access denied, banned sending IP [IP1.IP2.IP3.IP4]" [D]; the delist sentence is
    # from live bounces [C]. Emitted only for IPs the emulator was told to ban.
    "ip.banned": Reply(
        550, "5.7.606", "Access denied, banned sending IP [{ip}]. To request removal from this list please visit "
        "https://sender.office.com/ and follow the directions.",
        "learn.microsoft.com .../non-delivery-reports-in-exchange-online (5.7.606-649)", "D"),
}


@dataclass(frozen=True)
class Verdict:
    """What happens to one recipient of one SMTP transaction.

    ``outcome``: ``mailbox`` (delivered to an Exchange Online mailbox), ``connector`` (relayed to the smart hosts
    of outbound connector ``connector``), ``internet`` (delivered by MX on the internet), ``undeliverable``
    (accepted, then bounced: nowhere to send it) or ``refused`` (the RCPT TO is answered with ``reply``).
    ``code`` is our diagnostic code (a key of :data:`REPLIES` for refusals, ``accepted.*`` otherwise).
    """

    recipient: str
    outcome: str
    code: str
    reply: Reply
    reason: str
    fix: str | None
    inbound: InboundDecision
    route: RouteDecision | None = None
    connector: str | None = None
    smart_hosts: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.outcome != "refused"

    def reply_line(self) -> str:
        return self.reply.line(ip=self.inbound.ip or "")

    def to_dict(self) -> dict[str, object]:
        return {
            "recipient": self.recipient,
            "outcome": self.outcome,
            "code": self.code,
            "reply": self.reply_line(),
            "replyCode": self.reply.code,
            "enhancedStatus": self.reply.status,
            "replySource": self.reply.source,
            "replyConfidence": self.reply.confidence,
            "reason": self.reason,
            "fix": self.fix,
            "connector": self.connector,
            "smartHosts": list(self.smart_hosts),
            "inbound": self.inbound.to_dict(),
            "route": self.route.to_dict() if self.route else None,
        }


def decide_recipient(recipient: str, *, ip: str | None, cert_subject: str | None, tls: bool, sender: str | None,
                     accepted: Sequence[Fields], inbound: Sequence[Fields], outbound: Sequence[Fields],
                     mailboxes: Collection[str] | None = None) -> Verdict:
    """What Exchange Online answers to ``RCPT TO:<recipient>`` on a connection from ``ip`` (with TLS, and the
    client certificate ``cert_subject`` if one was presented) after ``MAIL FROM:<sender>``.

    Order: the inbound connector (:func:`match_inbound`) and its restrictions, then the recipient: a recipient in
    an accepted domain is the tenant's own mail (mailbox, InternalRelay to on-premises, or Directory-Based Edge
    Blocking); any other recipient needs relay rights. ``mailboxes`` are the tenant's mailbox addresses; None
    means unknown (the client side cannot list them), and a recipient is then assumed to have a mailbox.
    """
    decision = match_inbound(ip, cert_subject, sender, accepted, inbound)
    route = route_outbound(recipient, accepted, outbound)
    connector = next((c for c in inbound if str(c.get("Name")) == decision.connector), None)
    refusal = _connection_refusal(decision, connector, tls, ip)
    if refusal is not None:
        code, reason, fix = refusal
        return Verdict(recipient, "refused", code, REPLIES[code], reason, fix, decision, route)
    if route.accepted_domain is not None:
        return _own_recipient(recipient, decision, route, mailboxes)
    return _relay_recipient(recipient, decision, route, accepted, inbound)


def _connection_refusal(decision: InboundDecision, connector: Fields | None, tls: bool,
                        ip: str | None) -> tuple[str, str, str] | None:
    name = decision.connector
    if decision.rejected:
        return ("partner.restricted", decision.reason,
                f"Send from an IP in senderIpAddresses (or with the certificate in tlsSenderCertificateName) of "
                f"Partner connector {name}, or add {ip or 'the IP'} there.")
    # RequireTls "applies only to Partner connectors" (New-InboundConnector [D]).
    if connector is not None and decision.connector_type == "Partner" and connector.get("RequireTls") and not tls:
        return ("tls.required",
                f"Partner inbound connector {name} has requireTls: true and the message was sent without TLS.",
                f"Send with STARTTLS, or set requireTls: false on {name}.")
    return None


def _own_recipient(recipient: str, decision: InboundDecision, route: RouteDecision,
                   mailboxes: Collection[str] | None) -> Verdict:
    """A recipient in an accepted domain: the tenant's own mail, whatever connector the sender matched."""
    address = recipient.strip().strip("<>").lower()
    has_mailbox = mailboxes is None or address in {m.lower() for m in mailboxes}
    base: dict[str, Any] = dict(recipient=recipient, inbound=decision, route=route)
    if route.path == "blocked":
        return Verdict(**base, outcome="refused", code="recipient.domain-disabled",
                       reply=REPLIES["recipient.domain-disabled"], reason=route.reason,
                       fix=f"Set sendingToDomainDisabled: false on {route.accepted_domain}.")
    if has_mailbox:
        why = (f"{address} has a mailbox in Exchange Online." if mailboxes is not None else
               f"{route.domain} is an accepted domain: a recipient with an Exchange Online mailbox gets the mail "
               "there (which addresses have mailboxes is not known here).")
        return Verdict(**base, outcome="mailbox", code="accepted.mailbox", reply=ACCEPTED_REPLY, reason=why,
                       fix=None)
    if route.path == "internal-relay":
        return Verdict(**base, outcome="connector", code="accepted.internal-relay", reply=ACCEPTED_REPLY,
                       reason=f"{address} has no Exchange Online mailbox. {route.reason}", fix=None,
                       connector=route.connector, smart_hosts=route.smart_hosts)
    if route.path == "undeliverable":
        # InternalRelay domains skip Directory-Based Edge Blocking, so the RCPT is accepted and the message
        # bounces later [I].
        return Verdict(**base, outcome="undeliverable", code="accepted.undeliverable", reply=ACCEPTED_REPLY,
                       reason=f"{address} has no Exchange Online mailbox. {route.reason}",
                       fix=f"Add {route.domain} to recipientDomains of an OnPremises outbound connector.")
    return Verdict(**base, outcome="refused", code="recipient.unknown", reply=REPLIES["recipient.unknown"],
                   reason=(f"{address} has no Exchange Online mailbox and {route.accepted_domain} is an Authoritative "
                           "accepted domain: Directory-Based Edge Blocking rejects unknown recipients."),
                   fix=(f"Check the address, create the mailbox, or, if {address} lives on-premises, make "
                        f"{route.accepted_domain} InternalRelay with an OnPremises outbound connector covering it."))


def _relay_recipient(recipient: str, decision: InboundDecision, route: RouteDecision, accepted: Sequence[Fields],
                     inbound: Sequence[Fields]) -> Verdict:
    """A recipient outside the tenant: only a connection attributed to an OnPremises connector may relay."""
    base: dict[str, Any] = dict(recipient=recipient, inbound=decision, route=route)
    if decision.connector_type == "OnPremises" and decision.relay_allowed:
        outcome = "connector" if route.path == "connector" else "internet"
        return Verdict(**base, outcome=outcome, code=f"accepted.relay-{outcome}", reply=ACCEPTED_REPLY,
                       reason=f"{decision.reason} {decision.relay_reason} {route.reason}", fix=None,
                       connector=route.connector, smart_hosts=route.smart_hosts)
    names = ", ".join(_names(accepted)) or "your accepted domains"
    if decision.connector_type == "OnPremises":
        return Verdict(**base, outcome="refused", code="relay.not-accepted-domain",
                       reply=REPLIES["relay.not-accepted-domain"],
                       reason=f"{decision.reason} {decision.relay_reason}",
                       fix=(f"Send from an address in an accepted domain ({names}), or relay with a certificate "
                            f"whose domain is an accepted domain and put it in tlsSenderCertificateName of "
                            f"{decision.connector}."))
    # The connector to suggest: one that already recognises servers the way this one connects (by IP, else by
    # certificate), then by name, so that the advice does not depend on the order the service lists them in.
    by_ip = bool(decision.ip)
    candidates = sorted((c for c in inbound if c.get("ConnectorType") == "OnPremises" and c.get("Enabled", True)),
                        key=lambda c: (not (c.get("SenderIPAddresses") if by_ip else c.get("TlsSenderCertificateName")),
                                       str(c.get("Name")).lower()))
    on_prem = [str(c.get("Name")) for c in candidates]
    fix = _attribution_fix(decision, on_prem)
    sender_domain = domain_of(decision.sender) if decision.sender else None
    ours = bool(sender_domain) and _accepted_entry(str(sender_domain), accepted) is not None
    if decision.connector_type is None and ours:
        return Verdict(**base, outcome="refused", code="relay.not-attributed", reply=REPLIES["relay.not-attributed"],
                       reason=(f"{decision.reason} The sender's domain {sender_domain} is an accepted domain, but "
                               f"relaying to {route.domain} needs an OnPremises inbound connector that matches "
                               "the connection's IP or certificate."), fix=fix)
    return Verdict(**base, outcome="refused", code="relay.denied", reply=REPLIES["relay.denied"],
                   reason=f"{decision.reason} {decision.relay_reason}", fix=fix)


def _attribution_fix(decision: InboundDecision, on_prem: Sequence[str]) -> str:
    target = f"OnPremises inbound connector {on_prem[0]}" if on_prem else "a new OnPremises inbound connector"
    parts = []
    if decision.ip:
        parts.append(f"add {decision.ip} to senderIpAddresses of {target}")
    if decision.cert_subject:
        parts.append(f"set tlsSenderCertificateName of {target} to {decision.cert_subject}")
    if not parts:
        parts.append(f"make {target} match the sending server's IP or TLS certificate")
    text = " or ".join(parts)
    return text[0].upper() + text[1:] + "."
