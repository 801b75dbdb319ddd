"""`mailflow route` and the SMTP front door give the same answer: one implementation, checked over generated cases.

Matrix: every combination of source IP (OnPremises CIDR, single IP, Partner range, unknown), sender (accepted
domain, subdomain, partner, foreign, null sender), recipient (mailbox, unknown in Authoritative and InternalRelay
domains, connector-covered partner domain, internet) and TLS (plain, STARTTLS) against the hybrid tenant of
tests/fixtures/hybrid.yaml: `mailflow route RECIPIENT --from-ip IP --sender S [--tls] [--no-mailbox] --format
json` predicts the reply from the stack file (normalised through the specs, renamed to the service's property
names); the front door, reached over SMTP with smtplib, applies the same rules to the emulator's own stored records
and must answer exactly that code and enhanced status, and record the same inbound connector and outcome. Stacks
do not declare mailboxes, so the test tells route which recipients have one (the tenant's seed lists them).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from click.testing import CliRunner
from smtp_helpers import FrontDoor

from o365_mailflow.cli import main

IPS = ["203.0.113.10", "198.51.100.5", "192.0.2.9", "203.0.113.200"]
SENDERS = ["app@contoso.com", "app@sales.contoso.com", "orders@partner.example", "x@example.org"]
RECIPIENTS = ["alex@contoso.com", "megan@sales.contoso.com", "ghost@contoso.com", "ghost@fabrikam.com",
              "buyer@partner.example", "friend@example.net"]
MAILBOXES = {"alex@contoso.com", "megan@sales.contoso.com"}
# TLS matters only to the Partner connector (RequireTls): both ways from its range, plain text elsewhere.
CASES = [(ip, s, r, False) for ip, s, r in itertools.product(IPS, SENDERS, RECIPIENTS)] + [
    ("192.0.2.9", s, r, True) for s, r in itertools.product(SENDERS, RECIPIENTS)]


def _route(project: Any, ip: str, sender: str, recipient: str, tls: bool) -> dict[str, Any]:
    args = ["route", "--stack", str(project.root / "stacks" / "test.yaml"), recipient, "--from-ip", ip,
            "--sender", sender, "--format", "json"] + (["--tls"] if tls else [])
    args += ["--mailbox"] if recipient in MAILBOXES else ["--no-mailbox"]
    result = CliRunner().invoke(main, args, env={**project.tenant.env, "MAILFLOW_STATE_DIR": str(project.root)},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout)["decision"])


def test_mailflow_route_and_the_front_door_never_disagree(project: Any, front_door: FrontDoor,
                                                         hybrid_stack: str) -> None:
    project.write_stack(hybrid_stack)
    project.apply()
    disagreements = []
    for ip, sender, recipient, tls in CASES:
        predicted = _route(project, ip, sender, recipient, tls)
        client = front_door.connect(source_ip=ip, starttls=tls)
        try:
            client.mail(sender)
            code, text = client.rcpt(recipient)
        finally:
            client.quit()
        answered = f"{code} {text.decode().split()[0]}"
        recorded = front_door.messages()[-1]["recipients"][-1]
        expected = f"{predicted['replyCode']} {predicted['enhancedStatus']}"
        same = (answered == expected and recorded["outcome"] == predicted["outcome"]
                and recorded["inbound"]["connector"] == predicted["inbound"]["connector"])
        if not same:
            disagreements.append((ip, sender, recipient, tls, expected, answered, predicted["outcome"],
                                  recorded["outcome"]))
    assert disagreements == []
    outcomes = {m["recipients"][-1]["code"] for m in front_door.messages()}
    # The generated cases exercise every branch the rules have for this tenant, not just one or two.
    assert {"accepted.mailbox", "accepted.internal-relay", "accepted.relay-internet", "accepted.relay-connector",
            "recipient.unknown", "relay.not-accepted-domain", "relay.not-attributed", "relay.denied",
            "tls.required", "partner.restricted"} <= outcomes
