"""How many list calls a ``pulumi preview`` of 200 resources costs through the dynamic-provider host.

Why: the engine calls ``Diff`` once per resource, from several threads; if each diff listed the tenant, a
preview of N resources would cost N list calls and trip Exchange Online's throttling. The providers share one
snapshot per host process, so the promise is at most one list call per resource type (the client lists outbound
connectors with a second, test-mode request, exo-cmdlets §5: that pair is one list of the type).

What it does: an in-process emulator (HTTPS, real MSAL token) holds 100 inbound and 97 outbound connectors and
3 accepted domains; ``python -m pulumi.dynamic`` is started as the engine starts it, configured through
``Configure``, and sent ``Check`` + ``Diff`` for all 200 resources from 8 threads, as a preview of an
unchanged stack. The emulator's request log gives the calls.

Second part (``--up``, on by default): ``pulumi up`` of the same 200 resources into an empty tenant, once with
the real Pulumi CLI (the ``pulumi`` on PATH, else the one ``.ci/pulumi-cli`` builds) and once through the
gRPC-only host (Check + Create per resource, as the engine would send them), each against its own fresh
tenant: list calls per type from the emulator's request log (target: one, not one per write), writes, and
wall time of each, with their ratio.

Run: ``.venv/bin/python benchmarks/pulumi_preview.py [--inbound 100 --outbound 97] [--no-up]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import requests
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2
from pulumi.runtime.proto.provider_pb2_grpc import ResourceProviderStub

from o365_mailflow.providers import AcceptedDomainProvider, InboundConnectorProvider, OutboundConnectorProvider

PROJECT = "o365-mailflow"
PROVIDERS = {
    "InboundConnector": serialize_provider(InboundConnectorProvider()),
    "OutboundConnector": serialize_provider(OutboundConnectorProvider()),
    "AcceptedDomain": serialize_provider(AcceptedDomainProvider()),
}


def _struct(props: dict[str, Any]) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def _inbound(i: int) -> dict[str, Any]:
    return {"name": f"Bench inbound {i:03d}", "connectorType": "Partner", "senderDomains": [f"partner{i}.example.com"]}


def _outbound(i: int) -> dict[str, Any]:
    return {"name": f"Bench outbound {i:03d}", "connectorType": "Partner", "recipientDomains": [f"dest{i}.example.com"],
            "useMxRecord": False, "smartHosts": [f"smtp{i}.example.com"]}


def _fill(client: Any, inbound: int, outbound: int) -> dict[str, dict[str, str]]:
    """Create the connectors directly (not through Pulumi) and return name -> Guid per type."""
    from o365_mailflow.specs import INBOUND, OUTBOUND, to_parameters

    ids: dict[str, dict[str, str]] = {"InboundConnector": {}, "OutboundConnector": {}}
    for i in range(inbound):
        result = client.new("InboundConnector", to_parameters(INBOUND, _inbound(i), create=True))
        ids["InboundConnector"][_inbound(i)["name"]] = result.values[0]["Guid"]
    for i in range(outbound):
        result = client.new("OutboundConnector", to_parameters(OUTBOUND, _outbound(i), create=True))
        ids["OutboundConnector"][_outbound(i)["name"]] = result.values[0]["Guid"]
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbound", type=int, default=100)
    parser.add_argument("--outbound", type=int, default=97)
    parser.add_argument("--threads", type=int, default=8, help="concurrent engine steps")
    parser.add_argument("--no-up", dest="up", action="store_false", help="skip the pulumi up comparison")
    args = parser.parse_args()
    from o365_mailflow.credentials import ClientSecret
    from o365_mailflow.emulator import (
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_INITIAL_DOMAIN,
        DEFAULT_TENANT_ID,
        EmulatorServer,
    )
    from o365_mailflow.client import ExoClient
    from o365_mailflow.tenant import TenantConfig

    with tempfile.TemporaryDirectory(prefix="mailflow-bench-") as tmp:
        server = EmulatorServer(Path(tmp) / "emulator").start()
        host = None
        try:
            config = {
                "tenantId": DEFAULT_TENANT_ID, "initialDomain": DEFAULT_INITIAL_DOMAIN, "endpoint": server.base_url,
                "authority": server.base_url, "scope": f"{server.base_url}/.default", "caFile": str(server.ca_path),
                "clientId": DEFAULT_CLIENT_ID,
            }
            tenant = TenantConfig(tenant_id=DEFAULT_TENANT_ID, initial_domain=DEFAULT_INITIAL_DOMAIN,
                                  endpoint=server.base_url, authority=server.base_url, scope=config["scope"],
                                  ca_file=str(server.ca_path))
            client = ExoClient(tenant, ClientSecret(DEFAULT_CLIENT_ID, str(DEFAULT_CLIENT_SECRET)))
            ids = _fill(client, args.inbound, args.outbound)
            resources: list[tuple[str, str, dict[str, Any]]] = []
            for i in range(args.inbound):
                resources.append(("InboundConnector", ids["InboundConnector"][_inbound(i)["name"]], _inbound(i)))
            for i in range(args.outbound):
                resources.append(("OutboundConnector", ids["OutboundConnector"][_outbound(i)["name"]], _outbound(i)))
            for domain in ("contoso.com", "sales.contoso.com", "fabrikam.com"):
                resources.append(("AcceptedDomain", domain, {"domainName": domain, "domainType": "Authoritative"}))
            requests.delete(f"{server.base_url}/_emulator/requests", verify=str(server.ca_path), timeout=30)

            env = dict(os.environ, PULUMI_PROJECT=PROJECT)
            started = time.perf_counter()
            host = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.dynamic"], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert host.stdout is not None
            port = int(host.stdout.readline().decode().strip())
            stub = ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
            args_cfg = {f"{PROJECT}:{k}": v for k, v in config.items()}
            args_cfg[f"{PROJECT}:clientSecret"] = {rpc._special_sig_key: rpc._special_secret_sig,
                                                   "value": str(DEFAULT_CLIENT_SECRET)}
            stub.Configure(provider_pb2.ConfigureRequest(args=_struct(args_cfg), acceptSecrets=True))

            def preview_one(item: tuple[str, str, dict[str, Any]]) -> int:
                type_name, id_, program = item
                urn = f"urn:pulumi:bench::{PROJECT}::pulumi-python:dynamic/exo:{type_name}::{id_}"
                news = _struct({**program, "__provider": PROVIDERS[type_name]})
                checked = stub.Check(provider_pb2.CheckRequest(urn=urn, olds=news, news=news))
                assert not checked.failures, checked.failures
                diff = stub.Diff(provider_pb2.DiffRequest(id=id_, urn=urn, olds=checked.inputs, news=checked.inputs))
                return int(diff.changes)

            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                outcomes = Counter(pool.map(preview_one, resources))
            elapsed = time.perf_counter() - started

            log = requests.get(f"{server.base_url}/_emulator/requests", verify=str(server.ca_path),
                               timeout=30).json()["value"]
            lists: Counter[str] = Counter()
            for entry in log:
                params = entry.get("parameters") or {}
                if entry["cmdlet"].startswith("Get-") and "Identity" not in params and not entry.get("page"):
                    lists[entry["cmdlet"] + (" (test mode)" if params.get("IncludeTestModeConnectors") else "")] += 1
            names = {provider_pb2.DiffResponse.DIFF_NONE: "no change", provider_pb2.DiffResponse.DIFF_SOME: "change",
                     provider_pb2.DiffResponse.DIFF_UNKNOWN: "unknown"}
            print(f"preview of {len(resources)} resources through python -m pulumi.dynamic "
                  f"({args.threads} concurrent steps): {elapsed:.1f} s")
            print("  diff results: " + ", ".join(f"{names[k]} {v}" for k, v in sorted(outcomes.items())))
            print(f"  HTTP requests to the tenant: {len(log)} (pages included)")
            for cmdlet, count in sorted(lists.items()):
                print(f"  list calls {cmdlet}: {count}")
            per_type = Counter(c.split(" ")[0] for c in lists)
            worst = max(lists.values()) if lists else 0
            print(f"  list calls per resource type (max): {worst}; types listed: {len(per_type)}")
            if worst > 1:
                raise SystemExit("FAIL: more than one list call per resource type")
            if args.up:
                _compare_up(server, args.inbound, args.outbound, args.threads)
        finally:
            if host is not None:
                host.kill()
                host.wait()
            server.stop()


# --------------------------------------------------------------------------------------------- pulumi up


def _fresh_tenant(server: Any) -> dict[str, Any]:
    import uuid

    tenant_id = str(uuid.uuid4())
    body = {"tenant_id": tenant_id, "initial_domain": f"t{tenant_id.replace('-', '')[:12]}.onmicrosoft.com",
            "verified_domains": ["contoso.com", "sales.contoso.com", "fabrikam.com"],
            "apps": [{"client_secret": True}]}
    response = requests.post(f"{server.base_url}/_emulator/tenants", json=body, verify=str(server.ca_path),
                             timeout=30)
    response.raise_for_status()
    data = response.json()
    app = data["apps"][0]
    return {"tenantId": data["tenant_id"], "initialDomain": data["initial_domain"], "clientId": app["client_id"],
            "clientSecret": app["client_secret"], "endpoint": server.base_url, "authority": server.base_url,
            "scope": "https://outlook.office365.com/.default", "caFile": str(server.ca_path)}


def _stack_yaml(tenant_id: str, inbound: int, outbound: int) -> str:
    import json

    lines = [f"tenant:\n  id: {tenant_id}", "acceptedDomains:"]
    lines += [f"  - domainName: {d}\n    domainType: Authoritative"
              for d in ("contoso.com", "sales.contoso.com", "fabrikam.com")]
    lines.append("inboundConnectors:")
    lines += ["  - " + json.dumps(_inbound(i)) for i in range(inbound)]
    lines.append("outboundConnectors:")
    lines += ["  - " + json.dumps(_outbound(i)) for i in range(outbound)]
    return "\n".join(lines) + "\n"


def _calls(server: Any, tenant_id: str) -> tuple[Counter[str], int]:
    log = requests.get(f"{server.base_url}/_emulator/requests", params={"tenant": tenant_id},
                       verify=str(server.ca_path), timeout=30).json()["value"]
    lists: Counter[str] = Counter()
    for entry in log:
        params = entry.get("parameters") or {}
        if entry["cmdlet"].startswith("Get-") and "Identity" not in params and not entry.get("page"):
            lists[entry["cmdlet"] + (" (test mode)" if params.get("IncludeTestModeConnectors") else "")] += 1
    writes = sum(1 for e in log if not e["cmdlet"].startswith("Get-"))
    return lists, writes


def _pulumi_bin() -> str | None:
    import shutil

    found = shutil.which("pulumi")
    if found:
        return str(Path(found).parent)
    script = Path(__file__).resolve().parents[1] / ".ci" / "pulumi-cli"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else None


def _real_cli_up(server: Any, inbound: int, outbound: int) -> tuple[float, Counter[str], int] | None:
    bin_dir = _pulumi_bin()
    if bin_dir is None:
        print("pulumi up with the real CLI: skipped (no pulumi on PATH and .ci/pulumi-cli could not build one)")
        return None
    cfg = _fresh_tenant(server)
    with tempfile.TemporaryDirectory(prefix="mailflow-bench-pulumi-") as tmp:
        root = Path(tmp) / "project"
        (root / "stacks").mkdir(parents=True)
        repo = Path(__file__).resolve().parents[1]
        (root / "__main__.py").write_text((repo / "__main__.py").read_text())
        (root / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime:\n  name: python\n  options:\n"
                                          f"    toolchain: pip\n    virtualenv: {sys.prefix}\n")
        (root / "stacks" / "bench.yaml").write_text(_stack_yaml(cfg["tenantId"], inbound, outbound))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "AZURE_"))}
        env.update({"PATH": os.pathsep.join([bin_dir, str(Path(sys.executable).parent), env.get("PATH", "")]),
                    "PULUMI_HOME": f"{tmp}/home", "PULUMI_BACKEND_URL": f"file://{tmp}",
                    "PULUMI_CONFIG_PASSPHRASE": "bench", "PULUMI_SKIP_UPDATE_CHECK": "true",
                    "MAILFLOW_PULUMI_PYTHON": sys.executable})

        def run(*cmd: str) -> None:
            subprocess.run(["pulumi", cmd[0], "--non-interactive", *cmd[1:]], cwd=root, env=env, check=True,
                           capture_output=True, text=True)

        run("stack", "init", "bench")
        for key, value in cfg.items():
            run("config", "set", f"{PROJECT}:{key}", *(["--secret"] if key == "clientSecret" else []), "--", value)
        started = time.perf_counter()
        run("up", "--yes", "--skip-preview")
        elapsed = time.perf_counter() - started
    lists, writes = _calls(server, cfg["tenantId"])
    return elapsed, lists, writes


def _grpc_up(server: Any, inbound: int, outbound: int, threads: int) -> tuple[float, Counter[str], int]:
    cfg = _fresh_tenant(server)
    resources = [("AcceptedDomain", {"domainName": d, "domainType": "Authoritative"})
                 for d in ("contoso.com", "sales.contoso.com", "fabrikam.com")]
    resources += [("InboundConnector", _inbound(i)) for i in range(inbound)]
    resources += [("OutboundConnector", _outbound(i)) for i in range(outbound)]
    env = dict(os.environ, PULUMI_PROJECT=PROJECT)
    started = time.perf_counter()
    host = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.dynamic"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline().decode().strip())
        stub = ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        args_cfg: dict[str, Any] = {f"{PROJECT}:{k}": v for k, v in cfg.items()}
        args_cfg[f"{PROJECT}:clientSecret"] = {rpc._special_sig_key: rpc._special_secret_sig,
                                               "value": cfg["clientSecret"]}
        stub.Configure(provider_pb2.ConfigureRequest(args=_struct(args_cfg), acceptSecrets=True))

        def create_one(item: tuple[str, dict[str, Any]]) -> None:
            type_name, program = item
            urn = f"urn:pulumi:bench::{PROJECT}::pulumi-python:dynamic/exo:{type_name}::{program.get('name')}"
            news = _struct({**program, "__provider": PROVIDERS[type_name]})
            checked = stub.Check(provider_pb2.CheckRequest(urn=urn, olds=_struct({}), news=news))
            assert not checked.failures, checked.failures
            stub.Create(provider_pb2.CreateRequest(urn=urn, properties=checked.inputs))

        for item in resources[:3]:  # the connectors depend on the domains, as in the program
            create_one(item)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(create_one, resources[3:]))
        elapsed = time.perf_counter() - started
    finally:
        host.kill()
        host.wait()
    lists, writes = _calls(server, cfg["tenantId"])
    return elapsed, lists, writes


def _compare_up(server: Any, inbound: int, outbound: int, threads: int) -> None:
    total = inbound + outbound + 3
    grpc_time, grpc_lists, grpc_writes = _grpc_up(server, inbound, outbound, threads)
    print(f"\npulumi up of {total} resources through the gRPC-only host ({threads} concurrent steps): "
          f"{grpc_time:.1f} s, {grpc_writes} writes")
    for cmdlet, count in sorted(grpc_lists.items()):
        print(f"  list calls {cmdlet}: {count}")
    real = _real_cli_up(server, inbound, outbound)
    if real is None:
        return
    real_time, real_lists, real_writes = real
    print(f"pulumi up of {total} resources with the real Pulumi CLI: {real_time:.1f} s, {real_writes} writes")
    for cmdlet, count in sorted(real_lists.items()):
        print(f"  list calls {cmdlet}: {count}")
    print(f"  real CLI / gRPC-only host wall time: {real_time / grpc_time:.2f}x")
    worst = max([*grpc_lists.values(), *real_lists.values()] or [0])
    if worst > 1:
        raise SystemExit("FAIL: pulumi up listed a type more than once")


if __name__ == "__main__":
    main()
