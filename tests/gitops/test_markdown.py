"""The PR-comment markdown for a plan (`mailflow plan --format markdown`).

Matrix: golden files for no changes, creates only, a delete (banner), a risky-field update, drift, and a plan
too large for one comment; then properties that must hold for any plan: the hidden marker comes first, table
cells survive pipes, backticks and newlines, the summary survives trimming and the
output stays under the limit.

Regenerate the golden files after an intended change with ``MAILFLOW_UPDATE_DOCS=1`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest
from doc_capture import check_file

from o365_mailflow.errors import Diagnostic, Severity
from o365_mailflow.plan import Action, FieldChange, Guidance, Plan, ResourceChange, Unmanaged
from o365_mailflow.render.markdown import MIN_LIMIT, marker, render_markdown

GOLDEN = Path(__file__).parent / "golden"
RUN_URL = "https://github.com/contoso/mailflow/actions/runs/123"
TENANT = "contoso.onmicrosoft.com"

GUIDANCE = Guidance(
    mx_endpoints={"contoso.com": "contoso-com.mail.protection.outlook.com"},
    spf_record="v=spf1 include:spf.protection.outlook.com -all",
)


def fc(field: str, param: str, before: object, after: object, **flags: bool) -> FieldChange:
    return FieldChange(field=field, param=param, before=before, after=after, **flags)


def noop(type_name: str, name: str, identity: str | None = None) -> ResourceChange:
    return ResourceChange(Action.NOOP, type_name, name, identity or name)


def plan_no_changes() -> Plan:
    return Plan(
        stack="prod",
        tenant=TENANT,
        changes=(
            noop("AcceptedDomain", "contoso.com"),
            noop("InboundConnector", "From on-premises", "8d2c1e4b-0000-4000-8000-000000000001"),
            noop("OutboundConnector", "To on-premises", "8d2c1e4b-0000-4000-8000-000000000002"),
        ),
        guidance=GUIDANCE,
    )


def plan_creates_only() -> Plan:
    return Plan(
        stack="dev",
        tenant="emulated tenant contoso.onmicrosoft.com",
        changes=(
            noop("AcceptedDomain", "contoso.com"),
            ResourceChange(
                Action.CREATE,
                "InboundConnector",
                "From partner fabrikam",
                changes=(
                    fc("connectorType", "ConnectorType", None, "Partner", risky=True),
                    fc("senderDomains", "SenderDomains", None, ["fabrikam.com", "*.fabrikam.com"]),
                    fc("requireTls", "RequireTls", None, True, risky=True),
                    fc("comment", "Comment", None, "Partner mail | enforced TLS"),
                ),
                reason="not in the tenant",
            ),
            ResourceChange(
                Action.CREATE,
                "InboundConnector",
                "Scanner relay",
                changes=(
                    fc("connectorType", "ConnectorType", None, "OnPremises", risky=True),
                    fc("senderDomains", "SenderDomains", None, ["*"]),
                    fc("enabled", "Enabled", None, True, risky=True),
                ),
                reason="not in the tenant",
            ),
        ),
    )


def plan_with_delete() -> Plan:
    return Plan(
        stack="prod",
        tenant=TENANT,
        prune=True,
        changes=(
            noop("AcceptedDomain", "contoso.com"),
            ResourceChange(
                Action.DELETE,
                "OutboundConnector",
                "Legacy smarthost",
                identity="5b0f5b0f-0000-4000-8000-00000000000a",
                changes=(
                    fc("smartHosts", "SmartHosts", ["relay.contoso.com"], None, risky=True),
                    fc("recipientDomains", "RecipientDomains", ["*"], None),
                ),
                reason="not in the stack and prune is on",
            ),
        ),
        unmanaged=(Unmanaged("InboundConnector", "Left by the migration", "11111111-2222-4333-8444-555555555555"),),
    )


def plan_risky_update() -> Plan:
    return Plan(
        stack="prod",
        tenant=TENANT,
        changes=(
            ResourceChange(
                Action.UPDATE,
                "InboundConnector",
                "From on-premises",
                identity="8d2c1e4b-0000-4000-8000-000000000001",
                changes=(
                    fc(
                        "senderIpAddresses",
                        "SenderIPAddresses",
                        ["203.0.113.10", "203.0.113.11"],
                        ["203.0.113.10", "198.51.100.0/24"],
                        risky=True,
                    ),
                    fc("requireTls", "RequireTls", False, True, risky=True),
                    fc("comment", "Comment", "old `relay`", "new relay\nsecond line"),
                ),
                reason="2 fields differ",
            ),
            ResourceChange(
                Action.ADOPT,
                "AcceptedDomain",
                "contoso.com",
                identity="contoso.com",
                changes=(fc("domainType", "DomainType", "Authoritative", "InternalRelay", risky=True),),
                reason="adopt: true; exists in the tenant",
            ),
        ),
        warnings=(
            Diagnostic(
                Severity.WARNING,
                ("acceptedDomains", 0, "domainType"),
                "InternalRelay without an outbound connector for contoso.com.",
                detail="Unknown recipients will bounce; add an outbound connector.",
                file="stacks/prod.yaml",
                line=7,
            ),
        ),
        guidance=GUIDANCE,
    )


def plan_with_drift() -> Plan:
    return Plan(
        stack="prod",
        tenant=TENANT,
        changes=(
            ResourceChange(
                Action.UPDATE,
                "OutboundConnector",
                "To on-premises",
                identity="8d2c1e4b-0000-4000-8000-000000000002",
                changes=(
                    fc("smartHosts", "SmartHosts", ["mx9.example.net"], ["relay.contoso.com"], risky=True, drift=True),
                    fc("testMode", "TestMode", True, False),
                ),
                reason="2 fields differ",
            ),
            ResourceChange(
                Action.UPDATE,
                "InboundConnector",
                "From on-premises",
                identity="8d2c1e4b-0000-4000-8000-000000000001",
                changes=(fc("comment", "Comment", "edited in EAC", "Managed by o365-mailflow", drift=True),),
                reason="1 field differs",
            ),
        ),
    )


def plan_too_large(n: int = 400) -> Plan:
    changes = [
        ResourceChange(
            Action.DELETE,
            "OutboundConnector",
            "Old route",
            identity="5b0f5b0f-0000-4000-8000-00000000000a",
            reason="not in the stack and prune is on",
        )
    ]
    for i in range(n):
        changes.append(
            ResourceChange(
                Action.CREATE,
                "InboundConnector",
                f"Branch office {i:04d}",
                changes=(
                    fc("connectorType", "ConnectorType", None, "OnPremises"),
                    fc("senderIpAddresses", "SenderIPAddresses", None, [f"10.{i // 256}.{i % 256}.0/24"], risky=True),
                    fc("comment", "Comment", None, "Branch office relay " + "x" * 60),
                ),
                reason="not in the tenant",
            )
        )
    return Plan(
        stack="prod",
        tenant=TENANT,
        prune=True,
        changes=tuple(changes),
        unmanaged=tuple(Unmanaged("InboundConnector", f"Stray {i}") for i in range(30)),
        warnings=tuple(
            Diagnostic(Severity.WARNING, ("inboundConnectors", i), f"Warning number {i}.") for i in range(40)
        ),
    )


GOLDEN_CASES = [
    pytest.param(plan_no_changes, {}, "no-changes", id="no-changes"),
    pytest.param(plan_creates_only, {}, "creates-only", id="creates-only"),
    pytest.param(plan_with_delete, {"run_url": RUN_URL}, "delete", id="delete-banner"),
    pytest.param(plan_risky_update, {}, "risky-update", id="risky-field-update"),
    pytest.param(plan_with_drift, {"run_url": RUN_URL}, "drift", id="drift"),
    pytest.param(plan_too_large, {"limit": 8000, "run_url": RUN_URL}, "too-large", id="too-large-for-one-comment"),
]


@pytest.mark.parametrize(("build", "kwargs", "name"), GOLDEN_CASES)
def test_markdown_matches_the_reviewed_golden_file(build, kwargs, name):
    text = render_markdown(build(), **kwargs)
    check_file(GOLDEN / f"{name}.md", text)


ALL_PLANS = [
    pytest.param(plan_no_changes, id="no-changes"),
    pytest.param(plan_creates_only, id="creates-only"),
    pytest.param(plan_with_delete, id="delete"),
    pytest.param(plan_risky_update, id="risky-update"),
    pytest.param(plan_with_drift, id="drift"),
    pytest.param(plan_too_large, id="too-large"),
]


@pytest.mark.parametrize("build", ALL_PLANS)
def test_the_hidden_marker_is_the_first_line_and_names_the_stack(build):
    plan = build()
    first = render_markdown(plan).splitlines()[0]
    assert first == marker(plan.stack) == f"<!-- o365-mailflow:plan:{plan.stack} -->"


@pytest.mark.parametrize("build", ALL_PLANS)
def test_title_names_the_stack_and_the_tenant(build):
    plan = build()
    title = render_markdown(plan).splitlines()[1]
    assert f"`{plan.stack}`" in title and f"`{plan.tenant}`" in title


@pytest.mark.parametrize("build", ALL_PLANS)
def test_the_counts_table_matches_the_plan_summary(build):
    plan = build()
    lines = render_markdown(plan).splitlines()
    header = next(i for i, line in enumerate(lines) if "Create" in line and "Unchanged" in line)
    counts = [int(c) for c in lines[header + 2].strip("| ").split(" | ")]
    s = plan.summary
    assert counts == [s["create"], s["update"], s["delete"], s["adopt"], s["restore"], s["no-op"]]


@pytest.mark.parametrize(
    ("build", "banner"),
    [
        pytest.param(plan_no_changes, False, id="no-changes-is-quiet"),
        pytest.param(plan_with_drift, True, id="risky-drift-is-loud"),
        pytest.param(plan_with_delete, True, id="delete-is-loud"),
        pytest.param(plan_risky_update, True, id="risky-update-is-loud"),
        pytest.param(plan_creates_only, False, id="creates-get-a-warning-not-a-caution"),
    ],
)
def test_a_caution_banner_appears_exactly_when_something_is_deleted_or_a_risky_field_changes(build, banner):
    assert ("> [!CAUTION]" in render_markdown(build())) is banner


def test_new_objects_with_risky_fields_get_a_warning_banner_naming_them():
    text = render_markdown(plan_creates_only())
    banner = [line for line in text.splitlines() if line.startswith(">")]
    assert banner[0] == "> [!WARNING]" and "creates 2 objects with risky fields" in banner[1]
    assert "> - ➕ **create** InboundConnector `Scanner relay`: `ConnectorType`, `Enabled`" in banner


def test_a_plan_with_deletes_and_risky_creates_shows_both_banners_caution_first():
    plan = plan_too_large(3)
    lines = render_markdown(plan).splitlines()
    assert lines.index("> [!CAUTION]") < lines.index("> [!WARNING]")


def test_a_delete_without_field_values_still_raises_the_banner():
    plan = Plan("prod", TENANT, (ResourceChange(Action.DELETE, "OutboundConnector", "Gone", identity="x"),))
    text = render_markdown(plan)
    assert "> [!CAUTION]" in text and "deletes 1 object" in text and "`Gone`" in text


def test_an_update_of_only_safe_fields_has_no_banner():
    plan = Plan(
        "prod",
        TENANT,
        (ResourceChange(Action.UPDATE, "InboundConnector", "A", "id", (fc("comment", "Comment", "a", "b"),)),),
    )
    assert "[!CAUTION]" not in render_markdown(plan)


def test_drifted_fields_are_listed_in_their_own_section_and_not_as_intended_changes():
    text = render_markdown(plan_with_drift())
    changes, drift = text.split("#### Drift")
    drift = drift.split("<details>")[0]
    assert "`mx9.example.net`" in drift and "`mx9.example.net`" not in changes
    assert "`TestMode`" in changes and "`TestMode`" not in drift


def cell_count(row: str) -> int:
    """Cells in a GFM table row: split on pipes that are not escaped."""
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a|b|c", id="pipes"),
        pytest.param("use `code` here", id="backticks"),
        pytest.param("line one\nline two", id="newline"),
        pytest.param("<!-- o365-mailflow:plan:other --> </details>", id="html-and-marker"),
        pytest.param("``double`` and |", id="double-backticks-and-pipe"),
    ],
)
def test_values_cannot_break_the_table_or_the_comment(value):
    plan = Plan(
        "prod",
        TENANT,
        (
            ResourceChange(
                Action.UPDATE,
                "InboundConnector",
                "odd | name `x`",
                "id",
                (fc("comment", "Comment", value, value + "!"), fc("senderDomains", "SenderDomains", [value], [])),
            ),
        ),
    )
    text = render_markdown(plan)
    table_rows = [line for line in text.splitlines() if line.startswith("| `") and "Comment" in line]
    assert table_rows and all(cell_count(row) == 4 for row in table_rows)
    assert text.count("<!-- o365-mailflow:plan") == 1 + text.count("plan:other")
    assert text.splitlines()[0] == marker("prod")
    assert "\nline two" not in text.split("<details>")[0]


def test_long_list_changes_show_what_was_added_and_removed():
    before = [f"10.0.0.{i}" for i in range(40)]
    after = before[1:] + ["192.0.2.1"]
    plan = Plan(
        "prod",
        TENANT,
        (
            ResourceChange(
                Action.UPDATE,
                "InboundConnector",
                "c",
                "id",
                (fc("senderIpAddresses", "SenderIPAddresses", before, after, risky=True),),
            ),
        ),
    )
    row = next(line for line in render_markdown(plan).splitlines() if line.startswith("| `SenderIPAddresses`"))
    assert "~~`10.0.0.0`~~" in row and "**`192.0.2.1`** (added)" in row and "39 unchanged" in row
    assert "`10.0.0.7`" not in row


@pytest.mark.parametrize("limit", [pytest.param(MIN_LIMIT, id="minimum"), pytest.param(65000, id="github-default")])
def test_a_huge_plan_keeps_the_summary_and_stays_under_the_limit(limit):
    plan = plan_too_large(3000)
    text = render_markdown(plan, limit=limit, run_url=RUN_URL)
    assert len(text) <= limit
    assert text.splitlines()[0] == marker("prod")
    assert "> [!CAUTION]" in text and "deletes 1 object" in text
    assert "| 3000 | 0 | 1 | 0 | 0 | 0 |" in text
    assert "comment size limit" in text and RUN_URL in text and "`mailflow plan --stack prod`" in text


def test_trimming_drops_the_full_plan_before_any_change_table():
    plan = plan_too_large(12)
    full = render_markdown(plan)
    details_start = full.index("<details><summary>Full plan")
    details_len = len(full) - details_start
    trimmed = render_markdown(plan, limit=len(full) - details_len // 2)
    assert "<details><summary>Full plan" not in trimmed and "The full plan is omitted" in trimmed
    assert "Branch office 0011" in trimmed.split("full plan is omitted")[0]


def test_a_limit_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="at least"):
        render_markdown(plan_no_changes(), limit=MIN_LIMIT - 1)


def test_output_is_deterministic():
    assert render_markdown(plan_too_large(50)) == render_markdown(plan_too_large(50))


def test_the_summary_fits_the_minimum_limit_even_with_long_names_and_many_risky_fields():
    params = [f"RiskyParameterNumber{i:02d}" for i in range(12)]
    changes = tuple(
        ResourceChange(
            Action.UPDATE if i % 2 else Action.CREATE,
            "OutboundConnector",
            f"connector {i} " + "n" * 200,
            "id",
            tuple(fc(p[0].lower() + p[1:], p, "a", "b", risky=True) for p in params),
        )
        for i in range(40)
    )
    text = render_markdown(Plan("prod", TENANT, changes), limit=MIN_LIMIT)
    assert len(text) <= MIN_LIMIT
    assert "> [!CAUTION]" in text and "> [!WARNING]" in text
    assert "| 20 | 20 | 0 | 0 | 0 | 0 |" in text


def test_a_trimmed_comment_sends_the_reader_to_the_artifact_with_the_whole_plan():
    plan = dataclasses.replace(plan_too_large(), engine="pulumi")
    text = render_markdown(plan, limit=8000, run_url=RUN_URL, artifact="mailflow-plan-prod")
    notes = [line for line in text.splitlines() if "comment size limit" in line]
    assert notes and all("the whole plan (markdown and JSON) is in the artifact `mailflow-plan-prod` of the "
                         f"[CI run]({RUN_URL})" in n and "`mailflow pulumi-preview --stack prod`" in n for n in notes)
    whole = render_markdown(plan, limit=sys.maxsize, run_url=RUN_URL, artifact="mailflow-plan-prod")
    assert "comment size limit" not in whole and len(whole) > 65536  # the artifact's plan.md: nothing dropped
