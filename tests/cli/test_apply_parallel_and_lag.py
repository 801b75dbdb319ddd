"""apply with several writes in flight, and with replication lag of minutes (issue #16; issue #14 item 3).

Matrix (driven through apply_plan against the emulated tenant, the waits on a fake clock so that minutes of
lag cost no wall time; the emulator counts the lag in reads with ``read_lag_reads``):
- lag longer than the old ~12 s read-back: every create is sent before anything is read back (the run goes
  on while objects replicate), all are reported done, the final verification waits them out and says so;
- lag longer than the verification budget: the writes are still done (never "not done"), listed as not yet
  visible, and the run is a success;
- with nothing lagging, k writes cost k write requests plus one listing per type (no read per object);
- parallel writes keep the dependency order between groups (inbound, outbound, then an accepted domain made
  InternalRelay; deletes outbound first) and create no duplicate under 503/504 and dropped connections.
"""

from __future__ import annotations

from typing import Any

from o365_mailflow.apply import VERIFY_BUDGET, apply_plan
from o365_mailflow.client import RetryPolicy
from o365_mailflow.plan import compute_plan
from o365_mailflow.snapshot import take_snapshot
from o365_mailflow.stack import load_stack
from o365_mailflow.connect import open_client

from reconcile_helpers import Project

WRITES = ("New-", "Set-", "Remove-")


class FakeClock:
    """time.monotonic and time.sleep for apply: sleeping advances the clock at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _stack(inbound: int, outbound: int, *, relay_domain: bool = False) -> str:
    lines = []
    if relay_domain:
        lines += ["acceptedDomains:", "  - domainName: contoso.com", "    domainType: InternalRelay"]
    lines.append("inboundConnectors:" if inbound else "inboundConnectors: []")
    for i in range(inbound):
        lines += [f"  - name: Partner in {i:02d}", "    connectorType: Partner",
                  f"    senderDomains: [in{i}.example.com]"]
    lines.append("outboundConnectors:" if outbound else "outboundConnectors: []")
    for i in range(outbound):
        lines += [f"  - name: Partner out {i:02d}", "    connectorType: Partner",
                  f"    recipientDomains: [out{i}.example.com]"]
    if relay_domain:
        lines += ["  - name: To on-premises", "    connectorType: OnPremises", "    recipientDomains: [contoso.com]",
                  "    useMxRecord: false", "    smartHosts: [mail.contoso.com]"]
    return "\n".join(lines) + "\n"


def _client(project: Project) -> Any:
    no_wait = RetryPolicy(sleep=lambda seconds: None, base_delay=0.01, max_retries=8)
    return open_client(project.tenant.config, env=project.tenant.env, retry=no_wait)


def _apply(project: Project, body: str, clock: FakeClock, **options: Any) -> Any:
    stack = load_stack(project.write_stack(body))
    client = _client(project)
    snapshot = take_snapshot(client)
    plan = compute_plan(stack, snapshot)
    project.tenant.clear_requests()
    return apply_plan(plan, stack, client, sleep=clock.sleep, clock=clock, **options)


def _cmdlets(project: Project) -> list[str]:
    return [str(e["cmdlet"]) for e in project.tenant.requests()]


def test_minutes_of_lag_are_waited_out_at_the_end_and_every_create_is_done(project: Project) -> None:
    project.tenant.faults(read_lag_reads=12)  # the old read-back gave up after 8 reads (~12 s)
    clock = FakeClock()
    report = _apply(project, _stack(3, 2), clock)
    assert report.ok, report.failed
    assert [s.outcome.startswith("done (") for s in report.done] == [True] * 5
    assert report.unverified == []
    calls = _cmdlets(project)
    first_read = next(i for i, c in enumerate(calls) if c.startswith("Get-"))
    assert sorted(calls[:first_read]) == ["New-InboundConnector"] * 3 + ["New-OutboundConnector"] * 2
    assert sum(clock.slept) > 12 and sum(clock.slept) <= VERIFY_BUDGET
    project.tenant.clear_faults()
    assert project.run("plan", "--stack", "test", "--detailed-exitcode").exit_code == 0


def test_lag_longer_than_the_budget_leaves_the_writes_done_and_reported_as_not_yet_visible(
        project: Project) -> None:
    project.tenant.faults(read_lag_reads=100_000)
    clock = FakeClock()
    report = _apply(project, _stack(2, 1), clock)
    assert report.ok and len(report.done) == 3 and report.not_done == []
    assert sorted(s.change.name for s, _ in report.unverified) == ["Partner in 00", "Partner in 01", "Partner out 00"]
    assert all("not yet showing" in why for _, why in report.unverified)
    assert sum(clock.slept) <= VERIFY_BUDGET


def test_k_writes_cost_k_write_requests_and_one_listing_per_type(project: Project) -> None:
    report = _apply(project, _stack(6, 4), FakeClock(), parallelism=4)
    assert report.ok and report.unverified == []
    calls = _cmdlets(project)
    writes = [c for c in calls if c.startswith(WRITES)]
    reads = [c for c in calls if not c.startswith(WRITES)]
    assert len(writes) == 10
    # One listing per written type; the client lists outbound connectors twice (with test-mode ones).
    assert sorted(reads) == ["Get-InboundConnector", "Get-OutboundConnector", "Get-OutboundConnector"]


def test_parallel_writes_keep_the_dependency_order_and_make_no_duplicate_under_faults(project: Project) -> None:
    project.tenant.faults(error_rate=0.25, error_status=504, drop_rate=0.15, seed=7)
    clock = FakeClock()
    report = _apply(project, _stack(8, 5, relay_domain=True), clock, parallelism=6)
    assert report.ok, report.failed
    project.tenant.clear_faults()
    calls = [c for c in _cmdlets(project) if c.startswith(WRITES)]
    last_inbound = max(i for i, c in enumerate(calls) if c == "New-InboundConnector")
    first_outbound = min(i for i, c in enumerate(calls) if c == "New-OutboundConnector")
    last_outbound = max(i for i, c in enumerate(calls) if c == "New-OutboundConnector")
    domain = calls.index("Set-AcceptedDomain")
    assert last_inbound < first_outbound and last_outbound < domain
    admin = project.tenant.admin_client()
    for noun, count in (("InboundConnector", 8), ("OutboundConnector", 6)):
        names = [c["Name"] for c in admin.list(noun)]
        assert len(names) == len(set(names)) == count, names
    assert project.run("plan", "--stack", "test", "--detailed-exitcode").exit_code == 0

    # Removal in reverse: outbound connectors go before inbound ones.
    project.write_stack("inboundConnectors: []\noutboundConnectors: []\n", prune=True)
    stack = load_stack(project.root / "stacks" / "test.yaml")
    client = _client(project)
    snapshot = take_snapshot(client)
    project.tenant.clear_requests()
    report = apply_plan(compute_plan(stack, snapshot), stack, client, sleep=clock.sleep, clock=clock,
                        parallelism=6)
    assert report.ok, report.failed
    removes = [c for c in _cmdlets(project) if c.startswith("Remove-")]
    assert removes == ["Remove-OutboundConnector"] * 6 + ["Remove-InboundConnector"] * 8


def test_retries_and_back_off_waits_are_lines_of_their_own_with_the_reason(project: Project) -> None:
    project.write_stack(_stack(1, 0))
    project.tenant.faults(throttle_next=1, retry_after=0.2, cmdlets=["New-InboundConnector"])
    lines = project.apply().stdout.splitlines()
    retry = next(i for i, line in enumerate(lines) if line.startswith("      retry: New-InboundConnector: HTTP 429"))
    assert lines[retry + 1] == "      waiting 0.2 s before retrying"
    assert any(line.startswith("[1/1] + create InboundConnector 'Partner in 00' ... done (") for line in lines)
    assert lines[-1].startswith("Apply complete in ") and "1 object(s) changed (1 create) with 1 write(s)" in lines[-1]


def test_a_long_apply_in_a_log_counts_each_write_says_how_far_it_is_and_ends_with_a_summary(
        project: Project) -> None:
    project.write_stack(_stack(12, 8))
    lines = project.apply("--parallelism", "4").stdout.splitlines()
    numbered = [line for line in lines if line.startswith("[") and "/20] + create " in line]
    assert sorted(int(line[1:3]) for line in numbered) == list(range(1, 21))
    assert all(line.endswith(" s)") and " ... done (" in line for line in numbered)
    assert any(line.startswith("... 10/20 finished, 0:") and "elapsed" in line for line in lines)
    assert "Verified: the tenant shows all 20 write(s)." in lines
    assert lines[-1].startswith("Apply complete in ") and "20 object(s) changed (20 create)" in lines[-1]
