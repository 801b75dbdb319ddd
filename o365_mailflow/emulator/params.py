"""The cmdlets' parameter tables and how JSON values bind to them.

Why: the service binds ``CmdletInput.Parameters`` like PowerShell does: names are case-insensitive, unknown
names fail with AmbiguousParameterSetException, values are transformed to the parameter's type (bad enum
names list the valid ones), multi-valued parameters take an array, a single value or the
``#Exchange.GenericHashTable`` Add/Remove form, and ``null`` clears (exo-admin-api.md §2.1, §8 items 3-4).
The parameter sets follow the module catalogue in exo-admin-api.md §7.1 and exo-cmdlets.md §2.1/§4.1/§6.2.
This table is the emulator's own; it deliberately shares nothing with the client's specs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ambiguous, transformation

__all__ = ["Param", "Delta", "CMDLETS", "UNAVAILABLE", "bind", "canonical_cmdlet", "COMMON", "add_cmdlets"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # bool | str | enum | mvp | guid | datetime | resultsize
    values: tuple[str, ...] = ()  # enum names
    enum_type: str = ""
    nullable: bool = True


@dataclass(frozen=True)
class Delta:
    """A multi-valued ``@{Add=...; Remove=...}`` edit."""

    add: tuple[str, ...]
    remove: tuple[str, ...]


def _b(name: str) -> Param:
    return Param(name, "bool", nullable=False)


def _s(name: str) -> Param:
    return Param(name, "str")


def _m(name: str) -> Param:
    return Param(name, "mvp")


def _e(name: str, values: tuple[str, ...], enum_type: str, *, nullable: bool = False) -> Param:
    # Only Nullable<> enums (TlsSettings) take $null; the others fail like PowerShell's binder does.
    return Param(name, "enum", values, enum_type, nullable)


CONNECTOR_TYPE = _e("ConnectorType", ("OnPremises", "Partner"), "Microsoft.Exchange.Data.TenantConnectorType")
# Docs list Default, HybridWizard, Migrated as settable; AdminUI only comes back for admin-center objects.
CONNECTOR_SOURCE = _e(
    "ConnectorSource", ("Default", "HybridWizard", "Migrated"), "Microsoft.Exchange.Data.TenantConnectorSource"
)

COMMON = (_b("Confirm"), _b("WhatIf"), _s("WarningAction"), _s("ErrorAction"))

_INBOUND = (
    _s("Name"),
    _m("AssociatedAcceptedDomains"),
    _b("CloudServicesMailEnabled"),
    _s("Comment"),
    CONNECTOR_SOURCE,
    CONNECTOR_TYPE,
    _m("EFSkipIPs"),
    _b("EFSkipLastIP"),
    _m("EFSkipMailGateway"),
    _b("EFTestMode"),
    _m("EFUsers"),
    _b("Enabled"),
    _b("RequireTls"),
    _b("RestrictDomainsToCertificate"),
    _b("RestrictDomainsToIPAddresses"),
    _m("ScanAndDropRecipients"),
    _m("SenderDomains"),
    _m("SenderIPAddresses"),
    _s("TlsSenderCertificateName"),
    _b("TreatMessagesAsInternal"),
    _m("TrustedOrganizations"),
)

_OUTBOUND = (
    _b("AllAcceptedDomains"),
    _b("CloudServicesMailEnabled"),
    _s("Comment"),
    CONNECTOR_SOURCE,
    CONNECTOR_TYPE,
    _b("Enabled"),
    _b("IsTransportRuleScoped"),
    Param("LinkForModifiedConnector", "guid"),
    _e("MtaStsMode", ("Opportunistic", "None"), "Microsoft.Exchange.Data.MtaStsMode"),
    _s("Name"),
    _m("RecipientDomains"),
    _b("RouteAllMessagesViaOnPremises"),
    _b("SenderRewritingEnabled"),
    _m("SmartHosts"),
    _e("SmtpDaneMode", ("Opportunistic", "Mandatory", "None"), "Microsoft.Exchange.Data.SmtpDaneMode"),
    _b("TestMode"),
    _s("TlsDomain"),
    _e(
        "TlsSettings",
        ("EncryptionOnly", "CertificateValidation", "DomainValidation"),
        "System.Nullable`1[Microsoft.Exchange.Data.TlsAuthLevel]",
        nullable=True,
    ),
    _b("UseMXRecord"),
)

_IDENTITY = _s("Identity")
_RESULT_SIZE = Param("ResultSize", "resultsize")

CMDLETS: dict[str, tuple[Param, ...]] = {
    "Get-InboundConnector": (_IDENTITY, _RESULT_SIZE),
    "New-InboundConnector": _INBOUND + (_m("ClientHostNames"),),
    "Set-InboundConnector": _INBOUND + (_IDENTITY,),
    "Remove-InboundConnector": (_IDENTITY,),
    "Get-OutboundConnector": (_IDENTITY, _RESULT_SIZE, _b("IncludeTestModeConnectors"), _b("IsTransportRuleScoped")),
    "New-OutboundConnector": _OUTBOUND,
    "Set-OutboundConnector": _OUTBOUND
    + (_IDENTITY, _b("IsValidated"), Param("LastValidationTimestamp", "datetime"), _m("ValidationRecipients")),
    "Remove-OutboundConnector": (_IDENTITY,),
    "Validate-OutboundConnector": (_IDENTITY, _m("Recipients")),
    "Get-AcceptedDomain": (_IDENTITY, _RESULT_SIZE),
    "Set-AcceptedDomain": (
        _IDENTITY,
        _b("CanHaveCloudCache"),
        _e(
            "DomainType",
            ("Authoritative", "ExternalRelay", "InternalRelay"),
            "Microsoft.Exchange.Data.AcceptedDomainType",
        ),
        _b("EnableNego2Authentication"),
        _s("MailFlowRegion"),
        _b("MatchSubDomains"),
        _b("OutboundOnly"),
        _b("SendingFromDomainDisabled"),
        _b("SendingToDomainDisabled"),
    ),
}

# On-premises-only cmdlets a client may try in Exchange Online (exo-cmdlets.md §6.1): not in the EXO catalogue.
UNAVAILABLE = ("New-AcceptedDomain", "Remove-AcceptedDomain")

_CANONICAL_CMDLETS = {name.lower(): name for name in (*CMDLETS, *UNAVAILABLE)}


def add_cmdlets(table: dict[str, tuple[Param, ...]]) -> Callable[[], None]:
    """Add cmdlets to the catalogue (see cmdlets.register_object_type); returns the function that removes them."""
    clash = sorted(name for name in table if name.lower() in _CANONICAL_CMDLETS)
    if clash:
        raise ValueError(f"cmdlets already in the catalogue: {', '.join(clash)}")
    CMDLETS.update(table)
    _CANONICAL_CMDLETS.update({name.lower(): name for name in table})

    def remove() -> None:
        for name in table:
            CMDLETS.pop(name, None)
            _CANONICAL_CMDLETS.pop(name.lower(), None)

    return remove


def canonical_cmdlet(name: str) -> str | None:
    """The cmdlet's canonical spelling (names are case-insensitive), or None for an unknown cmdlet."""
    return _CANONICAL_CMDLETS.get(name.lower())


def _coerce_bool(param: Param, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "$true", "$false"):
        return value.strip().lower().lstrip("$") == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise transformation(
        param.name,
        value,
        "System.Boolean",
        "Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
    )


def _coerce_scalar_str(param: Param, value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise transformation(param.name, value, "System.String", "Cannot convert a collection or object to a string.")


def _string_list(param: Param, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(_coerce_scalar_str(param, item) for item in value if item is not None)
    return (_coerce_scalar_str(param, value),)


def _coerce(param: Param, value: Any) -> Any:
    if param.kind == "bool":
        if value is None:
            raise transformation(param.name, "", "System.Boolean", "Cannot convert null to type System.Boolean.")
        return _coerce_bool(param, value)
    if param.kind == "str":
        return None if value is None else _coerce_scalar_str(param, value)
    if param.kind == "enum":
        if value is None:
            if param.nullable:
                return None
            raise transformation(
                param.name, "", param.enum_type, f"Cannot convert null to type \"{param.enum_type}\"."
            )
        text = _coerce_scalar_str(param, value)
        for option in param.values:
            if option.lower() == text.strip().lower():
                return option
        raise transformation(
            param.name,
            text,
            param.enum_type,
            f"Unable to match the identifier name {text} to a valid enumerator name. Specify one of the following "
            f"enumerator names and try again: {', '.join(param.values)}",
        )
    if param.kind == "mvp":
        if isinstance(value, dict):
            keys = {str(k).lower(): v for k, v in value.items() if not str(k).startswith("@")}
            unknown = set(keys) - {"add", "remove"}
            if unknown:
                raise transformation(
                    param.name, value, "Microsoft.Exchange.Data.MultiValuedProperty", "Only Add and Remove keys."
                )
            return Delta(_string_list(param, keys.get("add")), _string_list(param, keys.get("remove")))
        return None if value is None else _string_list(param, value)
    if param.kind == "guid":
        if value is None:
            return None
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise transformation(param.name, value, "System.Guid", "Unrecognized Guid format.") from None
    if param.kind == "datetime":
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise transformation(param.name, value, "System.DateTime", "String was not recognized as a valid DateTime.") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond:06d}0"
    if param.kind == "resultsize":
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lower() == "unlimited":
            return "Unlimited"
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise transformation(
                param.name, value, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]", "Not a number or Unlimited."
            ) from None
        if number < 1:
            raise transformation(
                param.name, value, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]", "The value must be positive."
            )
        return number
    raise AssertionError(param.kind)


def bind(cmdlet: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Map JSON parameters to canonical names and typed values, or raise the service's binding errors."""
    table = {p.name.lower(): p for p in CMDLETS[cmdlet] + COMMON}
    bound: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in raw.items():
        if "@" in key:  # "<Param>@odata.type" sidecar annotations
            continue
        param = table.get(key.lower())
        if param is None:
            unknown.append(key)
            continue
        bound[param.name] = _coerce(param, value)
    if unknown:
        raise ambiguous(unknown)
    return bound

