"""Where a tenant lives and how to reach it: the link between a stack's ``tenant:`` section (or Pulumi
config) and the endpoints an authenticated client talks to (:func:`o365_mailflow.connect.open_client` makes one).

``TenantConfig`` is plain data so the stack loader, the CLI and the Pulumi providers can all build it;
it never carries a credential (those come from the environment or Pulumi config at call time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

__all__ = ["TenantConfig", "INITIAL_DOMAIN_SUFFIXES", "is_initial_domain", "CLOUD_NAMES", "Cloud", "CLOUDS", "Endpoints", "resolve_endpoints",
           "emulator_state_dir", "ENV_STATE_DIR", "DEFAULT_PARALLELISM", "MAX_PARALLELISM"]

CLOUD_NAMES = ("commercial", "gcchigh", "dod", "china")

# Writes in flight at once against one tenant (apply.py's module docstring says where the number comes from);
# ``--parallelism`` changes it. Here, with the tenant's other facts, so the CLI can declare its option without
# importing apply (and the reconcile core behind it) in every `mailflow plan`.
DEFAULT_PARALLELISM = 3
# requests keeps 10 connections per host: more writes in flight would each open (and drop) a TLS connection, and
# the tenant's concurrency limit answers the excess with a retry anyway.
MAX_PARALLELISM = 10

# A tenant's initial domain (the one Microsoft created, which cannot be removed): <name>.onmicrosoft.com, in US
# government clouds sometimes <name>.onmicrosoft.us, in 21Vianet <name>.partner.onmschina.cn. The anchor mailbox
# must name it or the tenant GUID (exo-admin-api.md §1.3: a custom domain in the anchor is not known to work).
INITIAL_DOMAIN_SUFFIXES = (".onmicrosoft.com", ".onmicrosoft.us", ".partner.onmschina.cn")


def is_initial_domain(domain: str) -> bool:
    """Whether ``domain`` has the shape of a tenant's initial domain (not a custom, verified domain)."""
    name = domain.strip().lower().rstrip(".")
    return any(name.endswith(s) and len(name) > len(s) for s in INITIAL_DOMAIN_SUFFIXES)


@dataclass(frozen=True)
class Cloud:
    """Where one Microsoft 365 cloud keeps its token authority and its Exchange admin API (reference §1.2)."""

    name: str
    authority_host: str  # https://login...  (the tenant is appended)
    api_host: str  # admin API host; the token audience is https://{api_host}
    api_host_aliases: tuple[str, ...] = ()  # other hosts the service may put in @odata.nextLink

    @property
    def scope(self) -> str:
        return f"https://{self.api_host}/.default"


# Reference §1.2. Commercial and GCC High are documented and agree everywhere.
# DoD: the v2 docs and M365Permissions (a production client of this same beta endpoint) say
#   outlook-dod.office365.us; the module's ConnectionUri says webmail.apps.mil. We follow the admin-API users.
# China: Microsoft's Admin API table (Learn, "Get started with the Exchange Online Admin API") says
#   outlook.office365.cn; the module's ConnectionUri and M365Permissions say partner.outlook.cn. Since issue #14 we
#   follow Microsoft's own Admin API table (medium confidence: not checked against a 21Vianet tenant) and accept
#   partner.outlook.cn as an alias for redirects and next-page links; TenantConfig.endpoint / .scope override both.
#   Authority: MSAL 1.39 marks login.chinacloudapi.cn deprecated (msal/authority.py DEPRECATED_AZURE_CHINA) in
#   favour of login.partner.microsoftonline.cn.
# The token audience is assumed to be https://{api_host} for every cloud ([INF] in the reference).
CLOUDS: dict[str, Cloud] = {
    "commercial": Cloud("commercial", "https://login.microsoftonline.com", "outlook.office365.com",
                        ("outlook.office.com",)),
    "gcchigh": Cloud("gcchigh", "https://login.microsoftonline.us", "outlook.office365.us"),
    "dod": Cloud("dod", "https://login.microsoftonline.us", "outlook-dod.office365.us"),
    "china": Cloud("china", "https://login.partner.microsoftonline.cn", "outlook.office365.cn", ("partner.outlook.cn",)),
}


@dataclass(frozen=True)
class TenantConfig:
    """A stack's ``tenant:`` section (or Pulumi config): which tenant, in which cloud, and any endpoint overrides."""

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


@dataclass(frozen=True)
class Endpoints:
    """The three URLs a client needs, after applying a config's overrides to its cloud's defaults."""

    api_base: str  # e.g. https://outlook.office365.com (no trailing slash); InvokeCommand lives under it
    authority: str  # MSAL authority: https://login.microsoftonline.com/<tenant>
    scope: str  # e.g. https://outlook.office365.com/.default
    known_authority: bool  # False when overridden (the emulator): MSAL must skip instance discovery
    api_hosts: tuple[str, ...]  # hosts that may receive the bearer token (for @odata.nextLink)
    # Domains whose subdomains may receive it too: a regional redirect sends some tenants to a tenant-specific host
    # under the cloud's admin host (exo-admin-api.md §1.4, ScubaGear/go-exoscc).
    api_domains: tuple[str, ...] = ()

    def may_receive_token(self, host: str) -> bool:
        """Whether ``host`` is an admin-API host of this cloud (or the configured endpoint): the bearer token may
        go there in a redirect or a next-page link, and nowhere else."""
        host = host.lower().rstrip(".")
        return host in self.api_hosts or any(host.endswith("." + d) for d in self.api_domains)

def resolve_endpoints(config: TenantConfig) -> Endpoints:
    """Apply ``endpoint``/``authority``/``scope`` overrides to the cloud table. Raises ValueError on a bad cloud."""
    try:
        cloud = CLOUDS[config.cloud]
    except KeyError:
        raise ValueError(f"unknown cloud {config.cloud!r} (allowed: {', '.join(CLOUD_NAMES)})") from None

    api_base = (config.endpoint or f"https://{cloud.api_host}").rstrip("/")
    if urlsplit(api_base).scheme != "https":
        raise ValueError(f"the admin API endpoint must be an https:// URL, got {api_base!r}")
    authority_base = (config.authority or cloud.authority_host).rstrip("/")
    if urlsplit(authority_base).scheme != "https":
        raise ValueError(f"the authority must be an https:// URL, got {authority_base!r}")
    host = (urlsplit(api_base).hostname or "").lower()
    hosts = (host,) if config.endpoint else (host, *cloud.api_host_aliases)
    domains = () if config.endpoint else (cloud.api_host, *cloud.api_host_aliases)
    if host in _LOOPBACK_NAMES:
        # A local endpoint (the emulator): every loopback name is the same machine, so a redirect between them
        # keeps the token on it. This is what lets the tests redirect 127.0.0.1 -> localhost:446.
        hosts = tuple(dict.fromkeys((host, *_LOOPBACK_NAMES)))
    return Endpoints(
        api_base=api_base,
        authority=f"{authority_base}/{config.tenant}",
        scope=config.scope or cloud.scope,
        known_authority=config.authority is None,
        api_hosts=hosts,
        api_domains=domains,
    )


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

ENV_STATE_DIR = "MAILFLOW_STATE_DIR"


def emulator_state_dir(
    env: Mapping[str, str] | None = None, state_dir: Path | None = None, root: Path | None = None
) -> Path:
    """Where the local emulator keeps its state: ``state_dir``, else ``$MAILFLOW_STATE_DIR/emulator``, else
    ``<root or cwd>/.mailflow/emulator`` (project-local, like ``.terraform/``). The client side's one place for
    this rule (the CLI passes its project root); the emulator's own default follows the same rule, so the CLI
    and ``mailflow emulator serve`` meet in one directory."""
    env = os.environ if env is None else env
    if state_dir is not None:
        return Path(state_dir)
    if env.get(ENV_STATE_DIR):
        return Path(env[ENV_STATE_DIR]) / "emulator"
    return (root or Path.cwd()) / ".mailflow" / "emulator"
