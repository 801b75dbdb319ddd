"""The shared per-object diff (``plan.diff_object``), which the plan and the Pulumi providers both use.

Matrix: declared fields only; lists compared as sets (order, duplicates) on values normalised the same way on
both sides; create (no live object) lists every declared field; drift needs a baseline that equals the desired
value; meta keys are ignored; results follow the spec table's order.
"""

from __future__ import annotations

from typing import Any

import pytest

from o365_mailflow.plan import diff_object
from o365_mailflow.snapshot import live_object
from o365_mailflow.specs import INBOUND, OUTBOUND, normalise_desired

LIVE_INBOUND = {
    "Name": "Relay",
    "Guid": "7f1e3a52-0000-4000-8000-000000000001",
    "ConnectorType": "OnPremises",
    "ConnectorSource": "AdminUI",
    "SenderDomains": ["smtp:*;1"],
    "SenderIPAddresses": ["203.0.113.11", "203.0.113.10"],
    "RequireTls": False,
    "Comment": "printers",
    "Enabled": True,
}


def _desired(spec: Any, raw: dict[str, Any]) -> dict[str, Any]:
    fields, diags = normalise_desired(spec, raw)
    assert diags == []
    return fields


def test_a_matching_object_has_no_changes_even_with_other_order_case_and_address_space_wrapping() -> None:
    desired = _desired(INBOUND, {
        "name": "Relay", "connectorType": "onpremises", "senderDomains": ["*"],
        "senderIpAddresses": ["203.0.113.10", "203.0.113.11", "203.0.113.10"], "connectorSource": "Default",
    })
    assert diff_object(INBOUND, desired, live_object(INBOUND, LIVE_INBOUND)) == ()


def test_fields_the_stack_does_not_declare_are_never_compared() -> None:
    desired = _desired(INBOUND, {"name": "Relay", "senderDomains": ["*"], "adopt": True})
    live = live_object(INBOUND, {**LIVE_INBOUND, "Comment": "changed by hand", "Enabled": False})
    assert diff_object(INBOUND, desired, live) == ()


@pytest.mark.parametrize(
    ("raw", "field", "before", "after"),
    [
        ({"senderIpAddresses": ["203.0.113.10"]}, "senderIpAddresses", ["203.0.113.10", "203.0.113.11"],
         ["203.0.113.10"]),
        ({"comment": "relay"}, "comment", "printers", "relay"),
        ({"enabled": False}, "enabled", True, False),
    ],
    ids=["list-as-set", "text", "bool"],
)
def test_a_changed_declared_field_reports_before_and_after(raw: dict[str, Any], field: str, before: Any,
                                                            after: Any) -> None:
    desired = _desired(INBOUND, {"name": "Relay", "senderDomains": ["*"], **raw})
    (change,) = diff_object(INBOUND, desired, live_object(INBOUND, LIVE_INBOUND))
    assert (change.field, change.before, change.after, change.drift) == (field, before, after, False)
    assert change.param == INBOUND.field(field).param


def test_a_create_lists_every_declared_field_from_none_in_table_order() -> None:
    desired = _desired(OUTBOUND, {"useMxRecord": False, "name": "Out", "smartHosts": ["mail.contoso.com"],
                                  "recipientDomains": ["contoso.com"]})
    changes = diff_object(OUTBOUND, desired, None)
    assert [c.field for c in changes] == ["name", "recipientDomains", "useMxRecord", "smartHosts"]
    assert all(c.before is None for c in changes)


def test_risky_fields_are_flagged_from_the_spec_table() -> None:
    desired = _desired(INBOUND, {"name": "Relay", "senderDomains": ["*"], "senderIpAddresses": ["198.51.100.7"]})
    (change,) = diff_object(INBOUND, desired, live_object(INBOUND, LIVE_INBOUND))
    assert change.risky is True


def test_a_difference_is_drift_only_when_the_baseline_already_declared_the_desired_value() -> None:
    desired = _desired(INBOUND, {"name": "Relay", "senderDomains": ["*"], "comment": "printers v2",
                                 "enabled": True})
    live = live_object(INBOUND, {**LIVE_INBOUND, "Enabled": False})
    baseline = {"comment": "printers", "enabled": True}
    changes = {c.field: c.drift for c in diff_object(INBOUND, desired, live, baseline=baseline)}
    assert changes == {"enabled": True, "comment": False}


def test_the_diff_accepts_plain_mappings_and_unsorted_lists_from_pulumi_inputs() -> None:
    live = live_object(INBOUND, LIVE_INBOUND).fields
    desired = {"senderIpAddresses": ["203.0.113.11", "203.0.113.10"], "__provider": "ignored"}
    assert diff_object(INBOUND, desired, live) == ()
