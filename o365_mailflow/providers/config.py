"""Which tenant the providers talk to and with what credential, without either ever reaching Pulumi state.

The dynamic-provider host pickles the provider object into the ``__provider`` input of every resource, so
the provider must hold nothing: no credential, no client, no session. The engine hands the stack's config to
``ResourceProvider.configure()`` once per host process; this module turns that config into
:class:`ProviderSettings` and keeps it in a module-level registry keyed by the (non-secret) project name.
Provider methods look their settings up at call time and build the client lazily (``session.py``).

Config keys, always in the namespace ``o365-mailflow`` whatever the program's project is called (reading the
program's own namespace first made ``myinfra:cloud`` or ``myinfra:tenantId`` of another project count as ours):

==========================  =====================================================================
``tenantId``                tenant GUID
``initialDomain``           ``<tenant>.onmicrosoft.com`` (used when no tenant id is given)
``clientId``                app registration (client) id
``clientSecret``            client secret (``pulumi config set --secret``)
``certificatePath``         PFX/PEM certificate of the app
``certificatePassword``     its password (``pulumi config set --secret``)
``federatedTokenFile``      workload-identity token file (Kubernetes, ...); in GitHub Actions set only
                            ``clientId``: a fresh OIDC token is requested from the runner for each sign-in
``credential``              ``managedIdentity``: the Azure machine's managed identity (``clientId``, if
                            set, names a user-assigned one)
``cloud``                   ``commercial`` | ``gcchigh`` | ``dod`` | ``china``
``endpoint``                admin API base URL override
``authority``               token authority host override
``scope``                   token scope override (an emulator reached through ``endpoint``)
``caFile``                  extra CA certificate to trust (e.g. the emulator's)
``emulator``                ``true``: use the local emulated tenant (``$MAILFLOW_STATE_DIR`` or ``.mailflow``)
``emulatorStateDir``        where the emulated tenant keeps its state (default: as the mailflow CLI)
==========================  =====================================================================

Without any of these keys the providers fall back to azure-identity's environment variables
(``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``, ...), like the ``mailflow`` CLI.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

from ..credentials import (
    ENV_CERTIFICATE_PASSWORD,
    ENV_CERTIFICATE_PATH,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_FEDERATED_TOKEN_FILE,
    ENV_TENANT_ID,
    ENV_TOKEN_CREDENTIALS,
    MANAGED_IDENTITY,
)
from ..tenant import CLOUD_NAMES, TenantConfig

__all__ = [
    "CONFIG_NAMESPACE",
    "CONFIG_KEYS",
    "SECRET_KEYS",
    "ProviderSettings",
    "ConfigurationError",
    "settings_from_config",
    "settings_from_env",
    "register_settings",
    "current_settings",
]

CONFIG_NAMESPACE = "o365-mailflow"
CONFIG_KEYS = (
    "tenantId",
    "initialDomain",
    "clientId",
    "clientSecret",
    "certificatePath",
    "certificatePassword",
    "federatedTokenFile",
    "credential",
    "cloud",
    "endpoint",
    "authority",
    "scope",
    "caFile",
    "emulator",
    "emulatorStateDir",
)
SECRET_KEYS = ("clientSecret", "certificatePassword")

# Credential values are handed to the client layer as azure-identity environment names, so that the CLI and
# the providers build credentials through the one function that reads them (tenant.open_client).
_CREDENTIAL_ENV = {
    "clientId": ENV_CLIENT_ID,
    "clientSecret": ENV_CLIENT_SECRET,
    "certificatePath": ENV_CERTIFICATE_PATH,
    "certificatePassword": ENV_CERTIFICATE_PASSWORD,
    "federatedTokenFile": ENV_FEDERATED_TOKEN_FILE,
    "credential": ENV_TOKEN_CREDENTIALS,
}
# `credential:` values and the azure-identity AZURE_TOKEN_CREDENTIALS value each one stands for.
_CREDENTIAL_KINDS = {"managedidentity": MANAGED_IDENTITY}


class ConfigurationError(ValueError):
    """The stack's ``o365-mailflow:*`` config cannot describe a tenant. Never quotes a secret value."""


class _ConfigLike(Protocol):
    def get(self, key: str) -> object: ...


@dataclass(frozen=True)
class ProviderSettings:
    """Everything a provider needs to reach the tenant. Lives only in the host process's memory."""

    tenant: TenantConfig
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)  # AZURE_* names -> values
    state_dir: Path | None = None  # emulated tenant's state directory (emulator only)

    @property
    def key(self) -> tuple[str, ...]:
        """A non-secret identity for caching a client and a snapshot per tenant."""
        return (
            str(self.tenant.emulator),
            self.tenant.tenant_id or "",
            self.tenant.initial_domain or "",
            self.tenant.endpoint or "",
            self.tenant.cloud,
            self.credentials.get(ENV_CLIENT_ID, ""),
            str(self.state_dir or ""),
        )

    def client_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment the client layer reads credentials from: the process's, overlaid with config.

        When the config names a credential, the AZURE_* variables of the process are dropped first, so a
        stray ``AZURE_CLIENT_SECRET`` cannot silently win over a configured certificate; with ``emulator: true``
        and no configured credential they are dropped too (the emulator's well-known app is used).
        """
        env = dict(os.environ if base is None else base)
        # The emulated tenant without configured credentials uses its well-known app: a CI job's own AZURE_*
        # credential (e.g. a GitHub OIDC token file) is meant for a real tenant and would be refused there.
        if self.credentials or self.tenant.emulator:
            for name in _CREDENTIAL_ENV.values():
                env.pop(name, None)
            env.update(self.credentials)
        if self.tenant.tenant_id:
            env[ENV_TENANT_ID] = self.tenant.tenant_id
        return env

    def __repr__(self) -> str:  # the dataclass repr already hides credentials; say which keys are set
        names = sorted(self.credentials)
        return f"ProviderSettings(tenant={self.tenant!r}, credentials={names}, state_dir={self.state_dir!r})"


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _lookup(config: _ConfigLike, key: str) -> str | None:
    """``o365-mailflow:key`` only (never another project's key of the same name), as text: the engine hands
    config values over as strings, ``pulumi config --json`` may give a bare true or a number."""
    value = config.get(f"{CONFIG_NAMESPACE}:{key}")
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def settings_from_config(config: _ConfigLike, env: Mapping[str, str] | None = None) -> ProviderSettings | None:
    """Settings from the stack config, or ``None`` when the config sets none of the keys.

    A config that names no tenant (e.g. only ``cloud``, or only a credential) takes the tenant id from
    ``AZURE_TENANT_ID``, as the mailflow CLI does.
    """
    env = os.environ if env is None else env
    values = {key: _lookup(config, key) for key in CONFIG_KEYS}
    if all(value is None for value in values.values()):
        return None
    emulator = values["emulator"] is not None and _truthy(values["emulator"])
    cloud = str(values["cloud"] or "commercial").lower()
    if cloud not in CLOUD_NAMES:
        raise ConfigurationError(
            f"{CONFIG_NAMESPACE}:cloud is {cloud!r}; allowed: {', '.join(CLOUD_NAMES)}."
        )
    if values["credential"] is not None:
        kind = _CREDENTIAL_KINDS.get(str(values["credential"]).strip().lower())
        if kind is None:
            raise ConfigurationError(
                f"{CONFIG_NAMESPACE}:credential is {values['credential']!r}; allowed: managedIdentity (leave it unset "
                "for a client secret, a certificate or a federated token)."
            )
        values["credential"] = kind
    if not (emulator or values["tenantId"] or values["initialDomain"]):
        values["tenantId"] = (env.get(ENV_TENANT_ID) or "").strip() or None
    if not (emulator or values["tenantId"] or values["initialDomain"]):
        raise ConfigurationError(
            f"No tenant configured: set {CONFIG_NAMESPACE}:tenantId (or {CONFIG_NAMESPACE}:initialDomain) for this "
            f"stack with `pulumi config set`, or {CONFIG_NAMESPACE}:emulator true for the local emulated tenant, "
            "or AZURE_TENANT_ID in the environment."
        )
    tenant = TenantConfig(
        emulator=emulator,
        tenant_id=values["tenantId"],
        initial_domain=(values["initialDomain"] or None) and str(values["initialDomain"]).lower(),
        cloud=cloud,
        endpoint=values["endpoint"],
        authority=values["authority"],
        scope=values["scope"],
        ca_file=values["caFile"],
    )
    credentials = {env: str(values[key]) for key, env in _CREDENTIAL_ENV.items() if values[key] is not None}
    # Without emulatorStateDir the client layer picks the place ($MAILFLOW_STATE_DIR/emulator, else the
    # project's .mailflow/emulator), so `pulumi up` and the mailflow CLI meet the same emulated tenant.
    state_dir = Path(values["emulatorStateDir"]) if emulator and values["emulatorStateDir"] else None
    return ProviderSettings(tenant=tenant, credentials=credentials, state_dir=state_dir)


def settings_from_env(env: Mapping[str, str] | None = None) -> ProviderSettings:
    """The fallback when the stack config names no tenant: azure-identity's environment variables."""
    env = os.environ if env is None else env
    tenant_id = env.get(ENV_TENANT_ID) or None
    if not tenant_id:
        raise ConfigurationError(
            f"No tenant configured: set {CONFIG_NAMESPACE}:tenantId and a credential with `pulumi config set`, "
            f"or {CONFIG_NAMESPACE}:emulator true, or AZURE_TENANT_ID and AZURE_CLIENT_* in the environment."
        )
    return ProviderSettings(tenant=TenantConfig(tenant_id=tenant_id), credentials={})


_REGISTRY: dict[str, ProviderSettings] = {}
_REGISTRY_LOCK = threading.Lock()


def _project() -> str:
    # The dynamic-provider host configures its Settings from PULUMI_PROJECT (default "project").
    return os.environ.get("PULUMI_PROJECT") or "project"


def register_settings(settings: ProviderSettings | None) -> None:
    """Remember the settings for this host process (called from ``configure()``)."""
    with _REGISTRY_LOCK:
        if settings is None:
            _REGISTRY.pop(_project(), None)
        else:
            _REGISTRY[_project()] = settings


def current_settings() -> ProviderSettings:
    """The settings registered by ``configure()``, else the environment's."""
    with _REGISTRY_LOCK:
        settings = _REGISTRY.get(_project())
    return settings if settings is not None else settings_from_env()
