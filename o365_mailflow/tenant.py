"""Where a tenant lives and how to reach it: the link between a stack's ``tenant:`` section (or Pulumi
config) and an authenticated :class:`o365_mailflow.client.ExoClient`.

``TenantConfig`` is plain data so the stack loader, the CLI and the Pulumi providers can all build it;
it never carries a credential (those come from the environment or Pulumi config at call time).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TenantConfig", "CLOUD_NAMES"]

CLOUD_NAMES = ("commercial", "gcchigh", "dod", "china")


@dataclass(frozen=True)
class TenantConfig:
    emulator: bool = False
    tenant_id: str | None = None  # tenant GUID
    initial_domain: str | None = None  # e.g. contoso.onmicrosoft.com (used for the anchor mailbox)
    cloud: str = "commercial"
    endpoint: str | None = None  # admin API base URL override, e.g. https://127.0.0.1:8443
    authority: str | None = None  # authority host override, e.g. https://127.0.0.1:8443
    scope: str | None = None  # token scope override
    ca_file: str | None = None  # extra CA to trust (the emulator's); verification is never turned off

    @property
    def tenant(self) -> str:
        """The tenant segment used in URLs: the GUID if known, else the initial domain."""
        value = self.tenant_id or self.initial_domain
        if not value:
            raise ValueError("tenant config has neither a tenant id nor an initial domain")
        return value

    @property
    def label(self) -> str:
        """How plans name the tenant to a human."""
        if self.emulator:
            return f"emulated tenant {self.initial_domain or self.tenant_id or ''}".strip()
        return self.initial_domain or self.tenant_id or "unknown tenant"
