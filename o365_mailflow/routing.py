"""Where Exchange Online sends a message, and hybrid mail-flow mistakes that no single field shows.

Why this module exists: a connector set can pass every per-field and per-object rule and still route mail
wrongly (an InternalRelay domain that no connector covers, two connectors claiming one domain, a certificate
name that makes relaying fail since the 2023 relay rules). Admins want to know that before they merge. This
module answers three questions from normalised objects (a stack's declared fields over the service defaults,
or a live snapshot), with no I/O:

* :func:`route_outbound`: which outbound connector Exchange Online would use for a recipient, or MX delivery,
  or the InternalRelay path for unknown recipients, and why (``exo-cmdlets.md`` §10, §6.4);
* :func:`match_inbound`: which inbound connector accepts a connection by sender IP or TLS certificate name,
  and whether relaying to the internet would be allowed (§2.3, the 2023 relay rules);
* :func:`check_objects` / :func:`check_stack`: warnings, each saying what to change; :func:`guidance`: the MX
  endpoint and SPF record to publish.

Every function takes lists of normalised field dicts with the camelCase names of :mod:`o365_mailflow.specs`;
missing fields take the service default through :func:`o365_mailflow.specs.effective`, so no default is
re-listed here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .errors import Diagnostic, Severity
from .plan import Guidance
from .specs import ACCEPTED_DOMAIN, INBOUND, OUTBOUND, ResourceSpec, effective

if TYPE_CHECKING:  # pragma: no cover - typing only; stack imports nothing from here
    from .stack import DesiredObject, Stack

__all__ = [
    "OUTBOUND_PRECEDENCE",
    "ConnectorNote",
    "RouteDecision",
    "InboundDecision",
    "route_outbound",
    "match_inbound",
    "check_objects",
    "check_stack",
    "guidance",
    "mx_endpoint",
    "spf_record",
    "domain_of",
    "covering_patterns",
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

# Where each Microsoft 365 cloud receives mail and what SPF include covers its outbound servers. Commercial is
# documented; the sovereign clouds' names are the published ones but were not checked against a tenant [I].
_MAIL_HOSTS: dict[str, tuple[str, str]] = {
    "commercial": ("mail.protection.outlook.com", "spf.protection.outlook.com"),
    "gcchigh": ("mail.protection.office365.us", "spf.protection.office365.us"),
    "dod": ("mail.protection.office365.us", "spf.protection.office365.us"),
    "china": ("mail.protection.partner.outlook.cn", "spf.protection.partner.outlook.cn"),
}


# ---------------------------------------------------------------------------------------------------------------------
# Domain helpers
# ---------------------------------------------------------------------------------------------------------------------


def domain_of(address: str) -> str:
    """The domain of ``user@domain`` (or the text itself when it has no ``@``), lower-cased."""
    text = address.strip().strip("<>").strip()
    return text.rsplit("@", 1)[-1].strip().rstrip(".").lower()


def covering_patterns(domain: str) -> tuple[str, ...]:
    """Every entry that can cover ``domain`` in any rule of this module, lower-cased: the domain, each parent
    domain (an accepted domain with matchSubDomains, a certificate's accepted domain), ``*.`` + the domain or a
    parent (wildcards), and ``*``.

    Why: a tenant with thousands of connectors is asked about thousands of domains (the plan's mail-flow
    impact); looking up only the objects that list one of these entries, then running the same decision
    functions on them, keeps each question independent of the number of connectors without a second copy of
    the matching rules. Objects outside this set cannot match ``domain``, so they cannot change a decision.
    """
    labels = domain.lower().removeprefix("*.").split(".")
    parents = [".".join(labels[i:]) for i in range(len(labels))]
    return (*parents, *(f"*.{p}" for p in parents), "*")


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


def _domain_pattern_covers(pattern: Any, domain: str) -> bool:
    """A recipientDomains/senderDomains entry covers ``domain``: ``*``, the domain itself, or a ``*.`` wildcard."""
    text = str(pattern).lower()
    return text == "*" or text == domain or _wildcard_depth(text, domain) is not None


def _accepted_entry(domain: str, accepted: Sequence[Fields]) -> Fields | None:
    """The accepted domain that receives mail for ``domain``: its exact entry, else a wildcard entry, else the
    closest parent with ``matchSubDomains`` (§6.2: subdomains are accepted only with MatchSubDomains)."""
    best: tuple[int, Fields] | None = None
    for entry in accepted:
        name = str(entry.get("domainName") or "").lower()
        if name == domain:
            return entry
        depth = _wildcard_depth(name, domain)
        if depth is None and entry.get("matchSubDomains") and domain.endswith("." + name):
            depth = name.count(".") + 1
        if depth is not None and (best is None or depth > best[0]):
            best = (depth, entry)
    return best[1] if best else None


def _is_accepted_name(domain: str, accepted: Sequence[Fields]) -> bool:
    """``domain`` is itself an accepted domain (what AllAcceptedDomains covers: §10.7 and S3 say subdomains
    under MatchSubDomains need ``*.domain`` on the connector, so they do not count here)."""
    return any(str(a.get("domainName") or "").lower() == domain for a in accepted)


def _belongs_to_accepted(name: str, accepted: Sequence[Fields]) -> bool:
    """A certificate domain "belongs to" an accepted domain: equal to it or a host under it (``mail.contoso.com``
    under ``contoso.com``). S11 does not say whether MatchSubDomains matters here; we assume it does not [I]."""
    name = name.lower().removeprefix("*.")
    for a in accepted:
        accepted_name = str(a.get("domainName") or "").lower().removeprefix("*.")
        if accepted_name and _is_within(name, accepted_name):
            return True
    return False


def _networks(values: Iterable[Any]) -> list[ipaddress.IPv4Network]:
    out = []
    for value in values or ():
        try:
            out.append(ipaddress.IPv4Network(str(value), strict=False))
        except ValueError:
            continue  # a live value we cannot parse is not ours to route on
    return out


def _net_str(net: ipaddress.IPv4Network) -> str:
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _eff(spec: ResourceSpec, objs: Sequence[Fields]) -> list[dict[str, Any]]:
    return [effective(spec, o) for o in objs]


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

    def to_dict(self) -> dict[str, Any]:
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
    rank: int  # index in OUTBOUND_PRECEDENCE
    depth: int  # wildcard specificity (labels); 0 otherwise
    kind: str
    pattern: str | None
    connector: Mapping[str, Any]

    @property
    def key(self) -> tuple[int, int]:
        return (self.rank, -self.depth)


def _skip_reason(c: Fields) -> str | None:
    if not c.get("enabled", True):
        return "disabled"
    if c.get("isTransportRuleScoped"):
        return "rule-scoped: used only when a mail flow rule redirects to it"
    # Test-mode connectors: their routing behaviour is undocumented (§10 item 4 [I]); we route through them.
    return None


def _connector_match(c: Fields, domain: str, accepted: Sequence[Fields]) -> _Match | None:
    """The best way one connector matches ``domain`` under :data:`OUTBOUND_PRECEDENCE`, or None."""
    found: list[_Match] = []
    rank = OUTBOUND_PRECEDENCE.index
    for pattern in c.get("recipientDomains") or ():
        pattern = str(pattern).lower()
        if pattern == domain:
            found.append(_Match(rank("exact"), 0, "exact", pattern, c))
        elif pattern == "*":
            found.append(_Match(rank("star"), 0, "star", pattern, c))
        else:
            depth = _wildcard_depth(pattern, domain)
            if depth is not None:
                found.append(_Match(rank("wildcard"), depth, "wildcard", pattern, c))
    if c.get("allAcceptedDomains") and _is_accepted_name(domain, accepted):
        found.append(_Match(rank("all-accepted-domains"), 0, "all-accepted-domains", None, c))
    return min(found, key=lambda m: m.key) if found else None


def _choose(domain: str, connectors: Sequence[Fields], accepted: Sequence[Fields],
            allow: Callable[[Fields], str | None] = lambda c: None) -> tuple[list[_Match], list[ConnectorNote]]:
    """The best matches (several only on a tie) and a note per connector. ``allow`` may exclude more."""
    matches: list[_Match] = []
    notes: dict[str, ConnectorNote] = {}
    for c in connectors:
        name = str(c.get("name") or "?")
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
    best = sorted((m for m in matches if m.key == best_key), key=lambda m: str(m.connector.get("name")).casefold())
    for m in best:
        name = str(m.connector.get("name") or "?")
        notes[name] = ConnectorNote(name, "chosen" if m is best[0] else "candidate", _describe(m))
    for m in matches:
        if all(m is not b for b in best):
            name = str(m.connector.get("name") or "?")
            notes[name] = ConnectorNote(name, "candidate",
                                        f"{_describe(m)}; loses to {best[0].connector.get('name')} ({best[0].kind})")
    return best, list(notes.values())


def _describe(m: _Match) -> str:
    words = _MATCH_WORDS[m.kind]
    return f"{words} {m.pattern}" if m.kind in ("exact", "wildcard") else words


def route_outbound(recipient: str, accepted: Sequence[Fields], outbound: Sequence[Fields]) -> RouteDecision:
    """Simulate Exchange Online's outbound routing for one recipient address (or bare domain)."""
    domain = domain_of(recipient)
    acc = _eff(ACCEPTED_DOMAIN, accepted)
    conns = _eff(OUTBOUND, outbound)
    entry = _accepted_entry(domain, acc)
    domain_type = str(entry.get("domainType")) if entry else None
    accepted_name = str(entry.get("domainName")) if entry else None
    base: dict[str, Any] = dict(recipient=recipient, domain=domain, accepted_domain=accepted_name,
                                domain_type=domain_type)

    if entry and entry.get("sendingToDomainDisabled"):
        return RouteDecision(**base, path="blocked",
                             reason=f"{accepted_name} has sendingToDomainDisabled: true, so Exchange Online does "
                                    "not deliver mail to it. Set it to false to allow delivery.")

    if domain_type == "InternalRelay":
        return _internal_relay(domain, acc, conns, base)

    best, notes = _choose(domain, conns, acc)
    if best:
        chosen = best[0]
        reason = f"Exchange Online routes mail for {domain} through outbound connector " \
                 f"{chosen.connector.get('name')!s} ({_describe(chosen)})."
        reason += _tie_text(best) + _precedence_text(notes)
        if domain_type == "Authoritative":
            reason += (f" {accepted_name} is an Authoritative accepted domain: a recipient with an Exchange Online "
                       "mailbox gets the mail there and an unknown recipient is rejected; the connector carries "
                       "mail for recipients hosted elsewhere (hybrid mail users, contacts).")
        return RouteDecision(**base, path="connector", connector=str(chosen.connector.get("name")),
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
    best, notes = _choose(domain, conns, acc, allow=lambda c: None if c.get("connectorType") == "OnPremises"
                          else "not OnPremises: the InternalRelay path uses OnPremises connectors only")
    accepted_name = base["accepted_domain"]
    head = (f"{domain} is covered by the InternalRelay accepted domain {accepted_name}: a recipient with an Exchange "
            "Online mailbox gets the mail there; an unknown recipient is relayed on-premises")
    if best:
        chosen = best[0]
        reason = (f"{head} through outbound connector {chosen.connector.get('name')} ({_describe(chosen)})."
                  + _tie_text(best) + _precedence_text(notes))
        return RouteDecision(**base, path="internal-relay", connector=str(chosen.connector.get("name")),
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
    return tuple(str(h) for h in c.get("smartHosts") or ()) if c.get("useMxRecord") is False else ()


def _tie_text(best: Sequence[_Match]) -> str:
    if len(best) < 2:
        return ""
    names = ", ".join(str(m.connector.get("name")) for m in best)
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

    def to_dict(self) -> dict[str, Any]:
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
    return ip is not None and any(ip in net for net in _networks(c.get("senderIpAddresses") or ()))


def _cert_in(cert: str | None, c: Fields) -> bool:
    name = c.get("tlsSenderCertificateName")
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
    acc = _eff(ACCEPTED_DOMAIN, accepted)
    conns = _eff(INBOUND, inbound)
    sender_domain = domain_of(sender) if sender else None
    notes: list[ConnectorNote] = []
    enabled = []
    for c in conns:
        if not c.get("enabled", True):
            notes.append(ConnectorNote(str(c.get("name")), "skipped", "disabled"))
        else:
            enabled.append(c)
    on_prem = [c for c in enabled if c.get("connectorType") == "OnPremises"]
    partner = [c for c in enabled if c.get("connectorType") != "OnPremises"]
    base: dict[str, Any] = dict(ip=ip, cert_subject=cert_subject, sender=sender)

    for how, test in (("certificate", lambda c: _cert_in(cert, c)), ("ip", lambda c: _ip_in(addr, c))):
        hits = sorted((c for c in on_prem if test(c)), key=lambda c: str(c.get("name")).casefold())
        if hits:
            chosen = hits[0]
            notes += _inbound_notes(on_prem + partner, chosen, cert, addr)
            if how == "certificate":
                what = f"TLS certificate {cert_subject} (tlsSenderCertificateName {chosen.get('tlsSenderCertificateName')})"
            else:
                what = f"sender IP {ip} (senderIpAddresses)"
            reason = f"The connection is attributed to OnPremises inbound connector {chosen.get('name')} by its {what}."
            if len(hits) > 1:
                reason += (" Other OnPremises connectors match too (" + ", ".join(str(h.get("name")) for h in hits[1:])
                           + "): remove the overlap so attribution does not depend on an undocumented order.")
            allowed, why = _relay(how, chosen, cert, sender_domain, acc)
            return InboundDecision(**base, reason=reason, relay_allowed=allowed, relay_reason=why,
                                   connector=str(chosen.get("name")), connector_type="OnPremises", matched_by=how,
                                   notes=tuple(notes))
    return _partner_match(base, partner, on_prem, cert, addr, sender_domain, notes)


def _relay(how: str, c: Fields, cert: str | None, sender_domain: str | None,
           accepted: Sequence[Fields]) -> tuple[bool | None, str]:
    """The 2023 relay rules (§2.3, S11): an OnPremises connector matched, and the certificate domain or the
    MAIL FROM domain is an accepted domain. Otherwise 550 5.7.64 (TenantAttribution family)."""
    if not accepted:
        return None, ("No accepted domains are known (declare them in the stack, or use --live), so whether "
                      "relaying is allowed cannot be decided.")
    if how == "certificate" and cert and _belongs_to_accepted(cert, accepted):
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
        name = str(c.get("name"))
        hit = [w for w, ok in (("certificate", _cert_in(cert, c)), ("ip", _ip_in(addr, c))) if ok]
        if c is chosen:
            out.append(ConnectorNote(name, "chosen", "matches by " + " and ".join(hit)))
        elif hit:
            out.append(ConnectorNote(name, "candidate", f"{c.get('connectorType')} connector matching by "
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
            _domain_pattern_covers(d, str(sender_domain)) for d in c.get("senderDomains") or ())

    for how, test in (("certificate", lambda c: _cert_in(cert, c)), ("ip", lambda c: _ip_in(addr, c)),
                      ("sender-domain", by_domain)):
        hits = sorted((c for c in partner if test(c)), key=lambda c: str(c.get("name")).casefold())
        if not hits:
            continue
        chosen = hits[0]
        notes += _inbound_notes(list(on_prem) + list(partner), chosen, cert, addr)
        reason = f"No OnPremises connector matches; Partner inbound connector {chosen.get('name')} applies by {how}."
        rejected = False
        if chosen.get("restrictDomainsToIpAddresses") and not _ip_in(addr, chosen):
            rejected = True
            reason += " It has restrictDomainsToIpAddresses: true and the IP is not in its senderIpAddresses, so " \
                      "the message is rejected."
        if chosen.get("restrictDomainsToCertificate") and not _cert_in(cert, chosen):
            rejected = True
            reason += " It has restrictDomainsToCertificate: true and the certificate does not match " \
                      "tlsSenderCertificateName, so the message is rejected."
        return InboundDecision(**base, reason=reason, relay_allowed=False, relay_reason=no_relay,
                               connector=str(chosen.get("name")), connector_type=str(chosen.get("connectorType")),
                               matched_by=how, rejected=rejected, notes=tuple(notes))
    notes += _inbound_notes(list(on_prem) + list(partner), None, cert, addr)
    return InboundDecision(**base, notes=tuple(notes), relay_allowed=False, relay_reason=no_relay,
                           reason="No enabled inbound connector matches this connection: Exchange Online treats it as "
                                  "anonymous internet mail (accepted only for its own recipients).")


# ---------------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One object under check: its effective values, where it is, and (for stacks) the desired object."""

    spec: ResourceSpec
    index: int
    values: Mapping[str, Any]
    source: Any = None  # DesiredObject when checking a Stack

    @property
    def name(self) -> str:
        return str(self.values.get(self.spec.identity_field) or f"{self.spec.stack_key}[{self.index}]")

    def unknown(self, field_name: str) -> bool:
        """An adopted object's undeclared field: the tenant's value is unknown offline (it may not be the
        default), so a check must not conclude from it that something is missing."""
        src = self.source
        return bool(src is not None and getattr(src, "adopt", False) and field_name not in src.fields)


@dataclass(frozen=True)
class _Finding:
    item: _Item
    field: str
    code: str
    summary: str
    detail: str
    # No index inside list fields: values are normalised (sorted), so an index would not match the file.


def _items(spec: ResourceSpec, objs: Sequence[Fields], sources: Sequence[Any] | None = None) -> list[_Item]:
    return [_Item(spec, i, effective(spec, o), sources[i] if sources else None) for i, o in enumerate(objs)]


def _usable_outbound(c: Fields) -> bool:
    return bool(c.get("enabled", True)) and not c.get("isTransportRuleScoped")


def _covers_domain_outbound(c: Fields, domain: str) -> bool:
    """§4.2 rule 6: AllAcceptedDomains, or a RecipientDomains entry equal to or wildcard-matching the domain."""
    if c.get("allAcceptedDomains"):
        return True
    return any(_domain_pattern_covers(p, domain) for p in c.get("recipientDomains") or ())


def _check_internal_relay(acc: list[_Item], out: list[_Item]) -> list[_Finding]:
    found = []
    on_prem = [o for o in out if (o.values.get("connectorType") == "OnPremises" or o.unknown("connectorType"))
               and _usable_outbound(o.values)]
    for a in acc:
        if a.values.get("domainType") != "InternalRelay":
            continue
        domain = str(a.values.get("domainName")).lower()
        covering = [o for o in on_prem if _covers_domain_outbound(o.values, domain)]
        if not covering:
            found.append(_Finding(
                a, "domainType", "routing.internal-relay-uncovered",
                f"InternalRelay domain {domain} is not covered by any enabled OnPremises outbound connector, so "
                "mail to recipients not in Exchange Online cannot be delivered.",
                f"Add {domain} to recipientDomains of an enabled OnPremises outbound connector (or set "
                "allAcceptedDomains: true on one), or set domainType: Authoritative if every recipient is in "
                "Exchange Online."))
            continue
        if a.values.get("matchSubDomains"):
            wildcard = f"*.{domain}"
            if not any(_wildcard_depth(str(p).lower(), "x." + domain) is not None or str(p) == "*"
                       for o in covering for p in o.values.get("recipientDomains") or ()):
                names = ", ".join(o.name for o in covering)
                found.append(_Finding(
                    a, "matchSubDomains", "routing.match-subdomains-without-wildcard",
                    f"{domain} has matchSubDomains: true but its OnPremises outbound connector ({names}) does not "
                    f"list {wildcard}, so mail to unknown recipients in subdomains cannot reach on-premises.",
                    f"Add {wildcard} to recipientDomains of {covering[0].name}."))
    return found


def _check_certificates(acc: list[_Item], inb: list[_Item]) -> list[_Finding]:
    if not acc:
        return []  # the accepted domains are unknown: nothing to compare with
    found = []
    known = [a.values for a in acc]
    for c in inb:
        name = c.values.get("tlsSenderCertificateName")
        if c.values.get("connectorType") != "OnPremises" or not name:
            continue
        if not _belongs_to_accepted(str(name), known):
            found.append(_Finding(
                c, "tlsSenderCertificateName", "routing.certificate-not-accepted-domain",
                f"tlsSenderCertificateName {name} of inbound connector {c.name} matches no accepted domain, so "
                "since the 2023 relay rules "
                "on-premises servers using this certificate can relay to the internet only when the MAIL FROM "
                "domain is an accepted domain.",
                "Use a certificate whose subject is in one of your accepted domains (e.g. mail."
                f"{known[0].get('domainName')}), or declare that domain in acceptedDomains if the tenant has it."))
    return found


def _check_ip_overlap(inb: list[_Item]) -> list[_Finding]:
    """Overlapping senderIpAddresses between enabled connectors of the same type. The service itself only warns
    (SenderIPAddressOverlapsExistingTenantInboundConnectors [X]). A Partner and an OnPremises connector with
    the same IPs are a documented pattern ("lock down to my MX provider", §2.3 [C]), so that pair is not
    reported. One finding per overlapping pair, in the order (later connector, earlier connector)."""
    enabled = [c for c in inb if c.values.get("enabled", True)]
    nets = {j: _networks(c.values.get("senderIpAddresses") or ()) for j, c in enumerate(enabled)}
    found = []
    for j, i in sorted(_overlapping_pairs(enabled, nets)):
        earlier, later = enabled[i], enabled[j]
        for net in nets[j]:  # the same net and hit the pairwise comparison would name: first in file order
            hit = next((a for a in nets[i] if a.overlaps(net)), None)
            if hit is not None:
                found.append(_Finding(
                    later, "senderIpAddresses", "routing.sender-ip-overlap",
                    f"senderIpAddresses {_net_str(net)} of inbound connector {later.name} overlaps "
                    f"{_net_str(hit)} of {earlier.name}; Exchange "
                    "Online attributes a connection to only one of them.",
                    f"Remove the overlap from {later.name} or {earlier.name}, or merge the two connectors."))
                break
    return found


def _overlapping_pairs(enabled: list[_Item], nets: Mapping[int, list[ipaddress.IPv4Network]]) -> set[tuple[int, int]]:
    """(later, earlier) indexes of same-type connectors with overlapping networks, by a sweep over start addresses.

    Comparing every pair of connectors is quadratic (tens of seconds for thousands of connectors, most of which
    have no IPs). CIDR blocks are either disjoint or nested, so after sorting by start (widest first) the blocks
    still open at a start address form a stack, each containing the current block: the work is the sort plus
    the pairs found.
    """
    blocks = sorted(
        (int(net.network_address), -int(net.broadcast_address), j)
        for j, these in nets.items() for net in these
    )
    pairs: set[tuple[int, int]] = set()
    open_blocks: list[tuple[int, int]] = []  # (last address, connector index), each containing the next one
    for start, neg_end, j in blocks:
        while open_blocks and open_blocks[-1][0] < start:
            open_blocks.pop()
        kind = enabled[j].values.get("connectorType")
        for _, i in open_blocks:
            if i != j and enabled[i].values.get("connectorType") == kind:
                pairs.add((max(i, j), min(i, j)))
        open_blocks.append((-neg_end, j))
    return pairs


def _check_restrict_on_prem(inb: list[_Item]) -> list[_Finding]:
    found = []
    for c in inb:
        if c.values.get("connectorType") != "OnPremises":
            continue
        for fld in ("restrictDomainsToIpAddresses", "restrictDomainsToCertificate"):
            if c.values.get(fld):
                found.append(_Finding(
                    c, fld, "routing.restrict-on-onpremises",
                    f"{fld} has no effect on OnPremises inbound connector {c.name}; it applies only to Partner "
                    "connectors.",
                    f"Remove {fld} from {c.name}; to lock sender domains to these IPs or this certificate, add a "
                    "Partner inbound connector for those sender domains with the setting (both can coexist)."))
    return found


def _check_duplicate_domains(out: list[_Item]) -> list[_Finding]:
    found = []
    claimed: dict[str, _Item] = {}
    all_accepted: _Item | None = None
    for c in out:
        if not _usable_outbound(c.values):
            continue
        for pattern in c.values.get("recipientDomains") or ():
            key = str(pattern).lower()
            first = claimed.setdefault(key, c)
            if first is not c:
                found.append(_Finding(
                    c, "recipientDomains", "routing.recipient-domain-claimed-twice",
                    f"recipientDomains {key} of outbound connector {c.name} is also claimed by {first.name}; which one "
                    "Exchange Online uses for it is not documented.",
                    f"Remove {key} from {c.name} or from {first.name}."))
        if c.values.get("allAcceptedDomains"):
            if all_accepted is None:
                all_accepted = c
            else:
                found.append(_Finding(
                    c, "allAcceptedDomains", "routing.recipient-domain-claimed-twice",
                    f"allAcceptedDomains is true on outbound connectors {all_accepted.name} and {c.name}; both "
                    "claim every accepted domain.",
                    f"Set allAcceptedDomains: true on one connector only ({all_accepted.name} or {c.name})."))
    return found


def _relay_connectors(inb: list[_Item]) -> list[_Item]:
    return [c for c in inb if c.values.get("connectorType") == "OnPremises" and c.values.get("enabled", True)
            and (c.values.get("senderIpAddresses") or c.values.get("tlsSenderCertificateName"))]


def _check_spf(acc: list[_Item], inb: list[_Item], cloud: str) -> list[_Finding]:
    """A relay (enabled OnPremises inbound connector) sends internet mail from Microsoft's servers: receivers
    check SPF, so the record must include Exchange Online. The stack cannot declare DNS, so this is a hint with
    the exact record to publish, once per stack, on the first relay connector."""
    relays = _relay_connectors(inb)
    if not relays:
        return []
    record = spf_record([c.values for c in relays], cloud=cloud)
    # *.onmicrosoft.com domains get their SPF record from Microsoft; the admin cannot publish one there.
    domains = [str(a.values.get("domainName")) for a in acc
               if a.values.get("domainName") and not str(a.values.get("domainName")).startswith("*")
               and not str(a.values.get("domainName")).endswith(".onmicrosoft.com")]
    where = ", ".join(domains) if domains else "each domain your devices send from"
    return [_Finding(
        relays[0], "connectorType", "routing.relay-spf-hint",
        f"Mail relayed through {relays[0].name} reaches the internet from Exchange Online, so receivers check "
        "SPF against Microsoft's servers.",
        f'Publish the TXT record "{record}" for {where} (merge it with any existing SPF record; one per domain).')]


def _findings(acc: list[_Item], inb: list[_Item], out: list[_Item], cloud: str) -> list[_Finding]:
    return [
        *_check_internal_relay(acc, out),
        *_check_certificates(acc, inb),
        *_check_ip_overlap(inb),
        *_check_restrict_on_prem(inb),
        *_check_duplicate_domains(out),
        *_check_spf(acc, inb, cloud),
    ]


def _diagnostic(f: _Finding) -> Diagnostic:
    path: tuple[str | int, ...] = (f.item.spec.stack_key, f.item.index, f.field)
    file = line = None
    src = f.item.source
    if src is not None:
        file = src.file
        line = (src.field_lines or {}).get(f.field, src.line)
    return Diagnostic(Severity.WARNING, path, f.summary, detail=f.detail, file=file, line=line, code=f.code)


def check_objects(accepted: Sequence[Fields], inbound: Sequence[Fields], outbound: Sequence[Fields], *,
                  cloud: str = "commercial") -> list[Diagnostic]:
    """Hybrid mail-flow warnings for lists of normalised objects; paths like ``outboundConnectors[0].x``."""
    return [_diagnostic(f) for f in _findings(_items(ACCEPTED_DOMAIN, accepted), _items(INBOUND, inbound),
                                              _items(OUTBOUND, outbound), cloud)]


def check_stack(stack: Stack) -> list[Diagnostic]:
    """The same warnings for a loaded stack, located at the file and line of each object's field."""
    def items(spec: ResourceSpec) -> list[_Item]:
        objs: Sequence[DesiredObject] = stack.of_type(spec.type_name)
        return _items(spec, [o.fields for o in objs], list(objs))

    cloud = getattr(stack.tenant, "cloud", "commercial") or "commercial"
    return [_diagnostic(f) for f in _findings(items(ACCEPTED_DOMAIN), items(INBOUND), items(OUTBOUND), cloud)]


# ---------------------------------------------------------------------------------------------------------------------
# Guidance
# ---------------------------------------------------------------------------------------------------------------------


def mx_endpoint(domain: str, *, cloud: str = "commercial") -> str:
    """``contoso.com`` -> ``contoso-com.mail.protection.outlook.com``: the MX target and the smart host devices use.

    Dots become hyphens and existing hyphens stay. Domains added since 2024 may be given a
    ``<domain>.<random>.mx.microsoft`` endpoint instead; the admin center shows the exact value [I].
    """
    host = _MAIL_HOSTS.get(cloud, _MAIL_HOSTS["commercial"])[0]
    return f"{domain.lower().replace('.', '-')}.{host}"


def spf_record(inbound: Sequence[Fields], *, cloud: str = "commercial") -> str:
    """``v=spf1 ip4:<sender IPs> include:spf.protection.outlook.com ~all`` from the enabled OnPremises inbound
    connectors' senderIpAddresses (the on-premises servers may also send directly)."""
    include = _MAIL_HOSTS.get(cloud, _MAIL_HOSTS["commercial"])[1]
    nets: list[ipaddress.IPv4Network] = []
    for c in _eff(INBOUND, inbound):
        if c.get("connectorType") == "OnPremises" and c.get("enabled", True):
            nets.extend(_networks(c.get("senderIpAddresses") or ()))
    # Drop duplicates and entries inside another listed network, but keep the admin's own entries otherwise
    # (collapse_addresses would merge neighbours into CIDRs nobody typed).
    kept: list[ipaddress.IPv4Network] = []
    for net in sorted(set(nets), key=lambda n: n.prefixlen):
        if not any(net.subnet_of(k) for k in kept):
            kept.append(net)
    kept.sort(key=lambda n: (int(n.network_address), n.prefixlen))
    ips = " ".join(f"ip4:{_net_str(n)}" for n in kept)
    return " ".join(part for part in ("v=spf1", ips, f"include:{include}", "~all") if part)


def guidance(accepted: Sequence[Fields], inbound: Sequence[Fields], outbound: Sequence[Fields], *,
             cloud: str = "commercial") -> Guidance:
    """The MX endpoint per accepted domain and the SPF record to publish (plan output, Pulumi stack outputs).

    Wildcard and ``*.onmicrosoft.com`` domains get no MX endpoint (Microsoft manages those). ``outbound`` is
    accepted for symmetry with the other seams; no guidance depends on it yet.
    """
    del outbound
    mx: dict[str, str] = {}
    for a in _eff(ACCEPTED_DOMAIN, accepted):
        name = str(a.get("domainName") or "").lower()
        if not name or name.startswith("*") or name.endswith(".onmicrosoft.com"):
            continue
        mx[name] = mx_endpoint(name, cloud=cloud)
    has_relay = bool(_relay_connectors(_items(INBOUND, inbound)))
    spf = spf_record(inbound, cloud=cloud) if (mx or has_relay) else None
    return Guidance(mx_endpoints=dict(sorted(mx.items())), spf_record=spf)
