"""Speak to ``python -m pulumi.dynamic`` the way the Pulumi engine does.

The engine starts the dynamic-provider host as a plugin, reads the port it prints, sends ``Configure`` with the
stack's config (keys ``<project>:<key>``, secrets wrapped as secret values), then ``Check``/``Diff``/``Create``/
``Read``/``Update``/``Delete`` with property structs whose ``__provider`` holds the provider pickled by the SDK.
A ``Host`` is one such process: one Pulumi command (preview, up, refresh, destroy) is one host process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import grpc
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2
from pulumi.runtime.proto.provider_pb2_grpc import ResourceProviderStub

from o365_mailflow import providers
from o365_mailflow.specs import SPECS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "o365-mailflow"
# One provider class per spec, by its conventional name (not a hand-kept list of the types).
PROVIDERS = {name: getattr(providers, f"{name}Provider") for name in SPECS}
# The SDK's own serialization, as pulumi.dynamic.Resource.__init__ does it.
SERIALIZED = {name: serialize_provider(cls()) for name, cls in PROVIDERS.items()}
UNKNOWN = rpc.UNKNOWN


def urn(type_name: str, name: str, stack: str = "test") -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::pulumi-python:dynamic/exo:{type_name}::{name}"


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(dict(props), {}))
    finally:
        loop.close()


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True) or {})


def _secret(value: str) -> dict[str, Any]:
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


@dataclass
class Diff:
    changes: int
    replaces: list[str]
    delete_before_replace: bool

    @property
    def some(self) -> bool:
        return self.changes == provider_pb2.DiffResponse.DIFF_SOME

    @property
    def none(self) -> bool:
        return self.changes == provider_pb2.DiffResponse.DIFF_NONE


class Host:
    """One ``python -u -m pulumi.dynamic`` process and a gRPC stub to it."""

    def __init__(self, cwd: Path = ROOT, env: Mapping[str, str] | None = None) -> None:
        full_env = dict(os.environ)
        full_env["PULUMI_PROJECT"] = PROJECT
        full_env.update(env or {})
        # stderr goes to a file, not a pipe: an undrained pipe could block a chatty host.
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            cwd=str(cwd), env=full_env, stdout=subprocess.PIPE, stderr=self.stderr,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.proc.kill()
            self.stderr.seek(0)
            raise RuntimeError(f"the dynamic provider host did not print a port: {line!r} "
                               f"{self.stderr.read().decode(errors='replace')}")
        self.port = int(line)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = ResourceProviderStub(self.channel)
        # Every request and reply as the bytes on the wire (method, request, reply), for the secrecy test.
        self.transcript: list[tuple[str, bytes, bytes]] = []

    def _call(self, method: str, request: Any) -> Any:
        reply = getattr(self.stub, method)(request)
        self.transcript.append((method, request.SerializeToString(), reply.SerializeToString()))
        return reply

    def close(self) -> None:
        self.channel.close()
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stderr.close()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ RPCs

    def configure(self, config: Mapping[str, str], secret_keys: tuple[str, ...] = ()) -> None:
        args = {f"{PROJECT}:{k}": (_secret(v) if k in secret_keys else v) for k, v in config.items()}
        variables = {f"{PROJECT}:{k}": v for k, v in config.items()}
        self._call("Configure", provider_pb2.ConfigureRequest(
            variables=variables, args=to_struct(args), acceptSecrets=True, acceptResources=True))

    def check(self, type_name: str, name: str, news: Mapping[str, Any], olds: Mapping[str, Any] | None = None
              ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        news = {**news, "__provider": SERIALIZED[type_name]}
        reply = self._call("Check", provider_pb2.CheckRequest(
            urn=urn(type_name, name), olds=to_struct(olds or {}), news=to_struct(news), name=name,
            type=f"pulumi-python:dynamic/exo:{type_name}"))
        return from_struct(reply.inputs), [(f.property, f.reason) for f in reply.failures]

    def diff(self, type_name: str, name: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Diff:
        reply = self._call("Diff", provider_pb2.DiffRequest(
            id=id_, urn=urn(type_name, name), olds=to_struct(olds), news=to_struct(news)))
        return Diff(reply.changes, list(reply.replaces), reply.deleteBeforeReplace)

    def create(self, type_name: str, name: str, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        reply = self._call("Create", provider_pb2.CreateRequest(urn=urn(type_name, name), properties=to_struct(props)))
        return reply.id, from_struct(reply.properties)

    def read(self, type_name: str, name: str, id_: str, outs: Mapping[str, Any], inputs: Mapping[str, Any]
             ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        reply = self._call("Read", provider_pb2.ReadRequest(
            id=id_, urn=urn(type_name, name), properties=to_struct(outs), inputs=to_struct(inputs)))
        return reply.id, from_struct(reply.properties), from_struct(reply.inputs)

    def update(self, type_name: str, name: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]
               ) -> dict[str, Any]:
        reply = self._call("Update", provider_pb2.UpdateRequest(
            id=id_, urn=urn(type_name, name), olds=to_struct(olds), news=to_struct(news)))
        return from_struct(reply.properties)

    def delete(self, type_name: str, name: str, id_: str, outs: Mapping[str, Any]) -> None:
        self._call("Delete", provider_pb2.DeleteRequest(id=id_, urn=urn(type_name, name), properties=to_struct(outs)))


INBOUND = "InboundConnector"
OUTBOUND = "OutboundConnector"
DOMAIN = "AcceptedDomain"

RELAY = {
    "name": "Relay from office printers",
    "connectorType": "OnPremises",
    "senderDomains": ["*"],
    "senderIpAddresses": ["203.0.113.10", "198.51.100.0/28"],
    "comment": "printers and apps",
}
TO_ONPREM = {
    "name": "To on-premises Exchange",
    "connectorType": "OnPremises",
    "recipientDomains": ["contoso.com"],
    "useMxRecord": False,
    "smartHosts": ["mail.contoso.com"],
    "tlsSettings": "DomainValidation",
    "tlsDomain": "mail.contoso.com",
}
CONTOSO = {"domainName": "contoso.com", "domainType": "InternalRelay"}



def provider_config(tenant: Any) -> dict[str, str]:
    """The stack config a user would set for this tenant (``pulumi config set [--secret] o365-mailflow:...``)."""
    cfg = tenant.config
    return {
        "tenantId": tenant.tenant_id,
        "initialDomain": tenant.initial_domain,
        "clientId": tenant.client_id,
        "clientSecret": tenant.client_secret,
        "endpoint": cfg.endpoint,
        "authority": cfg.authority,
        "scope": cfg.scope,
        "caFile": cfg.ca_file,
    }


@dataclass
class Res:
    """One resource as the engine's state holds it."""

    type_name: str
    name: str
    program: dict[str, Any]  # what the program declares
    id: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


class Pulumi:
    """Drives host processes like the engine drives ``pulumi-resource-pulumi-python``."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = config
        self.hosts: list[Host] = []
        self._restart = False

    def host(self, *, fresh: bool = False) -> Host:
        """The host process for the next command. Consecutive commands share one (our own writes refresh its
        snapshot); ``restart()`` after a change made outside Pulumi, as a new ``pulumi`` run would."""
        if fresh or not self.hosts or self._restart:
            host = Host()
            host.configure(self.config, secret_keys=("clientSecret", "certificatePassword"))
            self.hosts.append(host)
            self._restart = False
        return self.hosts[-1]

    def restart(self) -> None:
        """The next command runs in a new host process (a new ``pulumi`` command after an out-of-band change)."""
        self._restart = True

    def check(self, host: Host, res: Res) -> dict[str, Any]:
        inputs, failures = host.check(res.type_name, res.name, res.program, res.inputs or None)
        assert failures == [], failures
        return inputs

    def preview(self, res: Res) -> Any:
        host = self.host()
        inputs = self.check(host, res)
        return None if res.id is None else host.diff(res.type_name, res.name, res.id, res.outputs, inputs)

    def up(self, *resources: Res, host: Host | None = None) -> list[str]:
        """Create or update each resource; returns what happened per resource."""
        host = host or self.host()
        done = []
        for res in resources:
            inputs = self.check(host, res)
            if res.id is None:
                res.id, res.outputs = host.create(res.type_name, res.name, inputs)
                done.append("create")
            else:
                diff = host.diff(res.type_name, res.name, res.id, res.outputs, inputs)
                assert diff.replaces == [], diff
                if diff.some:
                    res.outputs = host.update(res.type_name, res.name, res.id, res.outputs, inputs)
                    done.append("update")
                else:
                    done.append("same")
            res.inputs = inputs
        return done

    def refresh(self, res: Res) -> None:
        host = self.host()
        new_id, res.outputs, inputs = host.read(res.type_name, res.name, res.id or "", res.outputs, res.inputs)
        res.id = new_id or None
        if inputs:
            res.inputs = inputs

    def destroy(self, res: Res) -> None:
        self.host().delete(res.type_name, res.name, res.id or "", res.outputs)

    def close(self) -> None:
        for host in self.hosts:
            host.close()


def writes(tenant: Any) -> list[dict[str, Any]]:
    return [e for e in tenant.requests() if not str(e.get("cmdlet", "")).startswith("Get-")]


def list_calls(tenant: Any) -> dict[str, int]:
    """List requests per type (Get-* without Identity). The client lists outbound connectors with a second,
    test-mode request (exo-cmdlets §5), counted apart: each distinct list request must be made once."""
    counts: dict[str, int] = {}
    for e in tenant.requests():
        params = e.get("parameters") or {}
        if str(e.get("cmdlet", "")).startswith("Get-") and "Identity" not in params and not e.get("page"):
            key = e["cmdlet"] + (" -IncludeTestModeConnectors" if params.get("IncludeTestModeConnectors") else "")
            counts[key] = counts.get(key, 0) + 1
    return counts


def live(tenant: Any, noun: str, identity: str) -> dict[str, Any]:
    response = tenant.invoke(f"Get-{noun}", {"Identity": identity})
    assert response.status_code == 200, response.text
    return dict(response.json()["value"][0])


def exists(tenant: Any, noun: str, identity: str) -> bool:
    response = tenant.invoke(f"Get-{noun}", {"Identity": identity})
    return response.status_code == 200 and bool(response.json().get("value"))


