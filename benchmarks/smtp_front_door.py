"""200 messages from 20 concurrent SMTP clients through the emulated tenant's front door, every one accounted for.

Why: the front door is how tests and users rehearse relaying; under concurrency it must neither lose a message nor
mix up whose connection is whose (each client declares its own source IP with XCLIENT). The tenant gets the dev
stack's connectors (IP relay, an InternalRelay domain with an on-premises smart host mapped to a local sink);
the clients send a mix that must be delivered to a mailbox, relayed to the internet, relayed to the smart host,
or refused (ATTR36, TenantAttribution, Directory-Based Edge Blocking). Afterwards the client-side answers, the
front door's record (``GET /_emulator/smtp/messages``) and the sink are reconciled message by message.

Run: ``.venv/bin/python benchmarks/smtp_front_door.py [--messages 200] [--clients 20]``
"""

from __future__ import annotations

import argparse
import collections
import smtplib
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller

from o365_mailflow.emulator import EmulatorServer

# (source IP, sender, recipient, expected front-door outcome, expected enhanced status of the final reply)
MIX = [
    ("203.0.113.10", "scanner@contoso.com", "alex@contoso.com", "mailbox", "2.6.0"),
    ("203.0.113.10", "scanner@contoso.com", "friend@example.net", "internet", "2.6.0"),
    ("198.51.100.3", "erp@contoso.com", "onprem-user@contoso.com", "connector", "2.6.0"),
    ("203.0.113.11", "scanner@example.org", "friend@example.net", "refused", "5.7.64"),
    ("198.51.100.99", "scanner@contoso.com", "friend@example.net", "refused", "5.7.64"),
    ("198.51.100.99", "someone@example.org", "nobody@fabrikam.com", "refused", "5.4.1"),
]


def _invoke(base: str, ca: str, tenant: dict[str, Any], cmdlet: str, params: dict[str, Any]) -> None:
    token = requests.post(f"{base}/{tenant['tenant_id']}/oauth2/v2.0/token", verify=ca, timeout=30, data={
        "grant_type": "client_credentials", "client_id": tenant["client_id"],
        "client_secret": tenant["client_secret"], "scope": "https://outlook.office365.com/.default"}).json()
    response = requests.post(f"{base}/adminapi/beta/{tenant['tenant_id']}/InvokeCommand", verify=ca, timeout=30,
                             headers={"Authorization": f"Bearer {token['access_token']}"},
                             json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}})
    response.raise_for_status()


def _configure(server: EmulatorServer) -> None:
    base, ca, tenant = server.base_url, str(server.ca_path), server.default_tenant()
    _invoke(base, ca, tenant, "Set-AcceptedDomain", {"Identity": "contoso.com", "DomainType": "InternalRelay"})
    _invoke(base, ca, tenant, "New-InboundConnector", {
        "Name": "Printers", "ConnectorType": "OnPremises", "SenderDomains": ["*"],
        "SenderIPAddresses": ["203.0.113.10", "203.0.113.11", "198.51.100.0/28"]})
    _invoke(base, ca, tenant, "New-OutboundConnector", {
        "Name": "To on-premises", "ConnectorType": "OnPremises", "RecipientDomains": ["contoso.com"],
        "UseMXRecord": False, "SmartHosts": ["mail.contoso.com"]})


class _Sink:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.extend(envelope.rcpt_tos)
        return "250 2.0.0 Queued on-premises"


class _SinkController(Controller):
    def __init__(self, handler: Any, sock: socket.socket) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1])

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


def _send(host: str, port: int, case: tuple[str, str, str, str, str], n: int) -> tuple[int, str, float]:
    ip, sender, recipient, _, _ = case
    started = time.perf_counter()
    with smtplib.SMTP(host, port, timeout=60) as client:
        client.ehlo("bench.contoso.test")
        client.docmd("XCLIENT", f"ADDR={ip}")
        client.mail(sender)
        code, text = client.rcpt(recipient)
        if code == 250:
            code, text = client.data(f"From: {sender}\r\nTo: {recipient}\r\nSubject: bench {n}\r\n\r\n{n}\r\n")
    return code, text.decode().split()[0], time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailflow-bench-") as tmp:
        server = EmulatorServer(Path(tmp)).start()
        sink = _Sink()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        controller = _SinkController(sink, sock)
        controller.start()
        try:
            _configure(server)
            door = server.front_door
            assert door is not None
            door.set_smart_hosts(None, {"mail.contoso.com": f"127.0.0.1:{sock.getsockname()[1]}"})
            cases = [MIX[n % len(MIX)] for n in range(args.messages)]
            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                answers = list(pool.map(lambda nc: _send(door.host, door.port, nc[1], nc[0]), enumerate(cases)))
            elapsed = time.perf_counter() - started
            record = requests.get(f"{server.base_url}/_emulator/smtp/messages", verify=str(server.ca_path),
                                  timeout=30).json()["value"]
        finally:
            controller.stop()
            server.stop()
    return _report(cases, answers, record, sink.received, elapsed, args.clients)


def _report(cases: list[tuple[str, ...]], answers: list[tuple[int, str, float]], record: list[dict[str, Any]],
            sink: list[str], elapsed: float, clients: int) -> int:
    wrong = [(c, a) for c, a in zip(cases, answers) if a[1] != c[4]]
    outcomes = collections.Counter(r["recipients"][-1]["outcome"] for r in record if r["recipients"])
    expected = collections.Counter(c[3] for c in cases)
    to_sink = sum(1 for c in cases if c[3] == "connector")
    latencies = sorted(a[2] for a in answers)
    print(f"messages sent:        {len(cases)} from {clients} concurrent clients in {elapsed:.2f} s "
          f"({len(cases) / elapsed:.0f} msg/s)")
    print(f"latency per message:  p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    print(f"front door recorded:  {len(record)} transactions; outcomes {dict(sorted(outcomes.items()))}")
    print(f"expected outcomes:    {dict(sorted(expected.items()))}")
    print(f"smart-host sink got:  {len(sink)} of {to_sink} relayed on-premises")
    print(f"unexpected replies:   {len(wrong)}")
    lost = len(cases) - len(record)
    ok = not wrong and outcomes == expected and len(sink) == to_sink and lost == 0
    print(f"accounted for:        {'all' if ok else 'NOT all'} ({lost} lost)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
