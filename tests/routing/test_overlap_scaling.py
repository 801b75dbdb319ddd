"""senderIpAddresses overlap check at scale (reviewer finding: every pair of inbound connectors was compared,
even those without IPs, so `mailflow validate` took tens of seconds on thousands of connectors).

The check must look at each connector's addresses a bounded number of times (not once per pair), and must give
exactly the findings the pairwise comparison gives (same pairs, same order, same wording).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest

from o365_mailflow import routing
from o365_mailflow.routing import check_objects

OVERLAP = "routing.sender-ip-overlap"


def _inbound(name: str, kind: str, ips: list[str] | None, enabled: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "connectorType": kind, "enabled": enabled,
                            "senderDomains": ["*"] if kind == "OnPremises" else ["partner.example"]}
    if ips:
        body["senderIpAddresses"] = ips
    return body


def _pairwise(inbound: list[dict[str, Any]]) -> list[str]:
    """The reference: compare every pair of enabled same-type connectors (the behaviour before the sweep)."""
    def nets(c: dict[str, Any]) -> list[ipaddress.IPv4Network]:
        return [ipaddress.IPv4Network(v, strict=False) for v in c.get("senderIpAddresses") or ()]

    def show(n: ipaddress.IPv4Network) -> str:
        return str(n.network_address) if n.prefixlen == 32 else str(n)

    out = []
    enabled = [c for c in inbound if c["enabled"]]
    for j, later in enumerate(enabled):
        for earlier in enabled[:j]:
            if earlier["connectorType"] != later["connectorType"]:
                continue
            for net in nets(later):
                hit = next((a for a in nets(earlier) if a.overlaps(net)), None)
                if hit is not None:
                    out.append(f"senderIpAddresses {show(net)} of inbound connector {later['name']} overlaps "
                               f"{show(hit)} of {earlier['name']}; Exchange Online attributes a connection to "
                               "only one of them.")
                    break
    return out


def _summaries(inbound: list[dict[str, Any]]) -> list[str]:
    return [d.summary for d in check_objects([], inbound, []) if d.code == OVERLAP]


@pytest.mark.parametrize("seed", range(8))
def test_same_findings_as_the_pairwise_comparison(seed: int) -> None:
    rng = random.Random(seed)
    inbound = []
    for n in range(40):
        ips = []
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            prefix = rng.choice([8, 16, 24, 28, 30, 32])
            addr = f"10.{rng.randrange(2)}.{rng.randrange(3)}.{rng.randrange(8)}"
            ips.append(str(ipaddress.IPv4Network(f"{addr}/{prefix}", strict=False)) if prefix < 32 else addr)
        inbound.append(_inbound(f"c{n}", rng.choice(["OnPremises", "Partner"]), ips, enabled=rng.random() > 0.1))
    expected = _pairwise(inbound)
    assert expected, "the random data should contain overlaps"
    assert _summaries(inbound) == expected


def test_connectors_are_not_compared_pair_by_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """600 connectors, a few with IPs: addresses are parsed about once per connector, not once per pair
    (the pairwise check parsed them ~180,000 times)."""
    calls = 0
    real = routing.sender_networks

    def counting(values: Any) -> list[ipaddress.IPv4Network]:
        nonlocal calls
        calls += 1
        return real(values)

    monkeypatch.setattr(routing, "sender_networks", counting)
    inbound = [_inbound(f"c{n}", "Partner", None) for n in range(600)]
    inbound[10] = _inbound("first", "Partner", ["192.0.2.0/24"])
    inbound[500] = _inbound("second", "Partner", ["192.0.2.7"])
    inbound[550] = _inbound("third", "Partner", ["198.51.100.1"])
    summaries = _summaries(inbound)
    assert summaries == ["senderIpAddresses 192.0.2.7 of inbound connector second overlaps 192.0.2.0/24 of first; "
                         "Exchange Online attributes a connection to only one of them."]
    assert calls <= 3 * len(inbound)


def test_identical_ips_on_many_connectors_report_each_pair_once() -> None:
    inbound = [_inbound(f"c{n}", "OnPremises", ["203.0.113.5", "203.0.113.0/29"]) for n in range(4)]
    summaries = _summaries(inbound)
    assert len(summaries) == 6  # one per pair, not one per overlapping address
    assert summaries == _pairwise(inbound)
