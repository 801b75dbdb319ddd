"""Write a stack file from a live tenant: how a team adopts an existing tenant.

Why it exists: ``pulumi import`` does not work for dynamic providers and nobody retypes forty connectors by
hand. The export is built from the same snapshot and the same normalised values as a plan, so ``export``
followed by ``plan`` shows no change by construction (a test holds it to that).

What it writes: every connector (inbound and outbound, test-mode included) with every field that can be
written (read-only and validation-state fields left out, and fields the tenant holds no value for), so that
the stack manages all of it from then on; and every accepted domain with its documented mail-flow fields (those
with a known service default: ``domainType``, ``matchSubDomains``, ...), leaving out the undocumented ones.
"""

from __future__ import annotations

from typing import Mapping, TypedDict

import yaml

from .shapes import FieldMap, Fields
from .snapshot import Snapshot
from .specs import UNSET, Mode, ResourceSpec, write_order
from .tenant import TenantConfig

__all__ = ["export_stack", "tenant_section", "TenantSection"]

class TenantSection(TypedDict, total=False):
    """The ``tenant:`` mapping of a stack file, as export writes it (stack.py reads the same keys)."""

    emulator: bool
    id: str
    initialDomain: str
    cloud: str


def tenant_section(config: TenantConfig) -> TenantSection:
    """The ``tenant:`` mapping of a stack file for a TenantConfig (never any credential)."""
    if config.emulator:
        return {"emulator": True}
    out: TenantSection = {}
    if config.tenant_id:
        out["id"] = config.tenant_id
    if config.initial_domain:
        out["initialDomain"] = config.initial_domain
    if config.cloud and config.cloud != "commercial":
        out["cloud"] = config.cloud
    return out


def _exported_fields(spec: ResourceSpec, fields: FieldMap) -> Fields:
    out: Fields = {spec.identity_field: fields[spec.identity_field]}
    for f in spec.fields:
        if f.name in out or not f.exported or f.mode is Mode.READ_ONLY:
            continue
        if not spec.creatable and f.default is UNSET:
            continue  # undocumented accepted-domain fields: not ours to pin
        value = fields.get(f.name)
        if value is None:
            continue
        if spec.creatable and f.mode is Mode.SET_ONLY and value == f.default:
            continue  # a set-only connector field at its service default says nothing worth managing
        out[f.name] = value
    return out


def export_stack(snapshot: Snapshot, tenant: Mapping[str, object], *, prune: bool = False, header: str = "") -> str:
    """YAML text of a stack file declaring everything in ``snapshot``."""
    # The tenant section is copied as found in an existing stack file (any YAML), or made by tenant_section.
    doc: dict[str, object] = {"tenant": tenant, "prune": prune}
    for spec in write_order():
        objects = sorted(snapshot.of_type(spec.type_name), key=lambda o: o.name.casefold())
        doc[spec.stack_key] = [_exported_fields(spec, o.fields) for o in objects]
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    prefix = "".join(f"# {line}\n" for line in header.splitlines()) if header else ""
    return prefix + body
