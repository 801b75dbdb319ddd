"""The emulated cmdlets: binding, defaults, the service's rules and warnings, and the records Get-* returns.

Why: this is the behaviour half of the emulated tenant (issue #3 items 4, 5, 7). The HTTP layer hands over a
cmdlet name and its raw ``Parameters``; this module binds them like the service does, runs the cmdlet against
the tenant's state atomically (one store lock per cmdlet: read, merge, validate, write) and returns the objects
and warnings, or raises a :class:`CmdletError` that carries its HTTP status and renders with
``errors.error_body``. Everything here follows the service contract (``exo-cmdlets.md``, ``exo-admin-api.md``);
nothing is shared with the client's specs, so a bug on one side cannot hide itself on the other.

Shapes follow the live captures (exo-admin-api.md §3.2): ``SenderDomains`` as ``smtp:<domain>;1``, unset lists
``[]``, unset strings ``null``, enums as strings, ``Identity`` = ``Name``, ``WhenCreatedUTC`` with seven
fractional digits and ``Z``. Where the sources disagree the choice is a :class:`Settings` field.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import validation as v
from .errors import (
    DC_FQDN,
    INBOUND_ALREADY_EXISTS,
    OUTBOUND_ALREADY_EXISTS,
    CmdletError,
    already_exists,
    command_not_found,
    connector_already_exists,
    missing_mandatory,
    not_found,
    validation,
)
from .params import UNAVAILABLE, Delta, Param, add_cmdlets, bind, canonical_cmdlet
from .store import name_key
from .settings import Settings
from .store import Store, TenantState

__all__ = [
    "CmdletResult",
    "UnknownCmdlet",
    "run_cmdlet",
    "MORE_RESULTS",
    "seed_accepted_domains",
    "init_tenant",
    "inbound_record",
    "outbound_record",
    "accepted_domain_record",
    "ObjectType",
    "register_object_type",
]

INBOUND = "InboundConnector"
OUTBOUND = "OutboundConnector"
DOMAIN = "AcceptedDomain"

_FOREST = DC_FQDN.split(".", 1)[1]  # EMUPR01A001.PROD.OUTLOOK.COM, the domain controller's forest
_DC_SUFFIX = ",".join(f"DC={part}" for part in _FOREST.split("."))
_ZERO_GUID = "00000000-0000-0000-0000-000000000000"
MORE_RESULTS = (
    "There are more results available than are currently displayed. To view them, increase the value for the "
    "ResultSize parameter."
)


@dataclass
class CmdletResult:
    """What a cmdlet produced: ``value`` objects and ``@adminapi.warnings`` lines.

    ``confirmation_message`` is set when ``Confirm``/``WhatIf`` stopped a write: the server puts it in
    ``@adminapi.confirmationmessage`` (exo-admin-api.md §7.3).
    """

    values: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    confirmation_message: str | None = None


class UnknownCmdlet(Exception):
    """A cmdlet outside the emulated catalogue: the service answers 403 with a NUL-byte body."""


# -- time and identity helpers -----------------------------------------------------------------------------


def _now() -> dt.datetime:
    # AD keeps whole seconds: the live records show ".0000000".
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _local(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00")


def _stamp(obj: dict[str, Any], *, created: bool) -> None:
    moment = _now()
    obj["WhenChanged"] = _local(moment)
    obj["WhenChangedUTC"] = _utc(moment)
    if created:
        obj["WhenCreated"] = _local(moment)
        obj["WhenCreatedUTC"] = _utc(moment)


_CATEGORY = {
    "msExchSMTPInboundConnector": "ms-Exch-SMTP-Inbound-Connector",
    "msExchSMTPOutboundConnector": "ms-Exch-SMTP-Outbound-Connector",
    "msExchAcceptedDomain": "ms-Exch-Accepted-Domain",
}


def _config_dn(state: TenantState, kind: str, name: str) -> str:
    # Connectors sit directly under Transport Settings ([L] S8 dump); accepted domains in their own container.
    container = "CN=Accepted Domains," if kind == DOMAIN else ""
    return (
        f"CN={name},{container}CN=Transport Settings,CN=Configuration,CN={state.initial_domain},"
        f"CN=ConfigurationUnits,{_DC_SUFFIX}"
    )


def _rename(state: TenantState, kind: str, obj: dict[str, Any], name: str) -> None:
    obj["Name"] = name
    obj["Identity"] = name
    obj["Id"] = name
    obj["DistinguishedName"] = _config_dn(state, kind, name)


def _identity_block(state: TenantState, kind: str, name: str, object_class: str, version: str) -> dict[str, Any]:
    guid = str(uuid.uuid4())
    obj: dict[str, Any] = {
        "AdminDisplayName": "",
        "ExchangeVersion": version,
        "Name": name,
        "DistinguishedName": "",
        "Identity": name,
        "Id": name,
        "ObjectCategory": f"{_FOREST}/Configuration/Schema/{_CATEGORY[object_class]}",
        "ObjectClass": ["top", object_class],
        "WhenChanged": None,
        "WhenCreated": None,
        "WhenChangedUTC": None,
        "WhenCreatedUTC": None,
        "ExchangeObjectId": guid,
        "OrganizationId": f"{_FOREST}/Microsoft Exchange Hosted Organizations/{state.initial_domain} - "
        f"{_FOREST}/ConfigurationUnits/{state.initial_domain}/Configuration",
        "Guid": guid,
        "OriginatingServer": DC_FQDN,
        "IsValid": True,
        "ObjectState": "Unchanged",
    }
    _rename(state, kind, obj, name)
    _stamp(obj, created=True)
    return obj


# -- records (the stored and returned shapes) ---------------------------------------------------------------


def inbound_record(state: TenantState, name: str, settings: Settings) -> dict[str, Any]:
    """A new inbound connector with the service's defaults (exo-cmdlets.md §2.1, key order as the capture)."""
    obj: dict[str, Any] = {
        "Enabled": True,
        "ConnectorType": "Partner",  # [X] schema default
        "ConnectorSource": "Default",
        "Comment": "",
        "SenderIPAddresses": [],
        "SenderDomains": [],
        "TrustedOrganizations": [],
        "ClientHostNames": [],
        "AssociatedAcceptedDomains": [],
        "RequireTls": settings.inbound_require_tls_default,  # conflicting sources, exo-cmdlets.md §8
        "RestrictDomainsToIPAddresses": False,
        "RestrictDomainsToCertificate": False,
        "CloudServicesMailEnabled": False,
        "TreatMessagesAsInternal": False,
        "TlsSenderCertificateName": None,
        "EFTestMode": False,
        "ScanAndDropRecipients": [],
        "EFSkipLastIP": False,
        "EFSkipIPs": [],
        "EFSkipMailGateway": [],
        "EFUsers": [],
    }
    obj.update(_identity_block(state, INBOUND, name, "msExchSMTPInboundConnector", "0.1 (8.0.535.0)"))
    return obj


def outbound_record(state: TenantState, name: str) -> dict[str, Any]:
    """A new outbound connector with the service's defaults (exo-cmdlets.md §4.1); no inbound-only keys."""
    obj: dict[str, Any] = {
        "Enabled": True,
        "UseMXRecord": True,
        "Comment": "",
        "ConnectorType": "Partner",
        "ConnectorSource": "Default",
        "RecipientDomains": [],
        "SmartHosts": [],
        "TlsDomain": None,
        "TlsSettings": None,
        "IsTransportRuleScoped": False,
        "RouteAllMessagesViaOnPremises": False,
        "CloudServicesMailEnabled": False,
        "AllAcceptedDomains": False,
        "SenderRewritingEnabled": False,
        "MtaStsMode": "Opportunistic",
        "SmtpDaneMode": "Opportunistic",
        "TestMode": False,
        "LinkForModifiedConnector": _ZERO_GUID,
        "ValidationRecipients": [],
        "IsValidated": False,
        "LastValidationTimestamp": None,
    }
    obj.update(_identity_block(state, OUTBOUND, name, "msExchSMTPOutboundConnector", "0.1 (8.0.535.0)"))
    return obj


def accepted_domain_record(state: TenantState, domain: str, *, initial: bool, default: bool) -> dict[str, Any]:
    """A verified domain as Get-AcceptedDomain shows it (exo-admin-api.md §3.2, exo-cmdlets.md §6.3)."""
    obj: dict[str, Any] = {
        "DomainName": domain,
        "DomainType": "Authoritative",
        "Default": default,
        "InitialDomain": initial,
        "MatchSubDomains": False,
        "SmtpDaneStatus": "Disabled",
        "AuthenticationType": "Managed",
        "RawAuthenticationType": "Managed",
        "LiveIdInstanceType": "Business",
        "ExternallyManaged": False,
        "PendingRemoval": False,
        "PendingCompletion": False,
        "OutboundOnly": False,
        "EmailOnly": False,
        "AddressBookEnabled": True,
        "SendingFromDomainDisabled": False,
        "SendingToDomainDisabled": False,
        "IsCoexistenceDomain": False,
        "CatchAllRecipientID": None,
        "FederatedOrganizationLink": None,
        "MailFlowPartner": None,
        "PerimeterDuplicateDetected": False,
        "IsDefaultFederatedDomain": False,
        "EnableNego2Authentication": False,
        "CanHaveCloudCache": False,
        "DualProvisioningEnabled": False,
        "MailFlowRegion": "",
        "AzureProvisioningRegion": "",
    }
    obj.update(_identity_block(state, DOMAIN, domain, "msExchAcceptedDomain", "0.20 (15.0.0.0)"))
    return obj


def seed_accepted_domains(store: Store, state: TenantState) -> None:
    """Give a tenant its accepted domains: the initial domain plus ``config["verified_domains"]``.

    In Exchange Online a domain becomes an accepted domain when it is verified in the Microsoft 365 admin
    center, Authoritative at first. ``config["default_domain"]`` picks the default (else the initial domain).
    Idempotent: a tenant that already has accepted domains is left alone (they can't be removed in EXO).
    """
    with store.lock:
        if state.objects[DOMAIN]:
            return
        names: list[str] = []
        for name in [state.initial_domain, *state.config.get("verified_domains", [])]:
            if name.lower() not in names:
                names.append(name.lower())
        default = str(state.config.get("default_domain") or state.initial_domain).lower()
        records = [
            accepted_domain_record(state, name, initial=name == state.initial_domain, default=name == default)
            for name in names
        ]
        store.put_many(state, DOMAIN, records)


def init_tenant(store: Store, tenant_id: str, *, settings: Settings | None = None) -> None:
    """The server's hook for a new tenant: create its built-in objects right away.

    Accepted domains come from the verified domains. ``config["objects"]`` may list pre-existing objects as
    ``[{"cmdlet": "New-InboundConnector" | "New-OutboundConnector" | "Set-AcceptedDomain", "parameters": {...}}]``;
    they are made as in the admin center (ConnectorSource AdminUI) and obey every rule. A tenant that already
    holds connectors (a restart) is left as it is.
    """
    state = store.resolve(tenant_id)
    if state is None:
        raise LookupError(f"unknown tenant {tenant_id!r}")
    seed_accepted_domains(store, state)
    if state.objects[INBOUND] or state.objects[OUTBOUND]:
        return
    settings = (settings or Settings()).with_overrides(state.config.get("settings"))
    for entry in state.config.get("objects", []):
        try:
            run_cmdlet(store, state.tenant_id, entry["cmdlet"], entry.get("parameters", {}),
                       settings=settings, admin_center=True)
        except CmdletError as err:
            raise ValueError(f"seed object {entry!r} is invalid: {err.message}") from None


# -- output -----------------------------------------------------------------------------------------------

_GUID_KEYS = ("Guid", "ExchangeObjectId")
_DATE_KEYS = ("WhenChanged", "WhenCreated")


def _present(obj: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A copy of a stored record as the wire shows it, with the live service's ``@`` sidecar annotations."""
    if not settings.annotations:
        return {k: (list(val) if isinstance(val, list) else val) for k, val in obj.items()}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, list):
            out[f"{key}@odata.type"] = "#Collection(String)"
            value = list(value)
        elif key in _GUID_KEYS:
            out[f"{key}@data.type"] = "System.Guid"
            out[f"{key}@odata.type"] = "#Guid"
        elif key in _DATE_KEYS:
            out[f"{key}@data.type"] = "System.DateTime"
        out[key] = value
    return out


# -- lookups ----------------------------------------------------------------------------------------------


def _lagging(state: TenantState, obj: dict[str, Any], read_lag: float) -> bool:
    """Simulated replication lag: a new object stays invisible to reads for ``read_lag`` seconds, or for its
    next ``read_lag_reads`` reads (each Get of it, or listing of its type, counts one)."""
    remaining = state.lag_reads.get(obj["Guid"], 0)
    if remaining > 0:
        state.lag_reads[obj["Guid"]] = remaining - 1
        return True
    if read_lag <= 0:
        return False
    created = state.created_at.get(obj["Guid"])
    return created is not None and time.time() - created < read_lag


def _find(state: TenantState, kind: str, identity: str) -> dict[str, Any] | None:
    """Resolve an Identity: Name (case-insensitive), Guid or DistinguishedName; domains also by DomainName."""
    key = identity.strip()
    return state.lookup(kind, name_key(key)) or state.lookup(kind, key.lower())


def _require(state: TenantState, kind: str, identity: str) -> dict[str, Any]:
    obj = _find(state, kind, identity)
    if obj is None:
        raise not_found(identity)
    return obj


def _identity_param(bound: dict[str, Any]) -> str:
    # Identity is mandatory for every cmdlet that calls this: _check_mandatory refused it missing or blank.
    return str(bound["Identity"])


# -- multi-valued edits -----------------------------------------------------------------------------------


def _apply_mvp(current: list[str], value: Any, *, key: Callable[[str], str] = str.lower) -> list[str]:
    """Plain list (or single value) replaces; ``Delta`` adds/removes in place; ``None`` clears."""
    if value is None:
        return []
    if isinstance(value, Delta):
        out = list(current)
        drop = {key(x) for x in value.remove}
        out = [x for x in out if key(x) not in drop]
        for item in value.add:
            if key(item) not in {key(x) for x in out}:
                out.append(item)
        return out
    out = []
    for item in value:
        if key(item) not in {key(x) for x in out}:
            out.append(item)
    return out


def _address_space_key(text: str) -> str:
    """Compare SenderDomains entries by domain, whichever form (``x`` or ``smtp:x;1``) they were given in."""
    lowered = text.strip().lower()
    if lowered.startswith("smtp:"):
        lowered = lowered[5:].split(";", 1)[0]
    return lowered


# -- the cmdlets ------------------------------------------------------------------------------------------


@dataclass
class _Call:
    store: Store
    state: TenantState
    cmdlet: str
    bound: dict[str, Any]
    settings: Settings
    read_lag: float
    admin_center: bool = False  # made "in the admin center" (seeded): ConnectorSource AdminUI
    read_lag_reads: int = 0

    def given(self, name: str) -> bool:
        return name in self.bound

    def stopped(self, target: str) -> CmdletResult | None:
        """Confirm:$true or WhatIf:$true: validate only, return the confirmation text (exo-admin-api.md §7.3)."""
        if self.bound.get("Confirm") or self.bound.get("WhatIf"):
            verb, noun = self.cmdlet.split("-", 1)
            action = {"New": "Creating", "Set": "Modifying", "Remove": "Removing"}[verb]
            text = _confirmation(action, noun, target)
            return CmdletResult(confirmation_message=text)
        return None


def _confirmation(action: str, noun: str, target: str) -> str:
    # [I] the exact text is not captured; this is the Exchange prompt's usual wording.
    words = {"InboundConnector": "inbound connector", "OutboundConnector": "outbound connector"}
    return f'Are you sure you want to perform this action?\n{action} {words.get(noun, noun)} "{target}".'


def _no_change_warning(obj: dict[str, Any]) -> str:
    return f"The command completed successfully but no settings of '{obj['Identity']}' have been modified."


def _result_size(call: _Call, items: list[dict[str, Any]]) -> CmdletResult:
    size = call.bound.get("ResultSize")
    if size is None:
        size = call.settings.default_result_size
    warnings: list[str] = []
    if size != "Unlimited" and len(items) > size:
        items = items[:size]
        warnings.append(MORE_RESULTS)
    return CmdletResult([_present(o, call.settings) for o in items], warnings)


def _get(call: _Call, kind: str, keep: Callable[[dict[str, Any]], bool] = lambda o: True) -> CmdletResult:
    identity = call.bound.get("Identity")
    if identity is not None and str(identity).strip():
        obj = _find(call.state, kind, str(identity))
        if obj is None or _lagging(call.state, obj, call.read_lag):
            raise not_found(str(identity))
        return CmdletResult([_present(obj, call.settings)])
    items = [o for o in call.state.list(kind) if keep(o) and not _lagging(call.state, o, call.read_lag)]
    return _result_size(call, items)


def _get_outbound(call: _Call) -> CmdletResult:
    # -IncludeTestModeConnectors: "only" = the documented reading (true lists only test-mode connectors),
    # "include" = Microsoft365DSC's (true lists all). Without it, test-mode connectors are hidden either way.
    # [I] a lookup by Identity finds a test-mode connector regardless (not stated by any source).
    include = bool(call.bound.get("IncludeTestModeConnectors"))
    scoped = call.bound.get("IsTransportRuleScoped")

    def keep(obj: dict[str, Any]) -> bool:
        if scoped is not None and obj["IsTransportRuleScoped"] != scoped:
            return False
        if not include:
            return not obj["TestMode"]
        return obj["TestMode"] or call.settings.test_mode_listing == "include"

    return _get(call, OUTBOUND, keep)


def _check_name(call: _Call, kind: str, name: Any, *, exclude: str | None = None) -> str:
    if name is None or not str(name).strip():
        if call.cmdlet.startswith("New-"):
            raise missing_mandatory(["Name"])
        raise validation("PropertyValueNullOrEmpty", "The Name property can't be empty.")
    text = str(name).strip()
    if len(text) > 64:
        raise validation("NameTooLong", f"The name '{text}' is longer than 64 characters.")
    other = call.state.lookup(kind, name_key(text))
    if other is not None and other["Guid"] != exclude and name_key(other["Name"]) == name_key(text):
        if kind in (INBOUND, OUTBOUND):
            raise connector_already_exists(text, INBOUND_ALREADY_EXISTS if kind == INBOUND else OUTBOUND_ALREADY_EXISTS)
        raise already_exists(_config_dn(call.state, kind, text), "ErrorObjectAlreadyExists")
    return text


def _comment(value: Any) -> str:
    text = "" if value is None else str(value)
    if len(text) > 1024:
        raise validation("CommentTooLong", "Comment can't be longer than 1024 characters.")
    return text


def _accepted_domain_names(call: _Call, values: list[str]) -> list[str]:
    """AssociatedAcceptedDomains must resolve to accepted domains of this tenant; stored as domain names."""
    out: list[str] = []
    for value in values:
        domain = _find(call.state, DOMAIN, value)
        if domain is None:
            raise validation(
                "ErrorDefaultDomainNotFound",
                f"The accepted domain '{value}' couldn't be found. AssociatedAcceptedDomains must list accepted "
                "domains of this organization.",
            )
        if domain["DomainName"] not in out:
            out.append(domain["DomainName"])
    return out


def _cmc_active(state: TenantState) -> bool:
    """Centralized mail transport: an enabled outbound connector with RouteAllMessagesViaOnPremises."""
    return any(c["Enabled"] and c["RouteAllMessagesViaOnPremises"] for c in state.list(OUTBOUND))


# inbound ------------------------------------------------------------------------------------------------

_INBOUND_LISTS = (
    "SenderIPAddresses",
    "TrustedOrganizations",
    "ClientHostNames",
    "ScanAndDropRecipients",
    "EFSkipIPs",
    "EFSkipMailGateway",
    "EFUsers",
)
_INBOUND_SCALARS = (
    "Enabled",
    "ConnectorType",
    "ConnectorSource",
    "RequireTls",
    "RestrictDomainsToIPAddresses",
    "RestrictDomainsToCertificate",
    "CloudServicesMailEnabled",
    "TreatMessagesAsInternal",
    "EFTestMode",
    "EFSkipLastIP",
)


def _merge_inbound(call: _Call, current: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    obj = dict(current)
    bound = call.bound
    for name in _INBOUND_SCALARS:
        if name in bound:
            obj[name] = bound[name]
    if "Comment" in bound:
        obj["Comment"] = _comment(bound["Comment"])
    if "TlsSenderCertificateName" in bound:
        cert = bound["TlsSenderCertificateName"]
        if cert is not None and cert.strip():
            v.check_tls_certificate_name(cert)
            obj["TlsSenderCertificateName"] = cert.strip()
        else:
            obj["TlsSenderCertificateName"] = None
    if "SenderDomains" in bound:
        value = bound["SenderDomains"]
        if value is None or (not isinstance(value, Delta) and not value):
            if creating:
                raise missing_mandatory(["SenderDomains"])
            raise validation("SenderDomainCannotBeNull", "Sender Domain cannot be null.")
        if isinstance(value, Delta):
            value = Delta(tuple(v.check_address_space(x) for x in value.add), value.remove)
        else:
            value = [v.check_address_space(x) for x in value]
        obj["SenderDomains"] = _apply_mvp(current["SenderDomains"], value, key=_address_space_key)
        if not obj["SenderDomains"]:
            raise validation("SenderDomainCannotBeNull", "Sender Domain cannot be null.")
    elif creating:
        raise missing_mandatory(["SenderDomains"])
    for name in _INBOUND_LISTS:
        if name in bound:
            obj[name] = _apply_mvp(current[name], _strip(bound[name]))
    if "AssociatedAcceptedDomains" in bound:
        value = bound["AssociatedAcceptedDomains"]
        if isinstance(value, Delta):
            value = Delta(tuple(_accepted_domain_names(call, list(value.add))), value.remove)
        elif value is not None:
            value = _accepted_domain_names(call, list(value))
        obj["AssociatedAcceptedDomains"] = _apply_mvp(current["AssociatedAcceptedDomains"], value)
    if "EFUsers" in bound:
        v.check_addresses("EFUsers", obj["EFUsers"])
    if "EFSkipIPs" in bound:
        v.check_ef_skip_ips(obj["EFSkipIPs"])
    return obj


def _check_inbound_task(call: _Call, old: dict[str, Any] | None, obj: dict[str, Any]) -> None:
    """Task-level checks (exo-cmdlets.md §2.2): IP format/reserved, FFO overlap, CMC tenant scope."""
    on_prem = obj["ConnectorType"] == "OnPremises"
    if old is None or (obj["Enabled"] and obj["SenderIPAddresses"]):
        ffo = on_prem and (
            old is None
            or any(call.given(n) for n in ("ConnectorType", "SenderIPAddresses", "TlsSenderCertificateName"))
        )
        v.check_sender_ips(
            obj["SenderIPAddresses"],
            reject_documentation=call.settings.reject_documentation_ips,
            on_premises=ffo,
        )
    if on_prem and obj["TlsSenderCertificateName"] and (
        old is None or call.given("ConnectorType") or call.given("TlsSenderCertificateName")
    ):
        err = v.ffo_certificate(obj["TlsSenderCertificateName"])
        if err is not None:
            raise err
    # Centralized mail transport needs a tenant-scoped (no AssociatedAcceptedDomains) enabled OnPremises
    # inbound connector ([X] TenantScopedInboundConnectorRequiredForCMCConnector): setting
    # AssociatedAcceptedDomains is refused unless another one exists; [I] so is a save that makes the last
    # tenant-scoped connector stop being one (disable, retype), which breaks the same invariant.
    if _cmc_active(call.state) and not _tenant_scoped(obj):
        others = [c for c in call.state.list(INBOUND) if old is None or c["Guid"] != old["Guid"]]
        setting_domains = call.given("AssociatedAcceptedDomains") and bool(obj["AssociatedAcceptedDomains"])
        losing_scope = old is not None and _tenant_scoped(old)
        if (setting_domains or losing_scope) and not any(_tenant_scoped(c) for c in others):
            raise validation(
                "TenantScopedInboundConnectorRequiredForCMCConnector",
                "An outbound connector routes all messages via on-premises (RouteAllMessagesViaOnPremises), "
                "so the organization needs an enabled OnPremises inbound connector without "
                "AssociatedAcceptedDomains; this change would leave none.",
            )


def _tenant_scoped(conn: dict[str, Any]) -> bool:
    return bool(conn["Enabled"] and conn["ConnectorType"] == "OnPremises" and not conn["AssociatedAcceptedDomains"])


def _admin_center_source(call: _Call, obj: dict[str, Any]) -> None:
    # Connectors made in the Exchange admin center come back with ConnectorSource AdminUI ([L] S7/S8).
    if call.admin_center and not call.given("ConnectorSource"):
        obj["ConnectorSource"] = "AdminUI"


def _new_inbound(call: _Call) -> CmdletResult:
    name = _check_name(call, INBOUND, call.bound.get("Name"))
    obj = _merge_inbound(call, inbound_record(call.state, name, call.settings), creating=True)
    _admin_center_source(call, obj)
    _check_inbound_task(call, None, obj)
    v.check_inbound(obj)
    warnings = v.inbound_overlap_warnings(obj, call.state.objects[INBOUND].values())
    stopped = call.stopped(name)
    if stopped:
        return stopped
    call.store.put(call.state, INBOUND, obj)
    return CmdletResult([_present(obj, call.settings)], warnings)


def _set_inbound(call: _Call) -> CmdletResult:
    current = _require(call.state, INBOUND, _identity_param(call.bound))
    obj = _merge_inbound(call, current, creating=False)
    if "Name" in call.bound:
        _rename(call.state, INBOUND, obj, _check_name(call, INBOUND, call.bound["Name"], exclude=current["Guid"]))
    _check_inbound_task(call, current, obj)
    v.check_inbound(obj)
    warnings = []
    if call.given("SenderIPAddresses"):
        warnings = v.inbound_overlap_warnings(obj, call.state.objects[INBOUND].values())
    return _save_changes(call, INBOUND, current, obj, warnings)


def _save_changes(
    call: _Call, kind: str, current: dict[str, Any], obj: dict[str, Any], warnings: list[str]
) -> CmdletResult:
    stopped = call.stopped(current["Identity"])
    if stopped:
        return stopped
    if obj == current:
        return CmdletResult([], warnings + [_no_change_warning(current)])
    _stamp(obj, created=False)
    call.store.put(call.state, kind, obj)
    return CmdletResult([], warnings)


def _referencing_rules(state: TenantState, conn: dict[str, Any]) -> list[str]:
    """Mail flow rules that route to this outbound connector.

    The emulator has no transport-rule cmdlets; a tenant's seed may declare rules as
    ``config["transport_rules"] = [{"Name": ..., "RouteMessageOutboundConnector": <connector name>}]``
    so that the service's "still referenced" rule ([X], exo-cmdlets.md §4.1/§12) can be exercised.
    """
    return [
        str(rule.get("Name", ""))
        for rule in state.config.get("transport_rules", [])
        if str(rule.get("RouteMessageOutboundConnector", "")).lower() in (conn["Name"].lower(), conn["Guid"])
    ]


def _check_still_referenced(state: TenantState, old: dict[str, Any], new: dict[str, Any] | None) -> None:
    """Remove, disable, rename or unscope a connector that a mail flow rule uses: refused."""
    if new is not None and (
        new["Enabled"] == old["Enabled"]
        and new["Name"] == old["Name"]
        and new["IsTransportRuleScoped"] == old["IsTransportRuleScoped"]
    ):
        return
    if new is not None and new["Enabled"] and new["Name"] == old["Name"] and new["IsTransportRuleScoped"]:
        return
    rules = _referencing_rules(state, old)
    if rules:
        raise validation(
            "ConnectorIncorrectUsageConnectorStillReferenced",
            f"The outbound connector '{old['Name']}' is used by the mail flow rule(s) "
            + ", ".join(f"'{r}'" for r in rules)
            + "; change those rules first.",
        )


def _remove(call: _Call, kind: str) -> CmdletResult:
    current = _require(call.state, kind, _identity_param(call.bound))
    if kind == OUTBOUND:
        _check_still_referenced(call.state, current, None)
    stopped = call.stopped(current["Identity"])
    if stopped:
        return stopped
    call.store.delete(call.state, kind, current["Guid"])
    if kind == OUTBOUND:
        return CmdletResult([], _routing_warnings(call.state))
    return CmdletResult([])


# outbound -----------------------------------------------------------------------------------------------

_OUTBOUND_SCALARS = (
    "Enabled",
    "ConnectorType",
    "ConnectorSource",
    "IsTransportRuleScoped",
    "RouteAllMessagesViaOnPremises",
    "CloudServicesMailEnabled",
    "AllAcceptedDomains",
    "SenderRewritingEnabled",
    "MtaStsMode",
    "SmtpDaneMode",
    "TestMode",
    "LinkForModifiedConnector",
    "IsValidated",
    "LastValidationTimestamp",
    "TlsSettings",
    "UseMXRecord",
)


def _merge_outbound(call: _Call, current: dict[str, Any]) -> dict[str, Any]:
    obj = dict(current)
    bound = call.bound
    for name in _OUTBOUND_SCALARS:
        if name in bound:
            obj[name] = bound[name]
    if obj["LinkForModifiedConnector"] is None:
        obj["LinkForModifiedConnector"] = _ZERO_GUID
    if "Comment" in bound:
        obj["Comment"] = _comment(bound["Comment"])
    if "TlsDomain" in bound:
        domain = bound["TlsDomain"]
        if domain is not None and domain.strip():
            obj["TlsDomain"] = v.check_domain_with_subdomains("TlsDomain", domain, allow_star=False)
        else:
            obj["TlsDomain"] = None
    if "RecipientDomains" in bound:
        value = bound["RecipientDomains"]
        added = value.add if isinstance(value, Delta) else (value or ())
        for item in added:
            v.check_domain_with_subdomains("RecipientDomains", item, allow_star=True)
        obj["RecipientDomains"] = _apply_mvp(current["RecipientDomains"], _strip(value))
    if "SmartHosts" in bound:
        value = bound["SmartHosts"]
        added = value.add if isinstance(value, Delta) else (value or ())
        v.check_smart_hosts(added, reject_documentation=call.settings.reject_documentation_ips)
        obj["SmartHosts"] = _apply_mvp(current["SmartHosts"], _strip(value))
    if "ValidationRecipients" in bound:
        obj["ValidationRecipients"] = _apply_mvp(current["ValidationRecipients"], _strip(bound["ValidationRecipients"]))
        v.check_addresses("ValidationRecipients", obj["ValidationRecipients"])
    # Setting UseMXRecord $true clears the smart hosts (the task's ClearSmartHostsListIfNecessary, [X]).
    if bound.get("UseMXRecord") is True:
        obj["SmartHosts"] = []
    return obj


def _strip(value: Any) -> Any:
    if isinstance(value, Delta):
        return Delta(tuple(x.strip() for x in value.add), tuple(x.strip() for x in value.remove))
    if value is None:
        return None
    return [x.strip() for x in value]


def _check_outbound_task(call: _Call, obj: dict[str, Any]) -> None:
    if obj["RouteAllMessagesViaOnPremises"] and not any(_tenant_scoped(c) for c in call.state.list(INBOUND)):
        raise validation(
            "CMCConnectorRequiresTenantScopedInboundConnector",
            "RouteAllMessagesViaOnPremises needs an enabled OnPremises inbound connector without "
            "AssociatedAcceptedDomains, so that mail from your on-premises servers is accepted. Create one first.",
        )


def _new_outbound(call: _Call) -> CmdletResult:
    name = _check_name(call, OUTBOUND, call.bound.get("Name"))
    obj = _merge_outbound(call, outbound_record(call.state, name))
    _admin_center_source(call, obj)
    v.check_outbound(obj)
    _check_outbound_task(call, obj)
    stopped = call.stopped(name)
    if stopped:
        return stopped
    call.store.put(call.state, OUTBOUND, obj)
    return CmdletResult([_present(obj, call.settings)], _routing_warnings(call.state))


def _set_outbound(call: _Call) -> CmdletResult:
    current = _require(call.state, OUTBOUND, _identity_param(call.bound))
    obj = _merge_outbound(call, current)
    if "Name" in call.bound:
        _rename(call.state, OUTBOUND, obj, _check_name(call, OUTBOUND, call.bound["Name"], exclude=current["Guid"]))
    v.check_outbound(obj)
    _check_outbound_task(call, obj)
    _check_still_referenced(call.state, current, obj)
    result = _save_changes(call, OUTBOUND, current, obj, [])
    if result.confirmation_message is None and obj != current:
        result.warnings.extend(_routing_warnings(call.state))
    return result


def _routing_warnings(state: TenantState) -> list[str]:
    """After an outbound change: InternalRelay domains no enabled OnPremises connector routes (warning only)."""
    missing = v.unroutable_internal_relay(state.list(DOMAIN), state.list(OUTBOUND))
    return [v.routing_warning(missing)] if missing else []


def _validate_outbound(call: _Call) -> CmdletResult:
    """Validate-OutboundConnector: a result object, no mail sent and no state change (exo-cmdlets.md §5)."""
    conn = _require(call.state, OUTBOUND, _identity_param(call.bound))
    recipients = call.bound.get("Recipients")
    if not recipients or isinstance(recipients, Delta):
        raise missing_mandatory(["Recipients"])
    v.check_addresses("Recipients", recipients)
    targets = conn["SmartHosts"] if not conn["UseMXRecord"] else [r.split("@", 1)[1] + " (MX)" for r in recipients]
    subtasks = [
        {
            "IsTaskSuccessful": True,
            "TaskName": f"Connect to {target}",
            "TaskDetail": "Emulated: no SMTP connection was made.",
            "SubTaskResults": [],
        }
        for target in targets
    ] + [
        {
            "IsTaskSuccessful": True,
            "TaskName": f"Send test email to {r}",
            "TaskDetail": "Emulated: no message was sent. " + _route_note(call, r.rsplit("@", 1)[1], conn),
            "SubTaskResults": [],
        }
        for r in recipients
    ]
    result = {
        "IsTaskSuccessful": True,
        "TaskName": f"Validate connector {conn['Name']}",
        "TaskDetail": "",
        "SubTaskResults": subtasks,
    }
    return CmdletResult([result])


def _route_note(call: _Call, domain: str, conn: dict[str, Any]) -> str:
    """Emulator extra: which connector ordinary mail to ``domain`` would take (Settings.wildcard_routing_order)."""
    chosen = v.select_outbound(
        domain, call.state.list(OUTBOUND), call.state.list(DOMAIN), order=call.settings.wildcard_routing_order
    )
    if chosen is None:
        return f"Mail to {domain} is delivered by MX lookup, not through a connector."
    if chosen["Guid"] == conn["Guid"]:
        return f"Mail to {domain} is routed through this connector."
    return f"Mail to {domain} is routed through the connector '{chosen['Name']}', not this one."


# accepted domains ---------------------------------------------------------------------------------------

_DOMAIN_FIELDS = (
    "DomainType",
    "MatchSubDomains",
    "OutboundOnly",
    "SendingFromDomainDisabled",
    "SendingToDomainDisabled",
    "CanHaveCloudCache",
    "MailFlowRegion",
    "EnableNego2Authentication",
)


def _set_accepted_domain(call: _Call) -> CmdletResult:
    current = _require(call.state, DOMAIN, _identity_param(call.bound))
    if current["PendingRemoval"]:
        raise validation("ErrorPendingRemoval", f"The accepted domain '{current['Name']}' is being removed.")
    obj = dict(current)
    for name in _DOMAIN_FIELDS:
        if name in call.bound:
            obj[name] = call.bound[name]
    if obj["MailFlowRegion"] is None:
        obj["MailFlowRegion"] = ""
    if obj["DomainType"] == "ExternalRelay":
        raise validation(
            "ExternalRelayDomainsAreNotAllowedInDatacenterAndFfo",
            "ExternalRelay accepted domains aren't allowed in Exchange Online; use Authoritative or InternalRelay.",
        )
    if obj["EnableNego2Authentication"] and "*" in obj["DomainName"]:
        raise validation(
            "Nego2AuthenticationNotAllowedForWildcardDomain",
            "EnableNego2Authentication can't be used with a wildcard domain name.",
        )
    v.check_accepted_domain(obj)
    warnings: list[str] = []
    # [X] warns when a domain becomes InternalRelay; [I] also when MatchSubDomains widens what must be routed.
    if obj["DomainType"] == "InternalRelay" and (call.given("DomainType") or call.given("MatchSubDomains")):
        if v.unroutable_internal_relay([obj], call.state.list(OUTBOUND)):
            warnings.append(v.domain_routing_warning(obj["DomainName"]))
    return _save_changes(call, DOMAIN, current, obj, warnings)


# dispatch -----------------------------------------------------------------------------------------------

_HANDLERS: dict[str, Callable[[_Call], CmdletResult]] = {
    "Get-InboundConnector": lambda c: _get(c, INBOUND),
    "New-InboundConnector": _new_inbound,
    "Set-InboundConnector": _set_inbound,
    "Remove-InboundConnector": lambda c: _remove(c, INBOUND),
    "Get-OutboundConnector": _get_outbound,
    "New-OutboundConnector": _new_outbound,
    "Set-OutboundConnector": _set_outbound,
    "Remove-OutboundConnector": lambda c: _remove(c, OUTBOUND),
    "Validate-OutboundConnector": _validate_outbound,
    "Get-AcceptedDomain": lambda c: _get(c, DOMAIN),
    "Set-AcceptedDomain": _set_accepted_domain,
}


_MANDATORY: dict[str, tuple[str, ...]] = {
    "New-InboundConnector": ("Name", "SenderDomains"),
    "Set-InboundConnector": ("Identity",),
    "Remove-InboundConnector": ("Identity",),
    "New-OutboundConnector": ("Name",),
    "Set-OutboundConnector": ("Identity",),
    "Remove-OutboundConnector": ("Identity",),
    "Validate-OutboundConnector": ("Identity", "Recipients"),
    "Set-AcceptedDomain": ("Identity",),
}


# an extra object type -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectType:
    """A plain configuration object with New-/Get-/Set-/Remove-<noun> cmdlets, identified by ``Name`` (unique,
    case-insensitive), for trying out one more resource type (e.g. in a test) without writing its cmdlets by hand.

    ``params``: the properties New-* and Set-* take (Set-* also takes ``Identity``); ``defaults``: each property's
    value when New-* leaves it out (lists default to ``[]``, others to ``None``). No cross-field rules, and the
    objects live as long as the server process (the store reloads only the service's own kinds from disk)."""

    noun: str
    params: tuple[Param, ...]
    defaults: dict[str, Any] = field(default_factory=dict)


def register_object_type(kind: ObjectType) -> Callable[[], None]:
    """Add ``kind``'s four cmdlets to the catalogue; returns the function that removes them again."""
    noun = kind.noun
    table = {
        f"Get-{noun}": (_s_identity(), Param("ResultSize", "resultsize")),
        f"New-{noun}": kind.params,
        f"Set-{noun}": kind.params + (_s_identity(),),
        f"Remove-{noun}": (_s_identity(),),
    }
    remove_cmdlets = add_cmdlets(table)

    def objects(call: _Call) -> _Call:
        call.state.objects.setdefault(noun, {})  # a tenant made before the type was added
        return call

    handlers: dict[str, Callable[[_Call], CmdletResult]] = {
        f"Get-{noun}": lambda c: _get(objects(c), noun),
        f"New-{noun}": lambda c: _new_plain(objects(c), kind),
        f"Set-{noun}": lambda c: _set_plain(objects(c), kind),
        f"Remove-{noun}": lambda c: _remove(objects(c), noun),
    }
    _HANDLERS.update(handlers)
    _MANDATORY.update({f"New-{noun}": ("Name",), f"Set-{noun}": ("Identity",), f"Remove-{noun}": ("Identity",)})

    def remove() -> None:
        remove_cmdlets()
        for name in handlers:
            _HANDLERS.pop(name, None)
            _MANDATORY.pop(name, None)

    return remove


def _s_identity() -> Param:
    return Param("Identity", "str")


def _assign(call: _Call, kind: ObjectType, obj: dict[str, Any]) -> None:
    for param in kind.params:
        if param.name == "Name" or not call.given(param.name):
            continue
        value = call.bound[param.name]
        obj[param.name] = _apply_mvp(obj.get(param.name) or [], value) if param.kind == "mvp" else value


def _new_plain(call: _Call, kind: ObjectType) -> CmdletResult:
    name = _check_name(call, kind.noun, call.bound.get("Name"))
    guid = str(uuid.uuid4())
    obj: dict[str, Any] = {"Name": name, "Identity": name, "Id": name, "Guid": guid, "ExchangeObjectId": guid,
                           "DistinguishedName": _config_dn(call.state, kind.noun, name)}
    for param in kind.params:
        if param.name != "Name":
            obj[param.name] = kind.defaults.get(param.name, [] if param.kind == "mvp" else None)
    _assign(call, kind, obj)
    _stamp(obj, created=True)
    stopped = call.stopped(name)
    if stopped:
        return stopped
    call.store.put(call.state, kind.noun, obj)
    return CmdletResult([_present(obj, call.settings)])


def _set_plain(call: _Call, kind: ObjectType) -> CmdletResult:
    current = _require(call.state, kind.noun, _identity_param(call.bound))
    obj = dict(current)
    _assign(call, kind, obj)
    if "Name" in call.bound:
        _rename(call.state, kind.noun, obj, _check_name(call, kind.noun, call.bound["Name"], exclude=current["Guid"]))
    return _save_changes(call, kind.noun, current, obj, [])


def _check_mandatory(cmdlet: str, bound: dict[str, Any]) -> None:
    """PowerShell binds mandatory parameters before the cmdlet runs: missing or null/empty fails first."""
    missing = [
        p for p in _MANDATORY.get(cmdlet, ()) if bound.get(p) is None or bound.get(p) in ("", ()) or (
            isinstance(bound.get(p), str) and not bound[p].strip()
        )
    ]
    if missing:
        raise missing_mandatory(missing)


def run_cmdlet(
    store: Store,
    tenant_id: str,
    cmdlet: str,
    parameters: dict[str, Any] | None,
    *,
    settings: Settings,
    read_lag: float = 0.0,
    admin_center: bool = False,
    read_lag_reads: int = 0,
) -> CmdletResult:
    """Run one cmdlet for a tenant (GUID or one of its domains).

    ``admin_center``: the object is made as in the Exchange admin center (seeded objects, see
    :func:`init_tenant`). Raises :class:`UnknownCmdlet` (answer 403, NUL body), :class:`CmdletError` (answer
    ``err.status`` with ``errors.error_body(err)``) or ``LookupError`` for a tenant the store does not hold.
    """
    name = canonical_cmdlet(cmdlet)
    if name is None:
        raise UnknownCmdlet(cmdlet)
    if name in UNAVAILABLE:
        if settings.unavailable_cmdlet_answer == "command_not_found":
            raise command_not_found(name)
        raise UnknownCmdlet(name)
    bound = bind(name, dict(parameters or {}))
    _check_mandatory(name, bound)
    state = store.resolve(tenant_id)
    if state is None:
        raise LookupError(f"unknown tenant {tenant_id!r}")
    with store.tenant(state.tenant_id) as state:
        seed_accepted_domains(store, state)
        call = _Call(store, state, name, bound, settings, read_lag, admin_center, read_lag_reads)
        result = _HANDLERS[name](call)
        if read_lag_reads > 0 and name.startswith("New-"):
            for value in result.values:
                if value.get("Guid"):
                    state.lag_reads[str(value["Guid"])] = int(read_lag_reads)
        return result
