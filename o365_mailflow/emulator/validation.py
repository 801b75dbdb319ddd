"""The service's validation rules and warnings, checked on the merged object.

Why: Exchange runs its object-level rules (``ValidateWrite``) on the object as it will be saved, i.e. the
current state plus the requested changes, and its task-level rules on the parameters given
(exo-cmdlets.md §2.2, §4.2, §6.2, §12). Rules are written from that reference; identifiers in the ErrorId
slot are the decompiled resource names ([X] in the reference), texts are paraphrases because the real
English texts are not known.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from .errors import CmdletError, validation

__all__ = [
    "check_address_space",
    "check_sender_ips",
    "check_smart_hosts",
    "check_domain_with_subdomains",
    "check_inbound",
    "check_outbound",
    "check_accepted_domain",
    "inbound_overlap_warnings",
    "unroutable_internal_relay",
    "domain_matches",
    "select_outbound",
    "check_ef_skip_ips",
    "check_addresses",
    "check_tls_certificate_name",
    "routing_warning",
    "domain_routing_warning",
    "ffo_certificate",
]

_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")

# Reserved/private IPv4 space the service refuses in connectors (IPRangeInConnectorContainsReservedIPAddresses).
# [I] the exact list is not in the reference. Choice: RFC 1918, loopback, link-local, "this network", CGNAT,
# multicast and class E. The RFC 5737 documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) are
# accepted so examples from Microsoft's docs work; set Settings.reject_documentation_ips to refuse them too.
_RESERVED = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    )
]
_DOCUMENTATION = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
# Exchange Online Protection front-door ranges (a subset of the published list) that OnPremises inbound
# connectors may not claim ([X] FFO-overlap check; the range list itself is [I]).
_FFO = [ipaddress.ip_network(n) for n in ("40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17")]
_FFO_CERT_SUFFIXES = ("mail.protection.outlook.com", "protection.outlook.com", "outlook.com")


def _is_domain(text: str) -> bool:
    return bool(_DOMAIN_RE.match(text)) and "." in text.strip(".") and len(text) <= 255


def check_domain_with_subdomains(param: str, value: str, *, allow_star: bool) -> str:
    """SmtpDomainWithSubdomains: ``domain``, ``*.domain`` or (if allowed) ``*``; no embedded wildcard."""
    text = value.strip()
    if text == "*":
        if allow_star:
            return text
        raise validation(
            "DisallowStarSmtpDomainWithSubdomains",
            f"The value '*' isn't allowed for {param}; specify a domain such as contoso.com or *.contoso.com.",
        )
    body = text[2:] if text.startswith("*.") else text
    if "*" in body or not _is_domain(body):
        raise validation(
            "InvalidSmtpDomainWithSubdomains",
            f"'{value}' isn't a valid value for {param}. Use a domain such as contoso.com, *.contoso.com"
            + (" or *." if allow_star else "."),
        )
    return text


def check_address_space(value: str) -> str:
    """SenderDomains entries: accept ``smtp:<domain>;<cost>`` or a bare domain; store ``smtp:<domain>;1``."""
    text = value.strip()
    domain = text
    cost = "1"
    match = re.match(r"^smtp:(.+?)(?:;(\d+))?$", text, re.IGNORECASE)
    if match:
        domain, cost = match.group(1), match.group(2) or "1"
    if domain != "*" and ("*" in (domain[2:] if domain.startswith("*.") else domain)):
        raise validation("InvalidAddressSpace", f"The address space '{value}' isn't valid: '*' may only lead the domain.")
    check_domain_with_subdomains("SenderDomains", domain, allow_star=True)
    return f"smtp:{domain};{cost}"


def _reserved(net: ipaddress.IPv4Network, reject_documentation: bool) -> bool:
    blocked = _RESERVED + (_DOCUMENTATION if reject_documentation else [])
    return any(net.overlaps(r) for r in blocked)


def check_sender_ips(values: Iterable[str], *, reject_documentation: bool = False, on_premises: bool = False) -> None:
    """SenderIPAddresses: IPv4 single address or CIDR /24../32 only (exo-cmdlets.md §2.1)."""
    for value in values:
        text = value.strip()
        if ":" in text:
            raise validation(
                "IPv6AddressesRangesAreNotAllowedInConnector",
                f"IPv6 addresses and ranges aren't allowed in a connector: '{value}'.",
            )
        if "-" in text:
            raise validation(
                "InvalidIPRangeFormat", f"'{value}' isn't a supported format; use a single IPv4 address or a CIDR range."
            )
        address, _, prefix = text.partition("/")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise validation(
                "ConnectorIPRangeContainsInvalidIPv4Address", f"'{value}' contains an invalid IPv4 address."
            ) from None
        if prefix:
            if not prefix.isdigit() or not 24 <= int(prefix) <= 32:
                raise validation(
                    "InvalidCidrRange",
                    f"The CIDR range '{value}' isn't valid; the prefix length must be between 24 and 32.",
                )
        net = ipaddress.IPv4Network(text, strict=False)
        if _reserved(net, reject_documentation):
            raise validation(
                "IPRangeInConnectorContainsReservedIPAddresses",
                f"The IP address range '{value}' contains reserved or private IP addresses.",
            )
        if on_premises and any(net.overlaps(f) for f in _FFO):
            raise validation(
                "IPRangeInConnectorOverlapsFfoDatacenterIPAddresses",
                f"The IP address range '{value}' overlaps Microsoft datacenter IP addresses.",
            )


@functools.lru_cache(maxsize=65536)
def _interval(value: str) -> tuple[int, int] | None:
    """An IPv4 address or CIDR as (first, last) integers; cached because every create compares with all."""
    try:
        net = ipaddress.IPv4Network(value.strip(), strict=False)
    except ValueError:
        return None
    return int(net.network_address), int(net.broadcast_address)


def check_ef_skip_ips(values: Iterable[str]) -> None:
    """EFSkipIPs: single IP, ``a-b`` range or CIDR; IPv6 allowed [I, vendor scripts send IPv6]."""
    for value in values:
        text = value.strip()
        try:
            if "-" in text:
                low, high = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
                if low.version != high.version or low > high:  # type: ignore[operator]
                    raise ValueError
            else:
                ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise validation("InvalidIPRangeFormat", f"'{value}' isn't a valid IP address, range or CIDR.") from None


def check_smart_hosts(values: Iterable[str], *, reject_documentation: bool = False) -> None:
    """SmartHosts: FQDN, IPv4 address or CIDR; no port (``host:587``), no IPv6, no reserved IPs."""
    for value in values:
        text = value.strip().strip("[]")
        if ":" in text:
            if text.count(":") == 1 and text.rsplit(":", 1)[1].isdigit():
                raise validation(
                    "InvalidSmartHost",
                    f"'{value}' isn't a valid smart host: a port can't be specified (mail is always sent on port 25).",
                )
            raise validation("SmartHostsIPValidationFailed", f"'{value}' isn't a valid smart host: only IPv4 is supported.")
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            net = None
        if net is not None:
            if _reserved(net, reject_documentation):
                raise validation(
                    "IPRangeInConnectorContainsReservedIPAddresses",
                    f"The smart host '{value}' is a reserved or private IP address.",
                )
            if any(net.overlaps(f) for f in _FFO):
                raise validation(
                    "SmartHostsIPValidationFailed",
                    f"The smart host '{value}' is a Microsoft datacenter IP address; point it at your own server.",
                )
            continue
        if re.fullmatch(r"[0-9./]+", text):
            raise validation("SmartHostsIPValidationFailed", f"'{value}' isn't a valid IPv4 smart host.")
        if not _is_domain(text):
            raise validation("InvalidSmartHost", f"'{value}' isn't a valid smart host name.")


def check_addresses(param: str, values: Iterable[str]) -> None:
    for value in values:
        local, at, domain = value.strip().partition("@")
        if not at or not local or not _is_domain(domain):
            raise validation("InvalidSmtpAddress", f"'{value}' in {param} isn't a valid SMTP address.")


def check_tls_certificate_name(value: str) -> None:
    check_domain_with_subdomains("TlsSenderCertificateName", value, allow_star=False)


def domain_matches(pattern: str, domain: str) -> bool:
    """Does a RecipientDomains entry (``*``, ``*.x`` or ``x``) cover ``domain``?"""
    pattern = pattern.lower().strip()
    domain = domain.lower().strip()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        base = pattern[2:]
        return domain == base or domain.endswith("." + base)
    return pattern == domain


# -- object-level rules ----------------------------------------------------------------------------------


def check_inbound(obj: dict[str, Any]) -> None:
    """exo-cmdlets.md §2.2 rules 1-7 on the merged inbound connector."""
    on_prem = obj["ConnectorType"] == "OnPremises"
    has_ips = bool(obj["SenderIPAddresses"])
    has_cert = bool(obj["TlsSenderCertificateName"])
    if on_prem and not has_ips and not has_cert:
        raise validation(
            "InboundConnectorMissingTlsCertificateOrSenderIP",
            "An OnPremises inbound connector needs SenderIPAddresses or TlsSenderCertificateName.",
            object_level=True,
        )
    if has_cert and not obj["RequireTls"]:
        raise validation(
            "InboundConnectorRequiredTlsSettingsInvalid",
            "TlsSenderCertificateName can only be set when RequireTls is $true.",
            object_level=True,
        )
    if obj["RestrictDomainsToIPAddresses"] and not has_ips:
        raise validation(
            "InboundConnectorInvalidRestrictDomainsToIPAddresses",
            "RestrictDomainsToIPAddresses is $true but SenderIPAddresses is empty.",
            object_level=True,
        )
    if obj["RestrictDomainsToIPAddresses"] and obj["RestrictDomainsToCertificate"]:
        raise validation(
            "InboundConnectorInvalidIPCertificateCombinations",
            "RestrictDomainsToIPAddresses and RestrictDomainsToCertificate can't both be $true.",
            object_level=True,
        )
    if obj["RestrictDomainsToCertificate"] and not has_cert:
        raise validation(
            "InboundConnectorInvalidRestrictDomainsToCertificate",
            "RestrictDomainsToCertificate is $true but TlsSenderCertificateName isn't set.",
            object_level=True,
        )
    if not on_prem and obj["CloudServicesMailEnabled"]:
        raise validation(
            "InboundConnectorIncorrectCloudServicesMailEnabled",
            "CloudServicesMailEnabled can only be $true on an OnPremises connector.",
            object_level=True,
        )
    if obj["TreatMessagesAsInternal"] and (obj["CloudServicesMailEnabled"] or not on_prem):
        # [D] rule; the identifier is not in the reference ([I] name).
        raise validation(
            "InboundConnectorIncorrectTreatMessagesAsInternal",
            "TreatMessagesAsInternal can only be $true on an OnPremises connector with CloudServicesMailEnabled $false.",
            object_level=True,
        )
    if len(obj["Comment"] or "") > 1024:
        raise validation("CommentTooLong", "Comment can't be longer than 1024 characters.", object_level=True)


def check_outbound(obj: dict[str, Any]) -> None:
    """exo-cmdlets.md §4.2 rules 1-5 (object part) on the merged outbound connector."""
    on_prem = obj["ConnectorType"] == "OnPremises"
    scoped = obj["IsTransportRuleScoped"]
    has_domains = bool(obj["RecipientDomains"]) or obj["AllAcceptedDomains"]
    if scoped == has_domains:
        raise validation(
            "OutboundConnectorIncorrectTransportRuleScopedParameters",
            "A connector is either scoped to transport rules (IsTransportRuleScoped $true, no RecipientDomains or "
            "AllAcceptedDomains) or applies to RecipientDomains or AllAcceptedDomains, not both and not neither.",
            object_level=True,
        )
    if obj["TlsDomain"] and obj["TlsSettings"] != "DomainValidation":
        raise validation(
            "OutboundConnectorTlsSettingsInvalidTlsDomainWithoutDomainValidation",
            "The TlsDomain parameter can only be set if the TlsSettings parameter is set to DomainValidation.",
            object_level=True,
        )
    if obj["TlsSettings"] == "DomainValidation" and not obj["TlsDomain"]:
        raise validation(
            "OutboundConnectorTlsSettingsInvalidDomainValidationWithoutTlsDomain",
            "TlsSettings DomainValidation requires TlsDomain.",
            object_level=True,
        )
    if not obj["UseMXRecord"] and not obj["SmartHosts"]:
        raise validation(
            "OutboundConnectorSmartHostShouldBePresentIfUseMXRecordFalse",
            "SmartHosts must be specified when UseMXRecord is $false.",
            object_level=True,
        )
    if obj["UseMXRecord"] and obj["SmartHosts"]:
        raise validation(
            "OutboundConnectorUseMXRecordShouldBeFalseIfSmartHostsIsPresent",
            "UseMXRecord must be $false when SmartHosts are specified.",
            object_level=True,
        )
    if not on_prem:
        for field, error_id in (
            ("RouteAllMessagesViaOnPremises", "OutboundConnectorIncorrectRouteAllMessagesViaOnPremises"),
            ("CloudServicesMailEnabled", "OutboundConnectorIncorrectCloudServicesMailEnabled"),
            ("AllAcceptedDomains", "InboundConnectorIncorrectAllAcceptedDomains"),  # sic, as in the service
            ("SenderRewritingEnabled", "OutboundConnectorIncorrectSenderRewritingEnabled"),  # [I] name
        ):
            if obj[field]:
                raise validation(error_id, f"{field} can only be $true on an OnPremises connector.", object_level=True)
    if on_prem and obj["UseMXRecord"]:
        raise validation(
            "OnPremisesConnectorHasRouteUsingMX",
            "An OnPremises outbound connector must route through SmartHosts (UseMXRecord $false).",
        )
    if on_prem and not obj["RouteAllMessagesViaOnPremises"] and "*" in obj["RecipientDomains"]:
        raise validation(
            "RecipientDomainStarOnPremiseOutboundConnector",
            "RecipientDomains '*' on an OnPremises connector requires RouteAllMessagesViaOnPremises $true.",
        )
    if len(obj["Comment"] or "") > 1024:
        raise validation("CommentTooLong", "Comment can't be longer than 1024 characters.", object_level=True)


def check_accepted_domain(obj: dict[str, Any]) -> None:
    if obj["MatchSubDomains"] and obj["DomainType"] != "InternalRelay":
        raise validation(
            "MatchSubDomainsIsInternalRelayOnlyException",
            "MatchSubDomains can only be set on InternalRelay accepted domains.",
            object_level=True,
        )


def inbound_overlap_warnings(obj: dict[str, Any], others: Iterable[dict[str, Any]]) -> list[str]:
    """Overlap with another enabled inbound connector's IPs is only a warning (exo-cmdlets.md §2.1)."""
    mine = [r for r in map(_interval, obj["SenderIPAddresses"]) if r is not None]
    if not mine:
        return []
    names = []
    for other in others:
        if other["Guid"] == obj["Guid"] or not other["Enabled"]:
            continue
        theirs = [r for r in map(_interval, other["SenderIPAddresses"]) if r is not None]
        if any(a[0] <= b[1] and b[0] <= a[1] for a in mine for b in theirs):
            names.append(other["Name"])
    if not names:
        return []
    return [
        "The SenderIPAddresses of this connector overlap those of the enabled inbound connector(s) "
        + ", ".join(f"'{n}'" for n in names)
        + ". [SenderIPAddressOverlapsExistingTenantInboundConnectors]"
    ]


def _covered(domain: dict[str, Any], outbound: Iterable[dict[str, Any]]) -> bool:
    name = domain["DomainName"]
    for conn in outbound:
        if not conn["Enabled"] or conn["ConnectorType"] != "OnPremises":
            continue
        if conn["AllAcceptedDomains"]:
            return True
        patterns = conn["RecipientDomains"]
        if not any(domain_matches(p, name) for p in patterns):
            continue
        if domain["MatchSubDomains"] and not any(domain_matches(p, "sub." + name) for p in patterns):
            continue
        return True
    return False


def unroutable_internal_relay(domains: Iterable[dict[str, Any]], outbound: Iterable[dict[str, Any]]) -> list[str]:
    """InternalRelay domains that no enabled OnPremises outbound connector covers (exo-cmdlets.md §4.2 item 6)."""
    outbound = list(outbound)
    return [d["DomainName"] for d in domains if d["DomainType"] == "InternalRelay" and not _covered(d, outbound)]


def routing_warning(domains: list[str]) -> str:
    return (
        "Mail for recipients not found in Exchange Online can't be routed for the InternalRelay accepted domain(s) "
        + ", ".join(domains)
        + ": no enabled OnPremises outbound connector covers them. [AcceptedDomainsCannotBeRoutedByOutboundConnector]"
    )


def domain_routing_warning(domain: str) -> str:
    return (
        f"The accepted domain '{domain}' is InternalRelay but no enabled OnPremises outbound connector routes it; "
        "create one that covers the domain. [OutboundConnectorToRouteAcceptedDomainNotFound]"
    )


def ffo_certificate(value: str) -> CmdletError | None:
    name = value.lower().lstrip("*.")
    if any(name == s or name.endswith("." + s) for s in _FFO_CERT_SUFFIXES):
        return validation(
            "TlsSenderCertificateNameMatchesFfoFDSmtpCertificate",
            f"TlsSenderCertificateName '{value}' matches a Microsoft front-door certificate.",
        )
    return None


def _accepted(domain: str, accepted: Iterable[dict[str, Any]]) -> bool:
    for entry in accepted:
        name = entry["DomainName"].lower()
        if domain == name or (entry["MatchSubDomains"] and domain.endswith("." + name)):
            return True
    return False


def select_outbound(
    domain: str,
    outbound: Iterable[dict[str, Any]],
    accepted: Iterable[dict[str, Any]],
    *,
    order: str = "specific_wildcard_first",
) -> dict[str, Any] | None:
    """The outbound connector mail to ``domain`` would take, or None for MX delivery (exo-cmdlets.md §10).

    Exact RecipientDomains match first. Then, because the doc's list and its worked example disagree,
    ``order`` decides: "specific_wildcard_first" (the example: the most specific ``*.x`` match, then an
    AllAcceptedDomains connector for an accepted domain) or "all_accepted_first" (the literal list). A bare
    ``*`` comes last either way. Disabled and rule-scoped connectors never apply; [I] test-mode ones do.
    """
    domain = domain.lower().strip()
    usable = [c for c in outbound if c["Enabled"] and not c["IsTransportRuleScoped"]]
    for conn in usable:
        if any(p.lower() == domain for p in conn["RecipientDomains"] if not p.startswith("*")):
            return conn
    best: tuple[int, dict[str, Any]] | None = None
    for conn in usable:
        for pattern in conn["RecipientDomains"]:
            if pattern.startswith("*.") and domain_matches(pattern, domain):
                if best is None or len(pattern) > best[0]:
                    best = (len(pattern), conn)
    wildcard = best[1] if best else None
    all_accepted = next((c for c in usable if c["AllAcceptedDomains"]), None) if _accepted(domain, accepted) else None
    ordered = [wildcard, all_accepted] if order == "specific_wildcard_first" else [all_accepted, wildcard]
    for candidate in ordered:
        if candidate is not None:
            return candidate
    return next((c for c in usable if "*" in c["RecipientDomains"]), None)
