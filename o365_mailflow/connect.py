"""The one way in: an authenticated :class:`~o365_mailflow.client.ExoClient` for a tenant's configuration.

A factory above the client, the credentials and the tenant data (which the stack loader uses, so it must not
import the HTTP stack); the CLI and the Pulumi providers both call :func:`open_client`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from .client import ExoClient
from .credentials import ENV_TENANT_ID, ClientSecret, credential_from_env
from .emulator import ensure_running  # the emulator's light half: it loads its server (flask) on first start
from .tenant import TenantConfig, emulator_state_dir

__all__ = ["open_client"]


def open_client(
    config: TenantConfig,
    *,
    env: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
    **client_options: Any,
) -> ExoClient:
    """An authenticated client for ``config``: the CLI's and the providers' one way in.

    ``emulator: true`` starts (or reuses) the local emulator (see :func:`emulator_state_dir`) and signs in as
    its well-known app; azure-identity variables in ``env`` are deliberately ignored then, so a real secret
    is never sent to the emulator. Otherwise the credential comes from azure-identity's variables in ``env``
    (default ``os.environ``), and ``AZURE_TENANT_ID`` fills a missing tenant id. Extra keyword arguments go to
    :class:`ExoClient` (session, timeout, deadline, retry).
    """
    env = os.environ if env is None else env
    if config.emulator:
        info = ensure_running(emulator_state_dir(env, state_dir))
        base_url = str(info.base_url).rstrip("/")
        config = replace(
            config,
            tenant_id=config.tenant_id or info.tenant_id,
            initial_domain=config.initial_domain or info.initial_domain,
            endpoint=config.endpoint or base_url,
            authority=config.authority or base_url,
            scope=config.scope or f"{base_url}/.default",
            ca_file=config.ca_file or str(info.ca_path),
        )
        return ExoClient(config, ClientSecret(info.client_id, info.client_secret or ""), **client_options)
    if not config.tenant_id and env.get(ENV_TENANT_ID):
        config = replace(config, tenant_id=env[ENV_TENANT_ID].strip())
    return ExoClient(config, credential_from_env(env), **client_options)
