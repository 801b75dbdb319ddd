"""What a plan and an apply cost as a tenant grows: API calls and seconds for N = 10, 100 and 1,000 connectors.

Why: the design promises that a plan costs O(resource types), not O(resources) — one list call per type,
following paging — where Microsoft365DSC reads each object with its own Get (and takes hours on big tenants).
For each N this creates N connectors (half inbound, half outbound) in a fresh in-process emulated tenant
(HTTPS, real MSAL token, SQLite) with the reconciler itself, then measures:

- plan: snapshot (one list per type) and compute_plan;
- no-op apply: plan, then apply_plan with nothing to do (no write);
- apply 10%: plan and apply after changing the comment of 10% of the connectors (one Set-* and one read-back
  Get-* per changed object);
- naive plan: one Get-* per declared object, as Microsoft365DSC does, and its ratio to the plan.

Run: ``.venv/bin/python benchmarks/plan_scale.py [--sizes 10,100,1000]``

Measured on the 2-core build machine (shared, so seconds are rough; calls are exact):

    N    | plan calls  s    | no-op apply  s    | apply 10%  calls  s    | naive plan  s     | naive/plan
    10   |    4       0.19  |     4       0.09  |     2        8   0.29  |    10      0.29   |   2.5x calls
    100  |    4       0.18  |     4       0.19  |    10       24   1.01  |   100      4.40   |  25x calls, 24x time
    1000 |    4       0.40  |     4       0.51  |   100      204   6.71  |  1000     40.24   | 250x calls, 100x time

(4 calls: one list per type, outbound listed twice by the client to include test-mode connectors.)
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from o365_mailflow.apply import apply_plan
from o365_mailflow.plan import compute_plan
from o365_mailflow.snapshot import take_snapshot
from o365_mailflow.stack import Stack, load_stack_text
from o365_mailflow.tenant import TenantConfig, open_client


def _stack_text(n: int, *, changed_every: int = 0) -> str:
    """A stack of n connectors; with changed_every=k, every k-th connector gets a new comment."""
    lines = ["tenant:", "  emulator: true", "inboundConnectors:"]
    half = n // 2
    for i in range(half):
        comment = "changed" if changed_every and i % changed_every == 0 else "benchmark"
        lines += [f"  - name: Bench inbound {i:05d}", "    connectorType: Partner",
                  f"    senderDomains: [partner{i}.example.com]", f"    comment: {comment}"]
    lines.append("outboundConnectors:")
    for i in range(n - half):
        comment = "changed" if changed_every and i % changed_every == 0 else "benchmark"
        lines += [f"  - name: Bench outbound {i:05d}", "    connectorType: Partner",
                  f"    recipientDomains: [partner{i}.example.com]", f"    comment: {comment}"]
    if half == 0:
        lines[lines.index("inboundConnectors:")] = "inboundConnectors: []"
    return "\n".join(lines) + "\n"


def _measure(client: Any, action: Callable[[], Any]) -> tuple[int, float, Any]:
    before = client.stats.requests
    started = time.perf_counter()
    result = action()
    return client.stats.requests - before, time.perf_counter() - started, result


def _plan_and_apply(client: Any, stack: Stack) -> tuple[Any, Any]:
    snapshot = take_snapshot(client)
    plan = compute_plan(stack, snapshot)
    report = apply_plan(plan, stack, snapshot, client, sleep=time.sleep)
    if not report.ok:
        change, error = report.failed
        raise SystemExit(f"apply failed on {change.type_name} '{change.name}': {error}")
    return plan, report


def _naive_plan(client: Any, stack: Stack) -> int:
    """One Get per declared object (the per-resource Get-TargetResource pattern); returns objects found."""
    found = 0
    for obj in stack.objects:
        client.get(obj.spec.noun, obj.name)
        found += 1
    return found


def run_size(n: int, workdir: Path) -> dict[str, Any]:
    # open_client starts an in-process emulator for this state directory (ensure_running); a fresh directory
    # per N gives a fresh tenant.
    state = workdir / f"n{n}"
    client = open_client(TenantConfig(emulator=True), state_dir=state)
    stack = load_stack_text(_stack_text(n), file=f"bench-{n}.yaml", name=f"bench-{n}")
    stack = dataclasses.replace(stack, tenant=client.config)
    client.list("AcceptedDomain")  # token and TLS session outside the timings
    create_calls, create_s, _ = _measure(client, lambda: _plan_and_apply(client, stack))
    plan_calls, plan_s, plan = _measure(client, lambda: compute_plan(stack, take_snapshot(client)))
    assert not plan.has_changes, "the tenant should match the stack after the first apply"
    noop_calls, noop_s, _ = _measure(client, lambda: _plan_and_apply(client, stack))
    changed = load_stack_text(_stack_text(n, changed_every=10), file=f"bench-{n}.yaml", name=f"bench-{n}")
    changed = dataclasses.replace(changed, tenant=client.config)
    upd_calls, upd_s, (upd_plan, _) = _measure(client, lambda: _plan_and_apply(client, changed))
    naive_calls, naive_s, _ = _measure(client, lambda: _naive_plan(client, changed))
    return {
        "n": n, "create_calls": create_calls, "create_s": create_s,
        "plan_calls": plan_calls, "plan_s": plan_s, "noop_calls": noop_calls, "noop_s": noop_s,
        "upd_objects": upd_plan.summary["update"], "upd_calls": upd_calls, "upd_s": upd_s,
        "naive_calls": naive_calls, "naive_s": naive_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated connector counts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mailflow-plan-bench-") as tmp:
        for n in sizes:
            rows.append(run_size(n, Path(tmp)))
            print(f"N={n} done", flush=True)
    head = (f"{'N':>5} | {'plan calls':>10} {'s':>6} | {'no-op apply':>11} {'s':>6} | {'apply 10%':>9} "
            f"{'calls':>6} {'s':>6} | {'naive plan':>10} {'s':>6} | {'naive/plan calls':>16} {'time':>6}")
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['n']:>5} | {r['plan_calls']:>10} {r['plan_s']:>6.2f} | {r['noop_calls']:>11} {r['noop_s']:>6.2f} | "
            f"{r['upd_objects']:>9} {r['upd_calls']:>6} {r['upd_s']:>6.2f} | {r['naive_calls']:>10} "
            f"{r['naive_s']:>6.2f} | {r['naive_calls'] / max(r['plan_calls'], 1):>15.1f}x "
            f"{r['naive_s'] / max(r['plan_s'], 1e-9):>5.1f}x"
        )
    print()
    print("calls = HTTP requests to the admin API (paging included); 'apply 10%' = objects updated, calls, seconds.")
    print("First apply (creates, setup): " + ", ".join(
        f"N={r['n']}: {r['create_calls']} calls {r['create_s']:.1f}s" for r in rows))


if __name__ == "__main__":
    main()
