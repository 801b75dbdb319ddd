"""Behaviour switches where the reference's sources disagree, and server tunables.

Why: where the sources conflict (exo-cmdlets.md §8, §5, §10) the emulator picks one behaviour and makes it a
setting, so a test or a user can run against the other reading too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["Settings"]

_CHOICES = {
    "test_mode_listing": ("only", "include"),
    "unavailable_cmdlet_answer": ("forbidden", "command_not_found"),
    "wildcard_routing_order": ("specific_wildcard_first", "all_accepted_first"),
}


@dataclass(frozen=True)
class Settings:
    # Inbound RequireTls default: current Learn says $true, older docs / Microsoft365DSC / a live EAC object
    # say $false. Choice: $false, the reference's recommendation (exo-cmdlets.md §8).
    inbound_require_tls_default: bool = False
    # Get-OutboundConnector -IncludeTestModeConnectors $true: "only" (the documented reading: only test-mode
    # connectors) or "include" (Microsoft365DSC's reading: all connectors). Choice: "only", the [D] text;
    # a client that unions a plain Get with an IncludeTestModeConnectors Get is correct under both.
    test_mode_listing: str = "only"
    # New-/Remove-AcceptedDomain (on-premises only, absent from the EXO catalogue, exo-admin-api.md §7.1):
    # "forbidden" answers like any cmdlet outside the catalogue (403, NUL body); "command_not_found" answers
    # 400 CommandNotFoundException with a readable text, as an EXO PowerShell session would. Choice: "forbidden".
    unavailable_cmdlet_answer: str = "forbidden"
    # Outbound routing order when a wildcard RecipientDomains entry and an AllAcceptedDomains connector both
    # cover a domain (exo-cmdlets.md §10 item 2, list vs worked example). "specific_wildcard_first" follows the
    # worked example (the reference's recommendation); "all_accepted_first" follows the literal list. Used by the
    # emulator's route selection (validation.select_outbound), reported by Validate-OutboundConnector; the
    # InternalRelay warning is about coverage ([X]) and does not depend on the order.
    wildcard_routing_order: str = "specific_wildcard_first"
    # Refuse the RFC 5737 documentation ranges as "reserved" IPs too (default: accepted, see validation.py).
    reject_documentation_ips: bool = False
    # Access-token lifetime in seconds (the fault knob token_lifetime overrides it per tenant).
    token_lifetime: int = 3600
    # Page size when the client sends no Prefer: odata.maxpagesize ([I]: the service default equals ResultSize).
    default_page_size: int = 1000
    # Get-* ResultSize default ([D] 1000).
    default_result_size: int = 1000
    # $skiptoken lifetime: "Expired or Invalid pagination request. Default Expiry time is 00:30:00".
    pagination_expiry: int = 1800
    # Emit "<Prop>@odata.type" sidecar annotations like the live service (clients must ignore '@' keys).
    annotations: bool = True
    # Status of the plain-text "maximum number of concurrent requests per tenant" answer ([I]: 429 or 503).
    concurrency_text_status: int = 429

    def with_overrides(self, overrides: dict[str, Any] | None) -> "Settings":
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown emulator settings: {', '.join(sorted(unknown))}")
        for name, allowed in _CHOICES.items():
            if name in overrides and overrides[name] not in allowed:
                raise ValueError(f"{name} must be one of: {', '.join(allowed)}")
        return replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
