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

The routing rules themselves (which connector, which relay verdict, which SMTP reply) live in
:mod:`o365_mailflow.routing_rules`, shared with the emulator's SMTP front door; the functions here rename a
stack's objects to the service's property names (from the specs table) and call them, so ``mailflow route``
and the front door run one implementation.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

from . import routing_rules as rules
from .errors import Diagnostic, Severity
from .routing_rules import (  # noqa: F401 - helpers the checks below share with the rules; re-exported types
    OUTBOUND_PRECEDENCE,
    ConnectorNote,
    InboundDecision,
    Reply,
    RouteDecision,
    Verdict,
    _domain_pattern_covers,
    _net_str,
    _wildcard_depth,
    domain_of,
    sender_networks,
)
from .shapes import FieldMap, GuidanceJson, Value, texts
from .specs import ACCEPTED_DOMAIN, INBOUND, OUTBOUND, ResourceSpec, effective

if TYPE_CHECKING:  # pragma: no cover - typing only; stack imports nothing from here
    from .stack import DesiredObject, Stack

__all__ = [
    "OUTBOUND_PRECEDENCE",
    "ConnectorNote",
    "RouteDecision",
    "InboundDecision",
    "Reply",
    "Verdict",
    "route_outbound",
    "match_inbound",
    "decide_recipient",
    "service_records",
    "check_objects",
    "check_stack",
    "guidance",
    "mx_endpoint",
    "spf_record",
    "spf_strings",
    "spf_txt",
    "spf_problem",
    "collapse_v4",
    "review",
    "review_effective",
    "Guidance",
    "domain_of",
    "covering_patterns",
]

# A normalised object under check (stack camelCase names), read only.
Fields = FieldMap

# Where each Microsoft 365 cloud receives mail and what SPF include covers its outbound servers. Commercial is
# documented; the sovereign clouds' names are the published ones but were not checked against a tenant [I].
_MAIL_HOSTS: dict[str, tuple[str, str]] = {
    "commercial": ("mail.protection.outlook.com", "spf.protection.outlook.com"),
    "gcchigh": ("mail.protection.office365.us", "spf.protection.office365.us"),
    "dod": ("mail.protection.office365.us", "spf.protection.office365.us"),
    "china": ("mail.protection.partner.outlook.cn", "spf.protection.partner.outlook.cn"),
}


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


def _eff(spec: ResourceSpec, objs: Sequence[Fields]) -> list[dict[str, Value]]:
    return [effective(spec, o) for o in objs]


# ---------------------------------------------------------------------------------------------------------------------
# Routing decisions: the shared rules, fed with the stack's objects under the service's property names
# ---------------------------------------------------------------------------------------------------------------------


def service_records(spec: ResourceSpec, objs: Sequence[Fields]) -> list[dict[str, Value]]:
    """Normalised objects (declared values over the service defaults) renamed to the Get-* property names the
    rules read, through the specs table (``senderIpAddresses`` -> ``SenderIPAddresses``)."""
    return [{spec.field(name).param: value for name, value in values.items()} for values in _eff(spec, objs)]


def route_outbound(recipient: str, accepted: Sequence[Fields], outbound: Sequence[Fields]) -> RouteDecision:
    """Simulate Exchange Online's outbound routing for one recipient address (or bare domain)."""
    return rules.route_outbound(recipient, service_records(ACCEPTED_DOMAIN, accepted),
                                service_records(OUTBOUND, outbound))


def match_inbound(ip: str | None, cert_subject: str | None, sender: str | None, accepted: Sequence[Fields],
                  inbound: Sequence[Fields]) -> InboundDecision:
    """Simulate which inbound connector Exchange Online attributes a connection to, and the relay verdict."""
    return rules.match_inbound(ip, cert_subject, sender, service_records(ACCEPTED_DOMAIN, accepted),
                               service_records(INBOUND, inbound))


def decide_recipient(recipient: str, *, ip: str | None, cert_subject: str | None, tls: bool, sender: str | None,
                     accepted: Sequence[Fields], inbound: Sequence[Fields], outbound: Sequence[Fields],
                     has_mailbox: bool | None = None) -> Verdict:
    """What the service answers to ``RCPT TO:<recipient>`` on such a connection (the SMTP front door's rule).
    Stacks do not declare mailboxes: ``has_mailbox`` says whether the recipient has one (None: assume it does)."""
    mailboxes = None if has_mailbox is None else ([recipient.strip().strip("<>")] if has_mailbox else [])
    return rules.decide_recipient(recipient, ip=ip, cert_subject=cert_subject, tls=tls, sender=sender,
                                  accepted=service_records(ACCEPTED_DOMAIN, accepted),
                                  inbound=service_records(INBOUND, inbound),
                                  outbound=service_records(OUTBOUND, outbound), mailboxes=mailboxes)


# ---------------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One object under check: its effective values, where it is, and (for stacks) the desired object."""

    spec: ResourceSpec
    index: int
    values: Fields
    source: DesiredObject | None = None  # when checking a Stack

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
    """One routing problem found on one declared object, before it becomes a diagnostic."""

    item: _Item
    field: str
    code: str
    summary: str
    detail: str
    # No index inside list fields: values are normalised (sorted), so an index would not match the file.


def _items(spec: ResourceSpec, objs: Sequence[Fields], sources: Sequence[DesiredObject] | None = None) -> list[_Item]:
    return [_Item(spec, i, effective(spec, o), sources[i] if sources else None) for i, o in enumerate(objs)]


def _effective_items(spec: ResourceSpec, objs: Sequence[Fields]) -> list[_Item]:
    """:func:`_items` of objects already over the service defaults."""
    return [_Item(spec, i, o) for i, o in enumerate(objs)]


def _usable_outbound(c: Fields) -> bool:
    return bool(c.get("enabled", True)) and not c.get("isTransportRuleScoped")


def _covers_domain_outbound(c: Fields, domain: str) -> bool:
    """§4.2 rule 6: AllAcceptedDomains, or a RecipientDomains entry equal to or wildcard-matching the domain."""
    if c.get("allAcceptedDomains"):
        return True
    return any(_domain_pattern_covers(p, domain) for p in texts(c, "recipientDomains"))


def _suffixes(domain: str) -> Iterator[str]:
    """``a.b.c`` -> ``a.b.c``, ``b.c``, ``c``: the names a ``*.suffix`` pattern covering ``domain`` can have."""
    while domain:
        yield domain
        domain = domain.partition(".")[2]


class _OutboundIndex:
    """Which connectors cover a domain (:func:`_covers_domain_outbound`), looked up by name instead of by testing
    every connector against every accepted domain (quadratic for thousands of each)."""

    def __init__(self, connectors: list[_Item]) -> None:
        self.connectors = connectors
        self.every: list[int] = []  # allAcceptedDomains or a bare "*"
        self.by_name: dict[str, list[int]] = {}  # exact entries, and *.suffix entries under their suffix
        for i, c in enumerate(connectors):
            if c.values.get("allAcceptedDomains"):
                self.every.append(i)
                continue
            for pattern in texts(c.values, "recipientDomains"):
                text = str(pattern).lower()
                if text == "*":
                    self.every.append(i)
                else:
                    self.by_name.setdefault(text.removeprefix("*."), []).append(i)

    def covering(self, domain: str) -> list[_Item]:
        hits = set(self.every).union(*(self.by_name.get(s, ()) for s in _suffixes(domain)))
        return [c for i in sorted(hits) if _covers_domain_outbound((c := self.connectors[i]).values, domain)]


def _check_internal_relay(acc: list[_Item], out: list[_Item]) -> list[_Finding]:
    found = []
    on_prem = [o for o in out if (o.values.get("connectorType") == "OnPremises" or o.unknown("connectorType"))
               and _usable_outbound(o.values)]
    index = _OutboundIndex(on_prem)
    for a in acc:
        if a.values.get("domainType") != "InternalRelay":
            continue
        domain = str(a.values.get("domainName")).lower()
        covering = index.covering(domain)
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
                       for o in covering for p in texts(o.values, "recipientDomains")):
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
    # _belongs_to_accepted by name: the certificate's name or one of its parents is an accepted domain.
    names = {str(a.get("domainName") or "").lower().removeprefix("*.") for a in known} - {""}
    for c in inb:
        name = c.values.get("tlsSenderCertificateName")
        if c.values.get("connectorType") != "OnPremises" or not name:
            continue
        if not any(s in names for s in _suffixes(str(name).lower().removeprefix("*."))):
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
    nets = {j: sender_networks(texts(c.values, "senderIpAddresses")) for j, c in enumerate(enabled)}
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
        for pattern in texts(c.values, "recipientDomains"):
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


def _check_spf(acc: list[_Item], inb: list[_Item], record: str | None) -> list[_Finding]:
    """A relay (enabled OnPremises inbound connector) sends internet mail from Microsoft's servers: receivers
    check SPF, so the record must include Exchange Online. The stack cannot declare DNS, so this is a hint with
    the exact record to publish, once per stack, on the first relay connector; and a warning with the fix when
    that record is too long or needs too many lookups for receivers."""
    relays = _relay_connectors(inb)
    if not relays or record is None:
        return []
    # *.onmicrosoft.com domains get their SPF record from Microsoft; the admin cannot publish one there.
    domains = [str(a.values.get("domainName")) for a in acc
               if a.values.get("domainName") and not str(a.values.get("domainName")).startswith("*")
               and not str(a.values.get("domainName")).endswith(".onmicrosoft.com")]
    where = ", ".join(domains) if domains else "each domain your devices send from"
    found = [_Finding(
        relays[0], "connectorType", "routing.relay-spf-hint",
        f"Mail relayed through {relays[0].name} reaches the internet from Exchange Online, so receivers check "
        "SPF against Microsoft's servers.",
        f"Publish the TXT record {spf_txt(record)} for {where} (merge it with any existing SPF record; one per "
        "domain; a DNS server takes it as these quoted strings of at most 255 bytes).")]
    problem = spf_problem(record)
    if problem is not None:
        with_ips = next((c for c in relays if c.values.get("senderIpAddresses")), relays[0])
        found.append(_Finding(with_ips, "senderIpAddresses", "routing.spf-too-large", *problem))
    return found


def _spf_for(inb: list[_Item], cloud: str) -> str | None:
    """The SPF record, computed once per check (it is the costliest step for thousands of sender networks)."""
    # The items are already over the service defaults: spf_record would compute that a second time.
    return _spf_record_of(_collapsed_networks(c.values for c in inb), cloud) if _relay_connectors(inb) else None


def _findings(acc: list[_Item], inb: list[_Item], out: list[_Item], cloud: str,
              record: str | None = None) -> list[_Finding]:
    if record is None:
        record = _spf_for(inb, cloud)
    return [
        *_check_internal_relay(acc, out),
        *_check_certificates(acc, inb),
        *_check_ip_overlap(inb),
        *_check_restrict_on_prem(inb),
        *_check_duplicate_domains(out),
        *_check_spf(acc, inb, record),
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


@dataclass(frozen=True)
class Guidance:
    """Advice derived from the stack: what devices use as smart host, and the SPF record to publish."""

    mx_endpoints: dict[str, str] = field(default_factory=dict)  # accepted domain -> <domain>.mail.protection.outlook.com
    spf_record: str | None = None
    spf_strings: tuple[str, ...] = ()  # the record cut into the <=255-byte strings of a TXT record

    def to_dict(self) -> GuidanceJson:
        return {"mxEndpoints": dict(self.mx_endpoints), "spfRecord": self.spf_record,
                "spfTxtStrings": list(self.spf_strings)}


def mx_endpoint(domain: str, *, cloud: str = "commercial") -> str:
    """``contoso.com`` -> ``contoso-com.mail.protection.outlook.com``: the MX target and the smart host devices use.

    Dots become hyphens and existing hyphens stay. Domains added since 2024 may be given a
    ``<domain>.<random>.mx.microsoft`` endpoint instead; the admin center shows the exact value [I].
    """
    host = _MAIL_HOSTS.get(cloud, _MAIL_HOSTS["commercial"])[0]
    return f"{domain.lower().replace('.', '-')}.{host}"


# DNS and SPF limits the suggested record must respect. A TXT record is made of character-strings of at most 255
# bytes each (RFC 1035 §3.3, RFC 7208 §3.3: receivers join them with nothing in between); the whole record should
# fit a 512-byte UDP answer, which RFC 7208 §3.4 puts at about 450 bytes for the record itself; receivers stop
# after 10 mechanisms that need a DNS lookup (include, a, mx, ptr, exists, redirect: RFC 7208 §4.6.4).
SPF_STRING_MAX = 255
SPF_RECORD_MAX = 450
SPF_LOOKUP_LIMIT = 10


def _spf_networks(inbound: Sequence[Fields]) -> list[ipaddress.IPv4Network]:
    """The enabled OnPremises connectors' sender networks, merged to the fewest CIDR blocks.

    collapse_addresses sorts once and merges duplicates, nested blocks and neighbours (203.0.113.10 and
    203.0.113.11 become 203.0.113.10/31): linear after the sort, and the record is as short as it can be.
    """
    return _collapsed_networks(_eff(INBOUND, inbound))


def _collapsed_networks(inbound: Iterable[Fields]) -> list[ipaddress.IPv4Network]:
    """:func:`_spf_networks` of objects already over the service defaults (a check's items)."""
    nets: list[ipaddress.IPv4Network] = []
    for c in inbound:
        if c.get("connectorType") == "OnPremises" and c.get("enabled", True):
            nets.extend(sender_networks(texts(c, "senderIpAddresses")))
    return collapse_v4(nets)


def collapse_v4(nets: Iterable[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
    """``list(ipaddress.collapse_addresses(nets))`` on plain ints: merge sorted spans, then cut each span into
    the fewest aligned CIDR blocks (collapse_addresses' object arithmetic took most of the SPF check at 10k)."""
    spans: list[list[int]] = []
    # The end from the prefix length: broadcast_address builds an address object per network.
    bounds = ((int(n.network_address), n.prefixlen) for n in nets)
    for start, end in sorted((start, start + (1 << (32 - prefix)) - 1) for start, prefix in bounds):
        if spans and start <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    out: list[ipaddress.IPv4Network] = []
    for start, end in spans:
        while start <= end:
            size = start & -start or 1 << 32  # the largest block aligned at start ...
            while size > end - start + 1:  # ... that ends within the span
                size >>= 1
            out.append(ipaddress.IPv4Network((start, 33 - size.bit_length())))
            start += size
    return out


def _spf_text(nets: Sequence[ipaddress.IPv4Network], tail: Sequence[str]) -> str:
    return " ".join(["v=spf1", *(f"ip4:{_net_str(n)}" for n in nets), *tail])


def spf_record(inbound: Sequence[Fields], *, cloud: str = "commercial") -> str:
    """``v=spf1 ip4:<sender IPs> include:spf.protection.outlook.com ~all`` from the enabled OnPremises inbound
    connectors' senderIpAddresses (the on-premises servers may also send directly), merged to the fewest CIDRs.

    This is the record's value; :func:`spf_strings` splits it into the strings a DNS server accepts."""
    return _spf_record_of(_spf_networks(inbound), cloud)


def _spf_record_of(nets: Sequence[ipaddress.IPv4Network], cloud: str) -> str:
    include = _MAIL_HOSTS.get(cloud, _MAIL_HOSTS["commercial"])[1]
    return _spf_text(nets, (f"include:{include}", "~all"))


def spf_strings(record: str) -> tuple[str, ...]:
    """``record`` cut into character-strings of at most 255 bytes, between terms, for a TXT record.

    Receivers concatenate the strings with nothing in between, so each cut keeps its space at the end of the
    string before it. (An SPF term is far shorter than 255 bytes, so a term is never cut.)
    """
    strings: list[str] = []
    current = ""
    for term in record.split(" "):
        piece = term if not current else " " + term
        if current and len((current + piece).encode()) > SPF_STRING_MAX:
            strings.append(current + " ")
            current = term
        else:
            current += piece
    strings.append(current)
    return tuple(strings)


def spf_txt(record: str) -> str:
    """The TXT record as most DNS servers and zone files take it: the quoted strings, space separated."""
    return " ".join(f'"{s}"' for s in spf_strings(record))


def _spf_lookups(record: str) -> int:
    terms = (t.lstrip("+-~?").split(":")[0].split("/")[0].lower() for t in record.split(" "))
    return sum(1 for t in terms if t in ("include", "a", "mx", "ptr", "exists")) + record.count("redirect=")


def _spf_split_plan(terms: Sequence[str]) -> int:
    """How many extra records (each ``v=spf1 ip4:... -all`` under its own name) hold these ip4: terms."""
    records, size = 0, SPF_RECORD_MAX + 1
    for term in terms:
        if size + 1 + len(term) > SPF_RECORD_MAX:
            records, size = records + 1, len("v=spf1 -all")
        size += 1 + len(term)
    return records


def spf_problem(record: str) -> tuple[str, str] | None:
    """(summary, fix) when the suggested record breaks the size or 10-lookup limit, else None."""
    size = len(record.encode())
    lookups = _spf_lookups(record)
    if size <= SPF_RECORD_MAX and lookups <= SPF_LOOKUP_LIMIT:
        return None
    terms = [t for t in record.split(" ") if t.startswith("ip4:")]
    extra = _spf_split_plan(terms)
    summary = (f"The SPF record to publish is {size} bytes with {len(terms)} ip4: networks (after merging) and "
               f"{lookups} DNS lookup(s); receivers allow {SPF_LOOKUP_LIMIT} lookups, and a record over "
               f"{SPF_RECORD_MAX} bytes may not fit a DNS answer.")
    if lookups + extra <= SPF_LOOKUP_LIMIT:
        fix = (f"Move the ip4: terms into {extra} record(s) of at most {SPF_RECORD_MAX} bytes, each "
               '"v=spf1 ip4:... -all" under its own name (for example _spf1.<your domain>), and replace them in '
               f"the main record by include:_spf1.<your domain> ... include:_spf{extra}.<your domain>; each include "
               f"is one of the {SPF_LOOKUP_LIMIT} lookups.")
    else:
        fix = (f"Even split into included records it would need {lookups + extra} lookups: declare fewer, wider "
               "senderIpAddresses networks (a NAT range instead of single hosts), or send from fewer networks.")
    return summary, fix


def guidance(accepted: Sequence[Fields], inbound: Sequence[Fields], *, cloud: str = "commercial",
             spf: str | None = None) -> Guidance:
    """The MX endpoint per accepted domain and the SPF record to publish (plan output, Pulumi stack outputs).

    Wildcard and ``*.onmicrosoft.com`` domains get no MX endpoint (Microsoft manages those); outbound connectors
    change no guidance. ``spf``: the record when the caller already computed it (see :func:`review`).
    """
    return _guidance(_items(ACCEPTED_DOMAIN, accepted), _items(INBOUND, inbound), cloud, spf)


def _guidance(acc: list[_Item], inb: list[_Item], cloud: str, spf: str | None) -> Guidance:
    """:func:`guidance` of a check's items (already over the service defaults)."""
    mx: dict[str, str] = {}
    for a in acc:
        name = str(a.values.get("domainName") or "").lower()
        if not name or name.startswith("*") or name.endswith(".onmicrosoft.com"):
            continue
        mx[name] = mx_endpoint(name, cloud=cloud)
    wanted = bool(mx) or bool(_relay_connectors(inb))
    spf = (spf or _spf_record_of(_collapsed_networks(c.values for c in inb), cloud)) if wanted else None
    return Guidance(mx_endpoints=dict(sorted(mx.items())), spf_record=spf,
                    spf_strings=spf_strings(spf) if spf else ())


def review(accepted: Sequence[Fields], inbound: Sequence[Fields], outbound: Sequence[Fields], *,
           cloud: str = "commercial") -> tuple[list[Diagnostic], Guidance]:
    """:func:`check_objects` and :func:`guidance` together, sharing one pass over the objects and one SPF record
    (what a plan needs; computing them apart doubles the cost for thousands of connectors)."""
    return review_effective(_eff(ACCEPTED_DOMAIN, accepted), _eff(INBOUND, inbound), _eff(OUTBOUND, outbound),
                            cloud=cloud)


def review_effective(accepted: Sequence[Fields], inbound: Sequence[Fields], outbound: Sequence[Fields], *,
                     cloud: str = "commercial") -> tuple[list[Diagnostic], Guidance]:
    """:func:`review` of objects already over the service defaults (:func:`~o365_mailflow.specs.effective`), as
    a plan's desired state holds them: the step that would work the defaults out again for every object is
    skipped."""
    acc = _effective_items(ACCEPTED_DOMAIN, accepted)
    inb, out = _effective_items(INBOUND, inbound), _effective_items(OUTBOUND, outbound)
    record = _spf_for(inb, cloud)
    if record is None and acc:  # MX guidance alone still suggests the include
        record = _spf_record_of(_collapsed_networks(c.values for c in inb), cloud)
    diags = [_diagnostic(f) for f in _findings(acc, inb, out, cloud, record)]
    return diags, _guidance(acc, inb, cloud, record)
