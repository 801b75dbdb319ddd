"""Pulumi resources for Exchange Online mail flow, usable from any Pulumi Python program.

Each resource has its own type token (``pulumi-python:dynamic/exo:InboundConnector`` ...) instead of the
generic ``pulumi-python:dynamic:Resource``, so previews and state name what they manage. The ``Args`` classes
are generated from the spec tables in :mod:`o365_mailflow.specs` (snake_case attributes for the camelCase
fields, plus ``adopt``), so a field added to a table is an argument here without another edit.

Example::

    from o365_mailflow.providers import InboundConnector, InboundConnectorArgs

    relay = InboundConnector("relay", InboundConnectorArgs(
        name="Contoso relay", connector_type="OnPremises", sender_domains=["*"],
        sender_ip_addresses=["203.0.113.10"]))
    pulumi.export("relayGuid", relay.guid)

The stack-file form (a mapping with the camelCase keys of ``stacks/<stack>.yaml``) is accepted too.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping, Optional, Sequence

import pulumi
from pulumi.dynamic import Resource

from ..specs import ACCEPTED_DOMAIN, INBOUND, META_KEYS, OUTBOUND, UNSET, Bool, ListOf, Mode, ResourceSpec
from ..pulumi_plan import IGNORE_KEY, NULLS_KEY, REPLACE_KEY
from .base import (
    PROVIDER_KEY,
    AcceptedDomainProvider,
    InboundConnectorProvider,
    MailflowProvider,
    OutboundConnectorProvider,
)

__all__ = [
    "TYPE_MODULE",
    "InboundConnector",
    "InboundConnectorArgs",
    "OutboundConnector",
    "OutboundConnectorArgs",
    "AcceptedDomain",
    "AcceptedDomainArgs",
    "RESOURCE_CLASSES",
    "snake_case",
    "args_class",
]

TYPE_MODULE = "exo"  # type tokens: pulumi-python:dynamic/exo:<TypeName>


def snake_case(name: str) -> str:
    """``senderIpAddresses`` -> ``sender_ip_addresses``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _declarable(spec: ResourceSpec) -> list[str]:
    return [f.name for f in spec.fields if f.mode is not Mode.READ_ONLY or f.name == spec.identity_field]


_INPUT: Any = pulumi.Input  # a Union alias, subscripted at run time to build the Args annotations


def _input_type(spec: ResourceSpec, name: str) -> Any:
    """The Python annotation of one argument, from the field's value kind (the stack reference has the rest)."""
    if name in META_KEYS:
        return Optional[_INPUT[bool]]
    kind = spec.field(name).kind
    if isinstance(kind, ListOf):
        return Optional[_INPUT[Sequence[_INPUT[str]]]]
    if isinstance(kind, Bool):
        return Optional[_INPUT[bool]]
    return Optional[_INPUT[str]]


def args_class(spec: ResourceSpec) -> type:
    """A frozen dataclass with one optional argument per declarable field of ``spec``, plus the meta keys.

    An argument left out is not declared (not managed); ``None`` is a declared null (e.g. ``tls_settings=None``
    for opportunistic TLS), so the "not given" default is the specs' ``UNSET`` marker.
    """
    names = _declarable(spec) + list(META_KEYS)
    by_snake = {snake_case(n): n for n in names}
    types = {snake: _input_type(spec, camel) for snake, camel in by_snake.items()}
    cls = dataclasses.make_dataclass(
        f"{spec.type_name}Args",
        [(snake, types[snake], dataclasses.field(default=UNSET)) for snake in by_snake],
        frozen=True,
        kw_only=True,
        namespace={
            "FIELDS": dict(by_snake),
            "to_inputs": lambda self: {
                camel: getattr(self, snake) for snake, camel in by_snake.items() if getattr(self, snake) is not UNSET
            },
            "__doc__": f"Inputs of a {spec.type_name}: " + ", ".join(by_snake) + " (see docs/stack-reference.md).",
        },
    )
    cls.__module__ = __name__
    return cls


InboundConnectorArgs = args_class(INBOUND)
OutboundConnectorArgs = args_class(OUTBOUND)
AcceptedDomainArgs = args_class(ACCEPTED_DOMAIN)


def _inputs(spec: ResourceSpec, args: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(args) and hasattr(args, "to_inputs"):
        props = dict(args.to_inputs())
    elif isinstance(args, Mapping):
        props = dict(args)
    else:
        raise TypeError(f"{spec.type_name} takes {spec.type_name}Args or a mapping of its camelCase fields")
    if PROVIDER_KEY in props:
        raise ValueError("__provider is reserved by Pulumi dynamic resources")
    # Pulumi drops None-valued properties: a declared null travels by name (see base.NULLS_KEY).
    nulls = sorted(k for k, v in props.items() if v is None and spec.has_field(k))
    if nulls:
        props = {k: v for k, v in props.items() if k not in nulls}
        props[NULLS_KEY] = nulls
    return props


def _option_fields(spec: ResourceSpec, opts: Optional[pulumi.ResourceOptions], option: str) -> list[str]:
    """The spec fields named by ``opts.<option>`` (camelCase or snake_case), for the provider to act on.

    ``ignore_changes``: the engine hands the provider the *old input* of an ignored property; a provider that
    diffs against the tenant would then undo a hand-made change. ``replace_on_changes``: the engine needs the
    changed keys, which the SDK's dynamic-provider host never reports. Passing the names as inputs lets the
    provider honour both (see base.py).
    """
    names = list(getattr(opts, option, None) or [])
    camel = {snake_case(f.name): f.name for f in spec.fields}
    return sorted({camel.get(n, n) for n in names if spec.has_field(camel.get(n, n))})


def _with_defaults(opts: Optional[pulumi.ResourceOptions]) -> pulumi.ResourceOptions:
    """Replacement deletes first unless the program says otherwise.

    Create-before-delete (the engine's default) makes the replacement find the old object by name, and the
    engine then deletes the object both resources point to; ``--target-replace`` never asks the provider's
    Diff, so only this option reaches the engine for every kind of replacement.
    """
    defaults = pulumi.ResourceOptions(delete_before_replace=True)
    if opts is not None and opts.delete_before_replace is not None:
        return opts
    return pulumi.ResourceOptions.merge(opts, defaults) if opts is not None else defaults


class _MailflowResource(Resource):
    """Common constructor: the provider instance is empty (see base.py), so pickling it leaks nothing."""

    live: pulumi.Output[dict[str, Any]]
    adopted: pulumi.Output[bool]

    _spec: ResourceSpec
    _provider_class: type[MailflowProvider]
    _output_keys: tuple[str, ...] = ("live", "adopted")

    def __init__(self, resource_name: str, args: Any, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props: dict[str, Any] = _inputs(self._spec, args)
        for key, option in ((IGNORE_KEY, "ignore_changes"), (REPLACE_KEY, "replace_on_changes")):
            named = _option_fields(self._spec, opts, option)
            if named:
                props[key] = named
        # Output-only properties are declared as None so that they exist as Output attributes.
        for key in self._output_keys:
            props.setdefault(key, None)
        super().__init__(self._provider_class(), resource_name, props, _with_defaults(opts))


class _ConnectorResource(_MailflowResource):
    """A connector: the Pulumi id is its Guid (a rename is an update), also output as ``guid``."""

    guid: pulumi.Output[str]
    _output_keys = ("guid", "live", "adopted")


class InboundConnector(_ConnectorResource, module=TYPE_MODULE, name="InboundConnector"):
    """An Exchange Online inbound connector; the Pulumi id is its Guid (a rename is an update)."""

    _spec = INBOUND
    _provider_class = InboundConnectorProvider


class OutboundConnector(_ConnectorResource, module=TYPE_MODULE, name="OutboundConnector"):
    """An Exchange Online outbound connector; the Pulumi id is its Guid (a rename is an update)."""

    _spec = OUTBOUND
    _provider_class = OutboundConnectorProvider


class AcceptedDomain(_MailflowResource, module=TYPE_MODULE, name="AcceptedDomain"):
    """An accepted domain that already exists (verified in the Microsoft 365 admin center): create adopts it,
    delete restores the values it had. The Pulumi id is the domain name."""

    restoreValues: pulumi.Output[dict[str, Any]]  # noqa: N815 - output names are the camelCase property names
    _spec = ACCEPTED_DOMAIN
    _provider_class = AcceptedDomainProvider
    _output_keys = ("live", "adopted", "restoreValues")


RESOURCE_CLASSES: dict[str, type[_MailflowResource]] = {
    "InboundConnector": InboundConnector,
    "OutboundConnector": OutboundConnector,
    "AcceptedDomain": AcceptedDomain,
}
