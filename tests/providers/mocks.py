"""Run a Pulumi program under ``pulumi.runtime.set_mocks`` and record what it registers with the engine."""

from __future__ import annotations

from typing import Any, Callable

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

TOKEN = "pulumi-python:dynamic/exo:"


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ.endswith("Connector"):
            state["guid"] = f"{args.name}-id"  # what the provider's create returns as an output
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def _plain(value: Any) -> Any:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"]
    return value


def _alias_names(request: Any) -> list[str]:
    """The old names the engine is told about: alias specs (current engines) or alias URNs (older ones)."""
    names = [a.spec.name for a in getattr(request, "aliases", ()) if a.WhichOneof("alias") == "spec"]
    names += [urn.rsplit("::", 1)[1] for a in getattr(request, "aliases", ()) for urn in [a.urn] if urn]
    names += [urn.rsplit("::", 1)[1] for urn in getattr(request, "aliasURNs", ())]
    return names


def run_program(
    monkeypatch: pytest.MonkeyPatch, stack: str, program: Callable[[], Any]
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, Any]]:
    """Run ``program`` under mocks; return {(type, name): {inputs, deps, aliases}} and the stack outputs."""
    registered: dict[tuple[str, str], dict[str, Any]] = {}
    original = pulumi_mocks.MockMonitor.RegisterResource

    def record(monitor: Any, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            inputs = {k: _plain(v) for k, v in rpc.deserialize_properties(request.object).items()}
            registered[(request.type, request.name)] = {
                "inputs": inputs,
                "deps": {d.rsplit("::", 1)[1] for d in request.dependencies},
                "aliases": _alias_names(request),
            }
        return original(monitor, request)

    monkeypatch.setattr(pulumi_mocks.MockMonitor, "RegisterResource", record)
    pulumi.runtime.set_mocks(_Mocks(), project="o365-mailflow", stack=stack, preview=False)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> Any:
        program()
        root = pulumi.runtime.settings.get_root_resource()
        stack_outputs = dict(getattr(root, "outputs", {}) or {})
        return pulumi.Output.all(**stack_outputs).apply(outputs.update)

    run()
    return registered, outputs
