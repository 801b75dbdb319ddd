"""The Pulumi program: one dynamic resource per object of ``stacks/<pulumi stack>.yaml``.

``__main__.py`` at the project root is a two-line wrapper around :func:`run`, so the program is importable
and testable with ``pulumi.runtime.set_mocks``. The stack file is read with the same loader as the ``mailflow``
CLI (:func:`o365_mailflow.stack.load_stack`), so a bad field fails ``pulumi preview`` with the same
``FILE:LINE: path: message`` diagnostics before anything reaches the tenant.

Dependencies are explicit because the service enforces an order, and they come from the specs (each
:class:`~o365_mailflow.specs.ResourceSpec`'s ``after``): accepted domains before connectors (inbound connectors
may name them), an enabled OnPremises inbound connector before an outbound connector with
``routeAllMessagesViaOnPremises`` (centralized transport needs it, exo-cmdlets §4.2 rule 5), and an InternalRelay
accepted domain after the OnPremises outbound connectors that route its mail.

Pulumi logical names are the object names in lower case (connector name, domain name). Exchange compares names
case-insensitively, so a change of case only must not change the URN: with the declared spelling as the
logical name, the engine saw a new resource plus a deleted one, the new one found the connector by name and the
delete then removed it. With the lower-case logical name, a case-only rename is an in-place ``Set -Name`` on the
same Guid. Each resource also carries an alias to its declared spelling, so state written before this rule (URN
with the declared case) is taken over without a replacement. A connector renamed in the stack file with
``renamedFrom: <old name>`` gets aliases to its old logical names, so the engine finds the existing resource
(same URN) and the provider renames it in place with one ``Set-*Connector -Name`` (the Guid is the id). Without
``renamedFrom`` a rename is a new resource plus a deleted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pulumi
from pulumi.runtime.config import get_config, is_config_secret

from ..errors import Severity
from ..routing import check_stack, guidance
from ..shapes import Fields
from ..specs import SPECS, effective, holds, is_late, write_phases
from ..stack import DesiredObject, Stack, stack_path, validate_stack
from .config import CONFIG_NAMESPACE, SECRET_KEYS
from .resources import resource_class

__all__ = ["declare_stack", "run"]

def _guidance(stack: Stack, cloud: str) -> tuple[dict[str, str], str | None]:
    """MX endpoint per accepted domain and the SPF record, from the routing module (one formula for all)."""

    def fields(type_name: str) -> list[Fields]:
        return [dict(o.fields) for o in stack.of_type(type_name)]

    result = guidance(fields("AcceptedDomain"), fields("InboundConnector"), cloud=cloud)
    return dict(result.mx_endpoints), result.spf_record


def logical_name(name: str) -> str:
    """The Pulumi logical name of an object: its name in lower case (see the module docstring)."""
    return name.lower()


def _aliases(obj: DesiredObject) -> list[pulumi.Alias]:
    """Earlier logical names of ``obj``: its declared spelling, and for a rename the old name's spellings."""
    names = [obj.name]
    old = getattr(obj, "renamed_from", None)
    if old:
        names += [old, logical_name(old)]
    own = logical_name(obj.name)
    unique = [n for i, n in enumerate(names) if n != own and n not in names[:i]]
    return [pulumi.Alias(name=n) for n in unique]


def _options(obj: DesiredObject, depends_on: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions | None:
    """Dependencies and aliases (the URN carries over across case changes and renames)."""
    aliases = _aliases(obj)
    if not depends_on and not aliases:
        return None
    return pulumi.ResourceOptions(depends_on=list(depends_on) or None, aliases=aliases or None)


def declare_stack(stack: Stack, *, cloud: str | None = None) -> dict[str, dict[str, pulumi.CustomResource]]:
    """Declare every object of ``stack`` as a resource, with the specs' ordering as dependencies."""
    declared: dict[str, dict[str, pulumi.CustomResource]] = {name: {} for name in SPECS}
    values: dict[int, Fields] = {}  # id(resource) -> its object's values over the service defaults

    def declare(obj: DesiredObject, depends_on: Sequence[pulumi.Resource]) -> pulumi.CustomResource:
        cls = resource_class(obj.spec)
        props: dict[str, object] = dict(obj.fields)
        if obj.adopt:
            props["adopt"] = True
        resource = cls(logical_name(obj.name), props, _options(obj, depends_on))
        declared[obj.spec.type_name][obj.name] = resource
        return resource

    def waits_for(obj: DesiredObject, own: Fields) -> list[pulumi.Resource]:
        needs: list[pulumi.Resource] = []
        for dep in obj.spec.after:
            if holds(dep.when, own):
                needs += [r for r in declared[dep.type_name].values()
                          if holds(dep.on, values[id(r)]) and r not in needs]
        return needs

    for phase in write_phases():
        for obj in stack.of_type(phase.spec.type_name):
            own = effective(obj.spec, obj.fields)
            if is_late(obj.spec, own) is phase.late:
                values[id(declare(obj, waits_for(obj, own)))] = own

    cloud = cloud or getattr(stack.tenant, "cloud", None) or "commercial"
    mx, spf = _guidance(stack, cloud)
    pulumi.export("tenant", stack.tenant.label)
    for spec in SPECS.values():  # inboundConnectorIds, outboundConnectorIds: the ids of the types we create
        if spec.creatable:
            ids = {n: r.id for n, r in declared[spec.type_name].items()}
            pulumi.export(f"{spec.stack_key.removesuffix('s')}Ids", ids)
    pulumi.export("acceptedDomains", {
        name: {"mxEndpoint": mx.get(name), "spfRecord": spf} for name in declared["AcceptedDomain"]
    })
    pulumi.export("mxEndpoints", mx)
    if spf:
        pulumi.export("spfRecord", spf)
    return declared


def _config_cloud() -> str | None:
    value = pulumi.Config(CONFIG_NAMESPACE).get("cloud")
    return value.lower() if value else None


def _warn_plain_credentials() -> None:
    """A credential set without ``--secret`` is stored in plain text in Pulumi.<stack>.yaml and in state."""
    for key in SECRET_KEYS:
        full = f"{CONFIG_NAMESPACE}:{key}"
        if get_config(full) is not None and not is_config_secret(full):
            pulumi.log.warn(
                f"{full} is stored in plain text in Pulumi.{pulumi.get_stack()}.yaml (and in the state's provider "
                f"config): set it again as a secret with `pulumi config set --secret {full}`, and rotate it if "
                "the file was committed."
            )


def _check_tenant(stack: Stack, path: Path) -> None:
    """Refuse to deploy a stack file into another tenant than the one it names.

    The providers reach the tenant that the Pulumi config names (``o365-mailflow:tenantId``); the stack file
    may name one too (``tenant.id``). A copy-pasted config would otherwise apply prod's connectors elsewhere.
    """
    configured = pulumi.Config(CONFIG_NAMESPACE).get("tenantId")
    declared = getattr(stack.tenant, "tenant_id", None)
    if configured and declared and configured.strip().lower() != str(declared).strip().lower():
        raise pulumi.RunError(
            f"{path} is for tenant {declared}, but this Pulumi stack's config o365-mailflow:tenantId is "
            f"{configured}. Fix one of them (pulumi config set o365-mailflow:tenantId <id>) before deploying."
        )


def run(root: Path, stack_name: str | None = None) -> dict[str, dict[str, pulumi.CustomResource]]:
    """Load ``stacks/<stack>.yaml`` under ``root`` and declare it.

    Errors fail the program with the loader's ``FILE:LINE: path: message`` lines; the routing warnings that
    ``mailflow validate`` prints are shown as Pulumi warnings.
    """
    name = stack_name or pulumi.get_stack()
    path = stack_path(name, root=root)
    if not path.exists():
        raise pulumi.RunError(
            f"{path}: no stack file for Pulumi stack {name!r}. Create it (see docs/pulumi.md), or select a stack "
            f"that has one: pulumi stack select <name> for stacks/<name>.yaml."
        )
    stack, diags = validate_stack(path, checks=(check_stack,))
    errors = [d for d in diags if d.severity is Severity.ERROR]
    if stack is None or errors:
        raise pulumi.RunError(f"{path} is not valid:\n" + "\n".join(d.format() for d in errors or diags))
    for diag in diags:
        pulumi.log.warn(diag.format())
    _check_tenant(stack, path)
    _warn_plain_credentials()
    return declare_stack(stack, cloud=_config_cloud())
