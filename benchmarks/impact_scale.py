"""What the mail-flow impact of a plan costs as a tenant grows: N = 100, 1,000 and 5,000 connectors.

Why: the impact asks the routing simulator about every accepted domain, connector domain, sender network and
certificate, before and after the plan, so the number of questions grows with N. Asked naively, each question
scans every connector (O(N^2) in all); the impact indexes each state once and hands each question only the
objects that could match it (``routing.covering_patterns``, networks by prefix), so the cost stays linear.
It makes no API call: it reads the plan's own snapshot (``compute_impact(snapshot, plan)`` takes no client).

For each N this builds a stack of N connectors (half inbound with a /29 sender network each, half outbound with
one recipient domain each, an accepted domain per 10 outbound connectors), a snapshot holding the same objects,
then changes 1% of them in the stack (smart hosts, a removed sender network) and plans. It measures
``compute_impact`` and, up to 1,000, the same questions asked of the simulator with every connector.

Run: ``.venv/bin/python benchmarks/impact_scale.py [--sizes 100,1000,5000]``

Measured on the 2-core build machine (shared, so seconds are rough):

    N     | probes | rows | impact s | per connector ms | naive s
    100   |    156 |    2 |    0.08  |   0.78           |   1.41
    1000  |   1551 |   10 |    0.75  |   0.75           | 227 (measured once, under load from the test suite)
    5000  |   7751 |   50 |    5.59  |   1.12           | (skipped: quadratic)

(The impact's own run at 1,000 was 2.6 s under the same load. Before MAIL FROM domains were indexed for Partner
connectors only, 1,000 connectors took 206 s: every OnPremises connector lists "*".)
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from o365_mailflow.impact import TenantState, _probes, compute_impact
from o365_mailflow.plan import compute_plan
from o365_mailflow.routing import match_inbound, route_outbound
from o365_mailflow.snapshot import LiveObject, Snapshot
from o365_mailflow.specs import SPECS, effective
from o365_mailflow.stack import load_stack_text

TYPES = {"acceptedDomains": "AcceptedDomain", "inboundConnectors": "InboundConnector",
         "outboundConnectors": "OutboundConnector"}


def _objects(n: int, changed: bool) -> dict[str, list[dict[str, Any]]]:
    half = n // 2
    step = 100  # 1% of each kind changes
    inbound = []
    for i in range(half):
        nets = [f"11.{i // 256}.{i % 256}.0/29", f"12.{i // 256}.{i % 256}.1"]
        if changed and i % step == 0:
            nets = nets[:1]
        inbound.append({"name": f"Site {i}", "connectorType": "OnPremises", "senderDomains": ["*"],
                        "senderIpAddresses": nets})
    outbound = []
    for i in range(half):
        host = f"mx{i}.branch.example" if not (changed and i % step == 0) else f"new{i}.branch.example"
        outbound.append({"name": f"Branch {i}", "connectorType": "OnPremises",
                         "recipientDomains": [f"b{i}.d{i // 10}.contoso.com"], "useMxRecord": False,
                         "smartHosts": [host]})
    accepted = [{"domainName": f"d{j}.contoso.com", "domainType": "Authoritative"} for j in range(max(1, half // 10))]
    return {"acceptedDomains": accepted, "inboundConnectors": inbound, "outboundConnectors": outbound}


def _stack_text(objects: dict[str, list[dict[str, Any]]]) -> str:
    import yaml

    return yaml.safe_dump({"tenant": {"emulator": True}, **objects}, sort_keys=False)


def _snapshot(objects: dict[str, list[dict[str, Any]]]) -> Snapshot:
    live: dict[str, tuple[LiveObject, ...]] = {}
    for key, type_name in TYPES.items():
        spec = SPECS[type_name]
        items = []
        for fields in objects[key]:
            name = str(fields[spec.identity_field])
            identity = str(uuid.uuid5(uuid.NAMESPACE_DNS, name)) if spec.identity_field == "name" else name
            items.append(LiveObject(spec, name, identity, effective(spec, fields)))
        live[type_name] = tuple(items)
    return Snapshot(objects=live)


def _naive(state: TenantState) -> float:
    """The same questions, each asked of the simulator with every object (what the index avoids)."""
    acc, inb, out = state.fields()
    start = time.perf_counter()
    for p in _probes(state):
        if p.kind == "ip":
            match_inbound(p.key, None, "relay@d0.contoso.com", acc, inb)
        elif p.kind != "certificate":
            route_outbound(p.address, acc, out)
    return time.perf_counter() - start


def measure(n: int, naive_up_to: int) -> dict[str, Any]:
    snapshot = _snapshot(_objects(n, changed=False))
    stack = load_stack_text(_stack_text(_objects(n, changed=True)), file="stacks/bench.yaml", name="bench")
    plan = compute_plan(stack, snapshot)
    start = time.perf_counter()
    impact = compute_impact(snapshot, plan)
    seconds = time.perf_counter() - start
    naive = _naive(TenantState.from_snapshot(snapshot)) * 2 if n <= naive_up_to else None  # before and after
    return {"n": n, "probes": impact.probes, "rows": len(impact.rows), "seconds": seconds, "naive": naive}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--naive-up-to", type=int, default=1000)
    args = parser.parse_args()
    print("N     | probes | rows | impact s | per connector ms | naive s")
    for n in (int(x) for x in args.sizes.split(",")):
        r = measure(n, args.naive_up_to)
        naive = f"{r['naive']:.2f}" if r["naive"] is not None else "(skipped: quadratic)"
        print(f"{r['n']:<5} | {r['probes']:>6} | {r['rows']:>4} | {r['seconds']:>7.2f}  | "
              f"{1000 * r['seconds'] / r['n']:>6.2f}           | {naive:>6}")


if __name__ == "__main__":
    main()
