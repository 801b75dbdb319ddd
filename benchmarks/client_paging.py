"""How many calls and seconds the client needs to list 1,000 inbound connectors at page size 1,000 and 100.

Why: the design promises that reading a tenant costs O(resource types), not O(resources); this shows what
one list call of a large tenant costs in HTTP requests once paging is involved. It runs an in-process
emulator in a temporary directory (HTTPS, real MSAL token), so the figures include TLS and JSON costs but no
real network latency.

Run: ``.venv/bin/python benchmarks/client_paging.py [--count 1000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from o365_mailflow.client import ExoClient
from o365_mailflow.connect import open_client
from o365_mailflow.tenant import TenantConfig


def _fill(client: ExoClient, count: int) -> None:
    existing = len(client.invoke("Get-InboundConnector", {"ResultSize": "Unlimited"}).values)
    for i in range(existing, count):
        client.new(
            "InboundConnector",
            {
                "Name": f"Bench inbound {i:05d}",
                "ConnectorType": "Partner",
                "SenderDomains": [f"partner{i}.example.com"],
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="connectors to create and list")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailflow-bench-") as tmp:
        # open_client starts an in-process emulator for this state directory (ensure_running) and signs in as
        # its well-known app; later calls with the same directory reuse that emulator.
        emulated = TenantConfig(emulator=True)
        state = Path(tmp) / "emulator"
        client = open_client(emulated, state_dir=state)
        started = time.perf_counter()
        _fill(client, args.count)
        print(f"created {args.count} inbound connectors in {time.perf_counter() - started:.1f}s (setup)")
        for page_size in (1000, 100):
            client = open_client(emulated, state_dir=state)
            client.invoke("Get-AcceptedDomain")  # token and TLS connection outside the timing
            before = client.stats.requests
            started = time.perf_counter()
            result = client.invoke("Get-InboundConnector", {"ResultSize": "Unlimited"}, page_size=page_size)
            seconds = time.perf_counter() - started
            calls = client.stats.requests - before
            print(
                f"page size {page_size:>4}: listed {len(result.values)} connectors "
                f"in {calls} calls, {seconds:.2f}s"
            )


if __name__ == "__main__":
    main()
