"""The mail-flow impact of each kind of change, through ``mailflow plan --format json`` on an emulated tenant.

Matrix: on Microsoft's worked example (C1 all accepted domains, C2 contoso.com, C3 *.contoso.com; relay by IP and
by certificate), each change produces exactly the expected rows and no other: add a connector, disable one,
change recipientDomains, flip a domain to InternalRelay, remove a sender IP; a rename (renamedFrom) and a no-op
plan produce none. The relay scenarios of the dev stack: the first preview of a hybrid tenant, and a certificate
name moved to a domain that is not accepted. The JSON plan carries before and after for each row and validates
against docs/plan-schema.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from .conftest import WORKED_EXAMPLE, Project

ROOT = Path(__file__).resolve().parents[2]
PLAN_SCHEMA = json.loads((ROOT / "docs" / "plan-schema.json").read_text(encoding="utf-8"))

ADD_C4 = WORKED_EXAMPLE + """\
  - name: C4
    recipientDomains: [fabrikam.com]
    useMxRecord: false
    smartHosts: [mx.fabrikam.example]
"""

CASES = {
    "add-a-connector": (ADD_C4, [
        "mail for fabrikam.com moves from connector 'C1' to 'C4' (now to mx.fabrikam.example instead of "
        "onprem.contoso.com)",
    ]),
    "disable-a-connector": (WORKED_EXAMPLE.replace("  - name: C3\n", "  - name: C3\n    enabled: false\n"), [
        "mail for sales.contoso.com moves from connector 'C3' to 'C1' (now to onprem.contoso.com instead of "
        "c3.partner.example)",
        "mail for subdomains of contoso.com was sent through 'C3' to c3.partner.example and will now be delivered "
        "to the internet by the domain's MX records",
    ]),
    "change-recipient-domains": (WORKED_EXAMPLE.replace("recipientDomains: [contoso.com]",
                                                        "recipientDomains: [fabrikam.com]"), [
        "mail for contoso.com moves from connector 'C2' to 'C3' (now to c3.partner.example instead of "
        "c2.partner.example)",
        "mail for fabrikam.com moves from connector 'C1' to 'C2' (now to c2.partner.example instead of "
        "onprem.contoso.com)",
    ]),
    "flip-a-domain-to-internal-relay": (WORKED_EXAMPLE.replace(
        "  - domainName: contoso.com\n    domainType: Authoritative",
        "  - domainName: contoso.com\n    domainType: InternalRelay"), [
        "mail for contoso.com was sent through 'C2' to c2.partner.example and will now be delivered to Exchange "
        "Online mailboxes, unknown recipients relayed to onprem.contoso.com via 'C1'",
    ]),
    "remove-a-sender-ip": (WORKED_EXAMPLE.replace("203.0.113.10, 203.0.113.11, ", "203.0.113.10, "), [
        "relay from 203.0.113.11 will now be refused with 550 5.7.64: no enabled inbound connector matches it",
    ]),
    "rename-a-connector": (WORKED_EXAMPLE.replace("  - name: C2\n", "  - name: C2 partner\n    renamedFrom: C2\n"),
                           []),
    "no-op": (WORKED_EXAMPLE, []),
}


@pytest.mark.parametrize(("body", "expected"), list(CASES.values()), ids=list(CASES))
def test_each_kind_of_change_produces_exactly_the_expected_impact_rows(project: Project, body: str,
                                                                       expected: list[str]) -> None:
    project.apply(WORKED_EXAMPLE)
    plan = project.plan(body)
    assert [row["sentence"] for row in plan["impact"]["rows"]] == expected
    jsonschema.validate(plan, PLAN_SCHEMA)


def test_a_row_carries_the_route_before_and_after_for_machines(project: Project) -> None:
    project.apply(WORKED_EXAMPLE)
    [row] = project.plan(ADD_C4)["impact"]["rows"]
    assert (row["direction"], row["kind"], row["subject"], row["probe"]) == ("outbound", "domain", "fabrikam.com",
                                                                             "fabrikam.com")
    assert (row["before"]["path"], row["before"]["connector"], row["before"]["smartHosts"]) == (
        "connector", "C1", ["onprem.contoso.com"])
    assert (row["after"]["connector"], row["after"]["smartHosts"]) == ("C4", ["mx.fabrikam.example"])


DEV_STACK = (ROOT / "stacks" / "dev.yaml").read_text(encoding="utf-8").split("tenant:\n  emulator: true\n", 1)[1]


def test_the_first_preview_of_the_hybrid_dev_stack_says_what_happens_to_mail(project: Project) -> None:
    assert project.sentences(DEV_STACK) == [
        "unknown recipients at contoso.com were rejected and will now be relayed to mail.contoso.com via "
        "'To on-premises Exchange'",
        "relay from 198.51.100.0/28 was refused with 550 5.7.64 and will now be allowed through "
        "'Relay from office printers and apps'",
        "relay from 203.0.113.10 was refused with 550 5.7.64 and will now be allowed through "
        "'Relay from office printers and apps'",
        "relay from 203.0.113.11 was refused with 550 5.7.64 and will now be allowed through "
        "'Relay from office printers and apps'",
        "relay from servers with certificate mail.contoso.com was refused with 550 5.7.64 and will now be allowed "
        "through 'Relay from on-premises Exchange (certificate)'",
    ]


def test_a_certificate_outside_the_accepted_domains_stops_certificate_relay(project: Project) -> None:
    project.apply(DEV_STACK)
    moved = DEV_STACK.replace("tlsSenderCertificateName: mail.contoso.com", "tlsSenderCertificateName: mail.contoso.net")
    assert project.sentences(moved) == [
        "relay from servers with certificate mail.contoso.com will now be refused with 550 5.7.64: no enabled "
        "inbound connector matches it",
        "connections from servers with certificate mail.contoso.net were anonymous internet mail and will now be "
        "accepted by OnPremises inbound connector 'Relay from on-premises Exchange (certificate)'",
    ]


def test_the_text_plan_puts_the_mail_flow_sentences_before_the_field_changes(project: Project) -> None:
    project.apply(WORKED_EXAMPLE)
    text = project.plan(ADD_C4, "text")
    head = "Mail flow after this plan (routes that change):\n  * mail for fabrikam.com moves from connector 'C1' to"
    assert head in text
    assert text.index("Mail flow after this plan") < text.index("+ create OutboundConnector 'C4'")


def test_a_no_op_plan_has_no_mail_flow_section_in_text_or_markdown(project: Project) -> None:
    project.apply(WORKED_EXAMPLE)
    assert "Mail flow" not in project.plan(WORKED_EXAMPLE, "text")
    assert "Mail flow" not in project.plan(WORKED_EXAMPLE, "markdown")
