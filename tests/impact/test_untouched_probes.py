"""compare_states skips the probes that no changed object could answer; the rows must be exactly those of asking
every probe of both states (otherwise the shortcut would hide a change of route).

Generated: from the mixed tenant of test_index_agrees, 120 "after" states that keep the untouched objects (as
after_plan does) and change a few: a field changed (recipient domains, sender IPs, certificate, type, enabled,
allAcceptedDomains, domain type), an object removed or added, a connector renamed to another's name, the first
accepted domain changed, the shared objects reordered.
"""

from __future__ import annotations

import random
from dataclasses import replace

from o365_mailflow.impact import MailObject, TenantState, _compare

from .test_index_agrees import ACCEPTED, INBOUND, OUTBOUND

EDITS = {
    "accepted": [{"domainType": "InternalRelay"}, {"domainType": "Authoritative"}, {"matchSubDomains": True},
                 {"domainName": "fabrikam.com"}, {"sendingToDomainDisabled": True}],
    "inbound": [{"senderIpAddresses": ["198.51.100.0/25"]}, {"senderIpAddresses": []}, {"enabled": False},
                {"connectorType": "Partner"}, {"connectorType": "OnPremises"},
                {"tlsSenderCertificateName": "mail.fabrikam.com"}, {"senderDomains": ["partner.example"]},
                {"name": "net"}, {"name": "cert"}],
    "outbound": [{"recipientDomains": ["fabrikam.com"]}, {"recipientDomains": ["*.contoso.com"]},
                 {"allAcceptedDomains": True}, {"enabled": False}, {"smartHosts": ["other.example"]},
                 {"connectorType": "OnPremises"}, {"name": "exact"}, {"name": "star"}],
}


def _edited(rng: random.Random, kind: str, objs: tuple[MailObject, ...]) -> tuple[MailObject, ...]:
    out = list(objs)
    for _ in range(rng.randint(0, 2)):
        op = rng.choice(("change", "change", "remove", "add"))
        if op == "add" or not out:
            base = dict(rng.choice(objs).fields) if objs else {}
            out.append(MailObject(f"new:{rng.random()}", {**base, **rng.choice(EDITS[kind])}))
            continue
        i = rng.randrange(len(out))
        if op == "remove":
            del out[i]
        else:
            out[i] = replace(out[i], fields={**out[i].fields, **rng.choice(EDITS[kind])})
    if rng.random() < 0.05 and len(out) > 1:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def test_skipping_untouched_probes_gives_the_rows_of_asking_every_probe() -> None:
    rng = random.Random(16)
    before = TenantState.from_fields(ACCEPTED, INBOUND, OUTBOUND)
    changed_rows = 0
    for _ in range(120):
        after = TenantState(*(_edited(rng, kind, objs) for kind, objs in
                              (("accepted", before.accepted), ("inbound", before.inbound),
                               ("outbound", before.outbound))))
        fast, full = _compare(before, after, skip_untouched=True), _compare(before, after, skip_untouched=False)
        assert fast == full
        changed_rows += len(full.rows)
    assert changed_rows > 40  # the edits do change routes: the comparison is not between empty results
