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
import sys
import types
from typing import Any, Mapping, Optional, Sequence

import pulumi
from pulumi.dynamic import Resource

from ..pulumi_plan import IGNORE_KEY, NULLS_KEY, REPLACE_KEY
from ..specs import ACCEPTED_DOMAIN, INBOUND, META_KEYS, OUTBOUND, SPECS, UNSET, Bool, ListOf, Mode, ResourceSpec
from . import base
from .base import PROVIDER_KEY, AcceptedDomainProvider, MailflowProvider

__all__ = [
    "TYPE_MODULE",
    "InboundConnector",
    "InboundConnectorArgs",
    "OutboundConnector",
    "OutboundConnectorArgs",
    "AcceptedDomain",
    "AcceptedDomainArgs",
    "resource_classes",
    "resource_class",
    "provider_class",
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


class _AdoptedResource(_MailflowResource):
    """A resource of a type that Exchange Online cannot create (an accepted domain): create adopts the existing object,
    delete restores the values it had. The Pulumi id is its identity (the domain name)."""

    restoreValues: pulumi.Output[dict[str, Any]]  # noqa: N815 - output names are the camelCase property names
    _output_keys = ("live", "adopted", "restoreValues")


def provider_class(spec: ResourceSpec) -> type[MailflowProvider]:
    """The provider class of a type: the named one in base.py (existing Pulumi state pickles it by that name), or
    one made here for a type added later, bound in this module so that it pickles by reference too."""
    name = f"{spec.type_name}Provider"
    existing = getattr(base, name, None) or getattr(sys.modules[__name__], name, None)
    if isinstance(existing, type) and issubclass(existing, MailflowProvider):
        return existing
    parent: type[MailflowProvider] = MailflowProvider if spec.creatable else AcceptedDomainProvider
    cls = types.new_class(name, (parent,), exec_body=lambda ns: ns.update(type_name=spec.type_name,
                                                                          __module__=__name__))
    setattr(sys.modules[__name__], name, cls)
    return cls


_CLASSES: dict[str, type[_MailflowResource]] = {}


def resource_class(spec: ResourceSpec) -> type[_MailflowResource]:
    """The Pulumi resource class of a type, made from its spec: type token ``pulumi-python:dynamic/exo:<TypeName>``
    (the token is part of every URN, so it never changes), outputs by what the type is (connector: ``guid``; a type
    that cannot be created: ``restoreValues``)."""
    made = _CLASSES.get(spec.type_name)
    if made is not None and made._spec is spec:
        return made
    parent = _ConnectorResource if spec.renamable else (_MailflowResource if spec.creatable else _AdoptedResource)
    body = {"_spec": spec, "_provider_class": provider_class(spec), "__module__": __name__,
            "__doc__": f"An Exchange Online {spec.what} (see docs/stack-reference.md for its arguments)."}
    cls = types.new_class(spec.type_name, (parent,), {"module": TYPE_MODULE, "name": spec.type_name},
                          lambda ns: ns.update(body))
    _CLASSES[spec.type_name] = cls
    return cls


def resource_classes() -> dict[str, type[_MailflowResource]]:
    """Every registered type's resource class, by type name."""
    return {name: resource_class(spec) for name, spec in SPECS.items()}


InboundConnector = resource_class(INBOUND)
OutboundConnector = resource_class(OUTBOUND)
AcceptedDomain = resource_class(ACCEPTED_DOMAIN)
