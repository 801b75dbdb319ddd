"""What a plan does to mail flow: the route of each domain, sender IP and certificate before and after it.

Why this module exists: a reviewer of a connector change sees field tables (``SmartHosts: a -> b``), but what they
must judge is where mail goes afterwards. This module asks the routing simulator (:mod:`o365_mailflow.routing`,
the same decision functions as ``mailflow route``; no rule is repeated here) the same questions about the tenant
as it is and the tenant as the plan would leave it, and keeps the answers that differ, each as one sentence:
"unknown recipients at contoso.com were rejected and will now be relayed to mail.contoso.com via 'To
on-premises Exchange'".

The questions (probes) come from both states: every accepted domain, every domain or wildcard an outbound
connector names, a representative subdomain of each wildcard and of each matchSubDomains domain, a domain
outside the tenant, every sender IP or network and every certificate name of an inbound connector.

Cost: "after" is derived from the live snapshot and the plan's field changes (no API call). Each probe looks
only at the objects that could match it (indexes keyed by :func:`routing.covering_patterns` and by network),
so the whole computation is linear in the number of connectors, not quadratic (``benchmarks/impact_scale.py``).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .plan import Action, Plan
from .routing import InboundDecision, RouteDecision, covering_patterns, match_inbound, route_outbound
from .routing_rules import sender_networks
from .shapes import FieldMap, ImpactJson, ImpactRowJson, Json, texts
from .snapshot import Snapshot
from .specs import ACCEPTED_DOMAIN, INBOUND, OUTBOUND, ResourceSpec, effective

__all__ = [
    "OUTSIDE_DOMAIN",
    "SUBDOMAIN_LABEL",
    "MailObject",
    "TenantState",
    "Probe",
    "ImpactRow",
    "Impact",
    "compute_impact",
    "compare_states",
]

# A domain under the reserved .example TLD (RFC 2606) can never be an accepted domain: it stands for "the
# internet" in the questions asked.
OUTSIDE_DOMAIN = "outside.example"
# The label put in front of a wildcard's or matchSubDomains domain's suffix to ask about "any other subdomain".
SUBDOMAIN_LABEL = "subdomain"
_REFUSED = "550 5.7.64"


# ---------------------------------------------------------------------------------------------------------------------
# The tenant, before and after
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailObject:
    """One object as routing sees it: effective field values (declared or live over the service defaults) and a
    stable identity (a connector's Guid, a domain's name, or ``new:<name>`` for one the plan creates), so that a
    rename is not mistaken for a different connector."""

    identity: str
    fields: FieldMap

    @property
    def name(self) -> str:
        return str(self.fields.get("name") or self.fields.get("domainName") or self.identity)


@dataclass(frozen=True)
class TenantState:
    """The three object lists the simulator reads, in the service's listing order (creates last)."""

    accepted: tuple[MailObject, ...] = ()
    inbound: tuple[MailObject, ...] = ()
    outbound: tuple[MailObject, ...] = ()

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> TenantState:
        """The tenant as it is (a :class:`~o365_mailflow.snapshot.Snapshot`)."""
        return cls(*(_live(snapshot, spec) for spec in (ACCEPTED_DOMAIN, INBOUND, OUTBOUND)))

    @classmethod
    def after_plan(cls, snapshot: Snapshot, plan: Plan, before: TenantState | None = None) -> TenantState:
        """The tenant as ``plan`` leaves it: its field changes applied to the live objects, its deletes removed,
        its creates added. Objects the plan does not mention (unmanaged, no-op) stay as they are: given
        ``before`` (``from_snapshot`` of the same snapshot), they are the very same objects, which lets
        :func:`compare_states` see at once that a question about them alone cannot have a new answer."""
        before = before if before is not None else cls.from_snapshot(snapshot)
        return cls(*(_after(snapshot, plan, spec, kept)
                     for spec, kept in zip((ACCEPTED_DOMAIN, INBOUND, OUTBOUND),
                                           (before.accepted, before.inbound, before.outbound))))

    @classmethod
    def from_fields(cls, accepted: Iterable[FieldMap], inbound: Iterable[FieldMap],
                    outbound: Iterable[FieldMap]) -> TenantState:
        """A state from plain field dicts (a stack's declared objects): identities are the names."""
        def objs(spec: ResourceSpec, items: Iterable[FieldMap]) -> tuple[MailObject, ...]:
            return tuple(MailObject(str(f.get(spec.identity_field)), effective(spec, f)) for f in items)
        return cls(objs(ACCEPTED_DOMAIN, accepted), objs(INBOUND, inbound), objs(OUTBOUND, outbound))

    def fields(self) -> tuple[list[FieldMap], list[FieldMap], list[FieldMap]]:
        return ([o.fields for o in self.accepted], [o.fields for o in self.inbound], [o.fields for o in self.outbound])


def _live(snapshot: Snapshot, spec: ResourceSpec) -> tuple[MailObject, ...]:
    return tuple(MailObject(o.identity, o.effective) for o in snapshot.of_type(spec.type_name))


def _after(snapshot: Snapshot, plan: Plan, spec: ResourceSpec, before: tuple[MailObject, ...]) -> tuple[MailObject, ...]:
    mine = [c for c in plan.changes if c.type_name == spec.type_name]
    by_identity = {c.identity.casefold(): c for c in mine if c.identity and c.action is not Action.CREATE}
    # When no change deletes an object or changes a field (a plan of no-ops), every object is kept as it is.
    touching = any(c.changes or c.action is Action.DELETE for c in by_identity.values())
    out: list[MailObject] = []
    for live, kept in zip(snapshot.of_type(spec.type_name), before):
        if not touching:
            out.append(kept)
            continue
        change = by_identity.get(live.identity.casefold())
        if change is not None and change.action is Action.DELETE:
            continue
        if change is None or not change.changes:
            out.append(kept)  # what _live made of this very object: no field of it changes
            continue
        fields = dict(live.fields)
        fields.update({fc.field: fc.after for fc in change.changes})
        out.append(MailObject(live.identity, effective(spec, fields)))
    for change in mine:
        if change.action is Action.CREATE:
            fields = {fc.field: fc.after for fc in change.changes}
            fields.setdefault(spec.identity_field, change.name)
            out.append(MailObject(f"new:{change.name}", effective(spec, fields)))
    return tuple(out)


class _Index:
    """One state, indexed so that each probe hands the simulator only the objects that could match it."""

    def __init__(self, state: TenantState, shared: dict[str, tuple[str, ...]] | None = None) -> None:
        self.state = state
        # covering_patterns by domain, shared by the two states' indexes of one comparison: each probe's domains
        # are asked of both, and working the patterns out is most of a lookup's cost.
        self.patterns = shared if shared is not None else {}
        self.accepted_by_name: dict[str, list[int]] = defaultdict(list)
        for i, a in enumerate(state.accepted):
            self.accepted_by_name[str(a.fields.get("domainName") or "").lower()].append(i)
        self.outbound_by_pattern: dict[str, list[int]] = defaultdict(list)
        self.all_accepted: list[int] = []
        for i, c in enumerate(state.outbound):
            for p in texts(c.fields, "recipientDomains"):
                self.outbound_by_pattern[str(p).lower()].append(i)
            if c.fields.get("allAcceptedDomains"):
                self.all_accepted.append(i)
        self.inbound_by_name: dict[str, list[int]] = defaultdict(list)
        self.inbound_by_net: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, c in enumerate(state.inbound):
            cert = c.fields.get("tlsSenderCertificateName")
            if cert:
                self.inbound_by_name[str(cert).lower()].append(i)
            # MAIL FROM domains identify Partner connectors only (OnPremises ones match by certificate or IP), and
            # OnPremises connectors usually list "*": indexing theirs would hand every probe every connector.
            if c.fields.get("connectorType") != "OnPremises":
                for d in texts(c.fields, "senderDomains"):
                    self.inbound_by_name["sender:" + str(d).lower()].append(i)
            for net in sender_networks(texts(c.fields, "senderIpAddresses")):
                self.inbound_by_net[(net.prefixlen, int(net.network_address))].append(i)
        # The prefix lengths some connector lists: an address is looked up under these only (a tenant uses a few).
        self.prefixes = sorted({prefix for prefix, _ in self.inbound_by_net})
        self.names = {
            "outbound": {c.name.casefold(): c.identity for c in state.outbound},
            "inbound": {c.name.casefold(): c.identity for c in state.inbound},
        }

    def _accepted_hits(self, *domains: str | None) -> set[int]:
        return {i for d in domains if d for key in self._covering(d) for i in self.accepted_by_name.get(key, ())}

    def _accepted_for(self, *domains: str | None) -> list[MailObject]:
        # The first accepted domain always goes along: the relay rules treat "no accepted domain known" apart,
        # and an extra entry that does not cover the probe changes no decision.
        hits = self._accepted_hits(*domains)
        if self.state.accepted:
            hits.add(0)
        return [self.state.accepted[i] for i in sorted(hits)]

    def _route_hits(self, domain: str) -> set[int]:
        hits = {i for key in self._covering(domain) for i in self.outbound_by_pattern.get(key, ())}
        hits.update(self.all_accepted)
        return hits

    def route_inputs(self, domain: str) -> tuple[list[MailObject], list[MailObject]]:
        """The accepted domains and outbound connectors that could decide the route of ``domain``, in order."""
        return self._accepted_for(domain), [self.state.outbound[i] for i in sorted(self._route_hits(domain))]

    def route(self, domain: str, inputs: tuple[list[MailObject], list[MailObject]] | None = None) -> RouteDecision:
        accepted, outbound = inputs or self.route_inputs(domain)
        return route_outbound(domain, [a.fields for a in accepted], [c.fields for c in outbound])

    def inbound(self, ip: str | None, cert: str | None, sender: str | None,
                inputs: tuple[list[MailObject], list[MailObject]] | None = None) -> InboundDecision:
        accepted, inbound = inputs or self.inbound_inputs(ip, cert, sender)
        return match_inbound(ip, cert, sender, [a.fields for a in accepted], [c.fields for c in inbound])

    def inbound_inputs(self, ip: str | None, cert: str | None,
                       sender: str | None) -> tuple[list[MailObject], list[MailObject]]:
        """The accepted domains and inbound connectors that could decide who accepts such a connection."""
        hits = self._inbound_hits(ip, cert, sender)
        return self._accepted_for(cert, _domain_part(sender)), [self.state.inbound[i] for i in sorted(hits)]

    def _inbound_hits(self, ip: str | None, cert: str | None, sender: str | None) -> set[int]:
        hits: set[int] = set()
        if cert:
            hits.update(i for key in self._covering(cert) for i in self.inbound_by_name.get(key, ()))
        sender_domain = _domain_part(sender)
        if sender_domain:
            hits.update(i for key in self._covering(sender_domain)
                        for i in self.inbound_by_name.get("sender:" + key, ()))
        if ip and self.prefixes:  # no network indexed (a small plan's changes): no address to parse
            addr = int(ipaddress.IPv4Address(ip))
            for prefix in self.prefixes:
                mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
                hits.update(self.inbound_by_net.get((prefix, addr & mask), ()))
        return hits

    def touched_by(self, p: Probe, sender: str | None) -> bool:
        """Some object of this index could be among the simulator's inputs for ``p`` (the first accepted domain,
        which every question takes along, aside)."""
        if p.kind in ("ip", "certificate"):
            ip, cert, mail_from = _inbound_question(p, sender)
            return bool(self._inbound_hits(ip, cert, mail_from) or self._accepted_hits(cert, _domain_part(mail_from)))
        return bool(self._route_hits(p.address) or self._accepted_hits(p.address))

    def _covering(self, domain: str) -> tuple[str, ...]:
        found = self.patterns.get(domain)
        if found is None:
            found = self.patterns[domain] = covering_patterns(domain)
        return found

    def identity(self, kind: str, name: str | None) -> str | None:
        return self.names[kind].get(name.casefold(), name) if name else None


def _domain_part(sender: str | None) -> str | None:
    return sender.rsplit("@", 1)[-1].lower() if sender else None


# ---------------------------------------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------------------------------------

_KIND_ORDER = ("domain", "subdomains", "outside", "ip", "certificate")


@dataclass(frozen=True, order=True)
class Probe:
    """One question: ``kind`` is ``domain``, ``subdomains`` (``key`` is the parent domain), ``outside``, ``ip``
    (``label`` is the declared address or network, ``key`` an address in it) or ``certificate``."""

    order: int
    key: str
    kind: str = field(compare=False)
    label: str = field(compare=False)

    @property
    def subject(self) -> str:
        return {
            "domain": self.key,
            "subdomains": f"subdomains of {self.key}",
            "outside": f"internet domains ({self.key})",
            "ip": self.label,
            "certificate": f"servers with certificate {self.label}",
        }[self.kind]

    @property
    def address(self) -> str:
        """The domain or address the simulator is asked about."""
        return f"{SUBDOMAIN_LABEL}.{self.key}" if self.kind == "subdomains" else self.key


def _probe(kind: str, key: str, label: str | None = None) -> Probe:
    return Probe(_KIND_ORDER.index(kind), key, kind, label or key)


def _domain_probes(state: TenantState) -> Iterable[Probe]:
    for a in state.accepted:
        name = str(a.fields.get("domainName") or "").lower()
        if name.startswith("*."):
            yield _probe("subdomains", name[2:])
        elif name:
            yield _probe("domain", name)
            if a.fields.get("matchSubDomains"):
                yield _probe("subdomains", name)
    for c in state.outbound:
        for pattern in texts(c.fields, "recipientDomains"):
            text = str(pattern).lower()
            if text.startswith("*."):
                yield _probe("domain", text[2:])
                yield _probe("subdomains", text[2:])
            elif text != "*":  # "*" is what the outside domain asks about
                yield _probe("domain", text)


def _sender_probes(state: TenantState) -> Iterable[Probe]:
    for c in state.inbound:
        for value in texts(c.fields, "senderIpAddresses"):
            nets = sender_networks([value])
            if nets:
                net = nets[0]
                # An address inside the network: its first host (the network address itself is not a host).
                host = net.network_address + (1 if net.prefixlen < 31 else 0)
                yield _probe("ip", str(host), str(value))
        cert = c.fields.get("tlsSenderCertificateName")
        if cert:
            text = str(cert).lower()
            key = f"{SUBDOMAIN_LABEL}.{text[2:]}" if text.startswith("*.") else text
            yield _probe("certificate", key, text)


def _probes(*states: TenantState) -> list[Probe]:
    found: dict[tuple[str, str], Probe] = {}
    asked: set[int] = set()  # ids of the objects already asked about
    for state in states:
        # An object a previous state holds too (after_plan keeps the objects a plan leaves alone) gives the very
        # same probes, which are already found: skip it rather than make them again.
        fresh = TenantState(*(tuple(o for o in objs if id(o) not in asked)
                              for objs in (state.accepted, state.inbound, state.outbound)))
        asked.update(id(o) for objs in (state.accepted, state.inbound, state.outbound) for o in objs)
        for p in (*_domain_probes(fresh), *_sender_probes(fresh)):
            found.setdefault((p.kind, p.key), p)
    found[("outside", OUTSIDE_DOMAIN)] = _probe("outside", OUTSIDE_DOMAIN)
    return sorted(found.values())


def _relay_sender(state: TenantState) -> str | None:
    """The MAIL FROM used to ask whether a sender IP may relay: a device sending as one of the tenant's own
    domains (what relaying needs since 2023), so the answer turns on whether an OnPremises connector matches."""
    names = [str(a.fields.get("domainName") or "").lower() for a in state.accepted]
    plain = [n for n in names if n and not n.startswith("*.")]
    own = [n for n in plain if not n.endswith(".onmicrosoft.com")] or plain
    return f"relay@{own[0]}" if own else None


# ---------------------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImpactRow:
    """One probe whose route changes: the sentence for reviewers and both decisions for machines."""

    direction: str  # "outbound" | "inbound"
    probe: Probe
    sentence: str
    before: Mapping[str, Json]
    after: Mapping[str, Json]

    def to_dict(self) -> ImpactRowJson:
        return {
            "direction": self.direction,
            "kind": self.probe.kind,
            "subject": self.probe.label if self.probe.kind in ("ip", "certificate") else self.probe.key,
            "probe": self.probe.address,
            "sentence": self.sentence,
            "before": dict(self.before),
            "after": dict(self.after),
        }


@dataclass(frozen=True)
class Impact:
    """The rows that change, in probe order, and how many questions were asked of each state."""

    rows: tuple[ImpactRow, ...] = ()
    probes: int = 0

    def to_dict(self) -> ImpactJson:
        return {"probes": self.probes, "rows": [r.to_dict() for r in self.rows]}

    @property
    def sentences(self) -> list[str]:
        return [r.sentence for r in self.rows]


def compute_impact(snapshot: Snapshot, plan: Plan) -> Impact:
    """The mail-flow impact of ``plan`` on the tenant in ``snapshot`` (the snapshot the plan was computed from).

    The public seam for every preview (CLI text, markdown, JSON, the Pulumi pipeline's comment): no I/O.
    """
    before = TenantState.from_snapshot(snapshot)
    return compare_states(before, TenantState.after_plan(snapshot, plan, before))


def compare_states(before: TenantState, after: TenantState) -> Impact:
    """The rows whose route differs between two states."""
    return _compare(before, after, skip_untouched=True)


def _compare(before: TenantState, after: TenantState, *, skip_untouched: bool) -> Impact:
    """:func:`compare_states`; ``skip_untouched=False`` asks every probe of both states (tests compare the two)."""
    shared: dict[str, tuple[str, ...]] = {}
    probes = _probes(before, after)
    sender = _relay_sender(before) or _relay_sender(after)
    changed = _changed_objects(before, after, shared) if skip_untouched else None
    if changed is not None and not any(changed.state.fields()):
        return Impact((), len(probes))  # the states share every object: no probe can get another answer
    indexes: list[_Index] = []  # both states' indexes, built at the first probe that needs them
    rows: list[ImpactRow] = []
    for p in probes:
        if changed is not None and not changed.touched_by(p, sender):
            continue  # only objects both states share could answer it: the same inputs, the same answer
        if not indexes:
            indexes += (_Index(before, shared), _Index(after, shared))
        old, new = indexes
        row = _inbound_row(p, old, new, sender) if p.kind in ("ip", "certificate") else _outbound_row(p, old, new)
        if row is not None:
            rows.append(row)
    return Impact(tuple(rows), len(probes))


def _changed_objects(before: TenantState, after: TenantState, shared: dict[str, tuple[str, ...]]) -> _Index | None:
    """An index of the objects only one of the states holds (by identity: after_plan keeps the objects a plan
    leaves alone), or None when a probe that touches none of them could still get a different answer.

    Why: a plan changes a few objects of thousands, and a probe none of them could answer is handed the same
    objects in the same order by both states (:func:`_same_inputs` would say so after building both inputs);
    asking this small index instead keeps the impact of a small plan from costing two lookups per probe. That
    holds when the objects both states share keep their relative order, the first accepted domain (which every
    question takes along) is shared, and no shared connector's name leads to another identity in one state.
    """
    lists = ((before.accepted, after.accepted), (before.inbound, after.inbound), (before.outbound, after.outbound))
    only: list[tuple[MailObject, ...]] = []
    for old, new in lists:
        old_ids, new_ids = {id(o) for o in old}, {id(o) for o in new}
        if [id(o) for o in old if id(o) in new_ids] != [id(o) for o in new if id(o) in old_ids]:
            return None
        only.append(tuple(o for o in old if id(o) not in new_ids) + tuple(o for o in new if id(o) not in old_ids))
    first_old, first_new = before.accepted[:1], after.accepted[:1]
    if len(first_old) != len(first_new) or (first_old and first_old[0] is not first_new[0]):
        return None
    if any(_names_moved(old, new) for old, new in lists[1:]):  # connectors only: identity() is theirs
        return None
    return _Index(TenantState(*only), shared)


def _names_moved(old: tuple[MailObject, ...], new: tuple[MailObject, ...]) -> bool:
    """A name some shared connector has leads to different identities in the two states (duplicate names)."""
    before = {c.name.casefold(): c.identity for c in old}
    after = {c.name.casefold(): c.identity for c in new}
    moved = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    new_ids = {id(c) for c in new}
    return bool(moved) and any(c.name.casefold() in moved for c in old if id(c) in new_ids)


def _inbound_question(p: Probe, sender: str | None) -> tuple[str | None, str | None, str | None]:
    """(ip, certificate name, MAIL FROM) of an inbound probe."""
    ip, cert = (p.key, None) if p.kind == "ip" else (None, p.key)
    # A certificate is asked with a MAIL FROM outside the tenant, so relaying turns on the certificate alone.
    return ip, cert, sender if p.kind == "ip" else f"relay@{OUTSIDE_DOMAIN}"


def _outbound_key(d: RouteDecision, index: _Index) -> tuple[object, ...]:
    return (d.path, index.identity("outbound", d.connector), d.smart_hosts)


def _same_inputs(kind: str, old: _Index, new: _Index, before: tuple[list[MailObject], list[MailObject]],
                 after: tuple[list[MailObject], list[MailObject]]) -> bool:
    """The simulator would be handed the same objects, in the same order, in both states, and their names lead
    to the same identities: its decisions (pure functions of those inputs) and the rows' keys cannot differ.

    Why: most probes of a plan touch no changed object; this check (object identity first, then equality) is
    what keeps the impact of a plan over thousands of unchanged connectors from asking every question twice.
    """
    if before != after:
        return False
    return all(old.identity(kind, c.name) == new.identity(kind, c.name) for c in before[1])


def _outbound_row(p: Probe, old: _Index, new: _Index) -> ImpactRow | None:
    before, after = old.route_inputs(p.address), new.route_inputs(p.address)
    if _same_inputs("outbound", old, new, before, after):
        return None
    b, a = old.route(p.address, before), new.route(p.address, after)
    if _outbound_key(b, old) == _outbound_key(a, new):
        return None
    return ImpactRow("outbound", p, _outbound_sentence(p, b, a, old, new), _route_summary(b), _route_summary(a))


def _route_summary(d: RouteDecision) -> dict[str, Json]:
    return {"path": d.path, "connector": d.connector, "smartHosts": list(d.smart_hosts), "reason": d.reason}


_MAILBOX_PATHS = ("mailbox", "internal-relay", "undeliverable")


def _hosts(d: RouteDecision) -> str:
    return ", ".join(d.smart_hosts) if d.smart_hosts else "the recipient domain's MX records"


def _unknown(d: RouteDecision) -> str:
    """What happens to a recipient without an Exchange Online mailbox, after "were" or "will now be"."""
    if d.path == "internal-relay":
        return f"relayed to {_hosts(d)} via '{d.connector}'"
    if d.path == "undeliverable":
        return "undeliverable (no enabled OnPremises outbound connector covers them)"
    return "rejected"


def _route(d: RouteDecision) -> str:
    """Where the mail goes, after "was" or "will now be"."""
    return {
        "connector": f"sent through '{d.connector}' to {_hosts(d)}",
        "internal-relay": f"delivered to Exchange Online mailboxes, unknown recipients {_unknown(d)}",
        "mailbox": "delivered to Exchange Online mailboxes only, unknown recipients rejected",
        "undeliverable": f"delivered to Exchange Online mailboxes only, unknown recipients {_unknown(d)}",
        "mx": "delivered to the internet by the domain's MX records",
        "blocked": "blocked (sendingToDomainDisabled)",
    }.get(d.path, d.path)


def _outbound_sentence(p: Probe, b: RouteDecision, a: RouteDecision, old: _Index, new: _Index) -> str:
    subject = p.subject
    if b.path in _MAILBOX_PATHS and a.path in _MAILBOX_PATHS:
        return f"unknown recipients at {subject} were {_unknown(b)} and will now be {_unknown(a)}"
    if b.path == a.path == "connector":
        hosts = f"{_hosts(a)} instead of {_hosts(b)}"
        if old.identity("outbound", b.connector) == new.identity("outbound", a.connector):
            return f"mail for {subject} still goes through '{a.connector}' but now to {hosts}"
        text = f"mail for {subject} moves from connector '{b.connector}' to '{a.connector}'"
        return text + (f" (now to {hosts})" if b.smart_hosts != a.smart_hosts else "")
    return f"mail for {subject} was {_route(b)} and will now be {_route(a)}"


def _inbound_key(d: InboundDecision, index: _Index) -> tuple[object, ...]:
    return (index.identity("inbound", d.connector), d.matched_by, d.relay_allowed, d.rejected)


def _inbound_row(p: Probe, old: _Index, new: _Index, sender: str | None) -> ImpactRow | None:
    ip, cert, mail_from = _inbound_question(p, sender)
    before, after = old.inbound_inputs(ip, cert, mail_from), new.inbound_inputs(ip, cert, mail_from)
    if _same_inputs("inbound", old, new, before, after):
        return None
    b, a = old.inbound(ip, cert, mail_from, before), new.inbound(ip, cert, mail_from, after)
    if _inbound_key(b, old) == _inbound_key(a, new):
        return None
    return ImpactRow("inbound", p, _inbound_sentence(p, b, a, old, new), _inbound_summary(b, mail_from),
                     _inbound_summary(a, mail_from))


def _inbound_summary(d: InboundDecision, sender: str | None) -> dict[str, Json]:
    return {"connector": d.connector, "connectorType": d.connector_type, "matchedBy": d.matched_by,
            "relayAllowed": d.relay_allowed, "rejected": d.rejected, "sender": sender, "reason": d.relay_reason}


def _refusal_cause(d: InboundDecision) -> str:
    if d.connector is None:
        return "no enabled inbound connector matches it"
    if d.connector_type != "OnPremises":
        return f"it now matches Partner connector '{d.connector}', which cannot relay"
    if d.matched_by == "certificate":
        return f"'{d.connector}' matches its certificate, whose domain is not an accepted domain"
    return f"'{d.connector}' matches it only by IP"


def _attribution(d: InboundDecision) -> str:
    if d.connector is None:
        return "anonymous internet mail"
    return f"accepted by {d.connector_type} inbound connector '{d.connector}'"


def _inbound_sentence(p: Probe, b: InboundDecision, a: InboundDecision, old: _Index, new: _Index) -> str:
    subject = p.subject
    if b.relay_allowed is True and a.relay_allowed is not True:
        return f"relay from {subject} will now be refused with {_REFUSED}: {_refusal_cause(a)}"
    if b.relay_allowed is not True and a.relay_allowed is True:
        was = f"was refused with {_REFUSED}" if b.relay_allowed is False else "could not be decided"
        return f"relay from {subject} {was} and will now be allowed through '{a.connector}'"
    if b.rejected != a.rejected:
        if a.rejected:
            return f"mail from {subject} will now be rejected by Partner connector '{a.connector}'"
        return f"mail from {subject} was rejected by Partner connector '{b.connector}' and will now be " \
               f"{_attribution(a)}"
    if old.identity("inbound", b.connector) != new.identity("inbound", a.connector):
        if b.connector and a.connector:
            return f"connections from {subject} move from inbound connector '{b.connector}' to '{a.connector}'"
        return f"connections from {subject} were {_attribution(b)} and will now be {_attribution(a)}"
    return f"connections from {subject} still reach '{a.connector}' but are now matched by {a.matched_by} " \
           f"instead of {b.matched_by}"
