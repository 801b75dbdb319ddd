"""Shared fixtures: one HTTPS emulator per test session, and a fresh emulated tenant per test.

Why: tests exercise the real path (MSAL or plain requests -> TLS -> the emulator's admin API), and must never
see each other's objects; creating a tenant is cheap, starting a server is not.

- ``MAILFLOW_STATE_DIR`` points at a temporary directory for the whole session (set in ``pytest_configure``),
  so CLI runs in tests never touch a project's own ``.mailflow``.
- ``emulator``: the session's :class:`EmulatorServer` (``.base_url``, ``.ca_path``, ``.store``).
- ``emulator_tenant``: an :class:`EmulatedTenant` with its own id, initial domain, the verified domains
  contoso.com / sales.contoso.com / fabrikam.com and an app holding Exchange.ManageAsApp + Exchange Administrator.
- ``emulator_tenant_factory``: the same with custom apps (certificates, federated credentials, no role...).
- ``stack_tenant(config)`` / ``stack_tenant_yaml(config)``: the ``tenant:`` section of a stack file that points at
  an emulated tenant (as a dict for YAML documents, as text to put before resource lists).
- ``hybrid_stack``: the resource lists of the hybrid tenant in tests/fixtures/hybrid.yaml (one layout, shared).

Test modules that need the helper classes import them as ``from mailflow_testing import EmulatedTenant,
CASession, create_tenant, EXCHANGE_SCOPE``: several directories have a ``conftest.py``, so the bare name
``conftest`` is ambiguous; this module registers itself under that unique alias.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests

from o365_mailflow.emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, EmulatorServer
from o365_mailflow.tenant import TenantConfig

sys.modules.setdefault("mailflow_testing", sys.modules[__name__])

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
# `mailflow` in a child process, as a shell runs it: the console script's entry point as installed from
# pyproject.toml (so a test through it also proves the script exists and exits with the command's code).
MAILFLOW_PROCESS = [sys.executable, "-c",
                    "import importlib.metadata as m; m.entry_points(group='console_scripts')['mailflow'].load()()"]
FIXTURES = Path(__file__).parent / "fixtures"
VERIFIED_DOMAINS = ["contoso.com", "sales.contoso.com", "fabrikam.com"]

_STATE_DIR: str | None = None
_PREVIOUS_STATE_DIR: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _STATE_DIR, _PREVIOUS_STATE_DIR
    _PREVIOUS_STATE_DIR = os.environ.get("MAILFLOW_STATE_DIR")
    _STATE_DIR = tempfile.mkdtemp(prefix="mailflow-test-state-")
    os.environ["MAILFLOW_STATE_DIR"] = _STATE_DIR


def pytest_unconfigure(config: pytest.Config) -> None:
    if _PREVIOUS_STATE_DIR is None:
        os.environ.pop("MAILFLOW_STATE_DIR", None)
    else:
        os.environ["MAILFLOW_STATE_DIR"] = _PREVIOUS_STATE_DIR
    if _STATE_DIR:
        shutil.rmtree(_STATE_DIR, ignore_errors=True)


class CASession(requests.Session):
    """A session that trusts one extra CA even when ``REQUESTS_CA_BUNDLE`` is set in the environment.

    requests lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``; MSAL calls the session without ``verify``,
    so the session must re-assert its own trust after the environment is merged (proxies still come from it).
    """

    def __init__(self, ca_path: Path | str) -> None:
        super().__init__()
        self.ca_path = str(ca_path)
        self.verify = self.ca_path

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            settings["verify"] = self.ca_path
        return settings


def stack_tenant(config: TenantConfig) -> dict[str, str | None]:
    """The ``tenant:`` section of a stack file pointing at the tenant ``config`` describes."""
    return {"id": config.tenant_id, "initialDomain": config.initial_domain, "endpoint": config.endpoint,
            "authority": config.authority or config.endpoint, "caFile": config.ca_file}


def stack_tenant_yaml(config: TenantConfig) -> str:
    """:func:`stack_tenant` as the first lines of a stack file."""
    return "tenant:\n" + "".join(f"  {key}: {value}\n" for key, value in stack_tenant(config).items())


@dataclass
class EmulatedTenant:
    """A fresh tenant in the session's emulator, with its app's credentials and HTTP helpers."""

    base_url: str
    ca_path: Path
    tenant_id: str
    initial_domain: str
    client_id: str
    client_secret: str | None
    verified_domains: list[str]
    apps: list[dict[str, Any]] = field(default_factory=list)  # [{client_id, client_secret}] as created
    _token: tuple[str, float] | None = field(default=None, repr=False)

    @property
    def config(self) -> TenantConfig:
        return TenantConfig(
            emulator=False,
            tenant_id=self.tenant_id,
            initial_domain=self.initial_domain,
            endpoint=self.base_url,
            authority=self.base_url,
            scope=EXCHANGE_SCOPE,
            ca_file=str(self.ca_path),
        )

    @property
    def env(self) -> dict[str, str]:
        """azure-identity style variables for this tenant's (first) app, for CLI tests."""
        env = {"AZURE_TENANT_ID": self.tenant_id, "AZURE_CLIENT_ID": self.client_id}
        if self.client_secret:
            env["AZURE_CLIENT_SECRET"] = self.client_secret
        return env

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def invoke_url(self) -> str:
        return f"{self.base_url}/adminapi/beta/{self.tenant_id}/InvokeCommand"

    def session(self) -> CASession:
        return CASession(self.ca_path)

    def token(self, *, client_id: str | None = None, client_secret: str | None = None, scope: str = EXCHANGE_SCOPE) -> str:
        """An access token by client secret (plain requests, no MSAL)."""
        response = requests.post(
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id or self.client_id,
                "client_secret": client_secret or self.client_secret or "",
                "scope": scope,
            },
            verify=str(self.ca_path),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def _invoke_token(self) -> str:
        # One token per tenant for invoke(): halves the requests of object-heavy tests. token() stays fresh.
        now = time.time()
        if self._token is None or self._token[1] < now + 60:
            token = self.token()
            self._token = (token, float(jwt.decode(token, options={"verify_signature": False})["exp"]))
        return self._token[0]

    def invoke(
        self,
        cmdlet: str,
        params: dict[str, Any] | None = None,
        *,
        select: str | None = None,
        page_size: int | None = None,
        token: str | None = None,
        url: str | None = None,
    ) -> requests.Response:
        """POST one InvokeCommand (one page) and return the raw response."""
        headers = {"Authorization": f"Bearer {token or self._invoke_token()}"}
        if page_size is not None:
            headers["Prefer"] = f"odata.maxpagesize={page_size}"
        return requests.post(
            url or self.invoke_url,
            params={"$select": select} if select and not url else None,
            json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": params or {}}},
            headers=headers,
            verify=str(self.ca_path),
            timeout=60,
        )

    def requests(self, kind: str = "invoke") -> list[dict[str, Any]]:
        """The emulator's request log for this tenant: ``{cmdlet, parameters, status, page, fault, ...}``."""
        response = requests.get(
            f"{self.base_url}/_emulator/requests",
            params={"tenant": self.tenant_id, "kind": kind},
            verify=str(self.ca_path),
            timeout=30,
        )
        response.raise_for_status()
        return list(response.json()["value"])

    def clear_requests(self) -> None:
        requests.delete(
            f"{self.base_url}/_emulator/requests", params={"tenant": self.tenant_id}, verify=str(self.ca_path), timeout=30
        ).raise_for_status()

    def faults(self, **knobs: Any) -> dict[str, Any]:
        """Set fault knobs for this tenant only (see o365_mailflow.emulator.faults.KNOBS)."""
        response = requests.post(
            f"{self.base_url}/_emulator/faults",
            json={"tenant": self.tenant_id, **knobs},
            verify=str(self.ca_path),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["faults"])

    def clear_faults(self) -> None:
        requests.delete(
            f"{self.base_url}/_emulator/faults", params={"tenant": self.tenant_id}, verify=str(self.ca_path), timeout=30
        ).raise_for_status()


def default_app_token(server: EmulatorServer) -> dict[str, Any]:
    """MSAL's client-credentials result for the well-known app of ``server``'s default tenant."""
    app = msal.ConfidentialClientApplication(
        DEFAULT_CLIENT_ID,
        authority=f"{server.base_url}/{DEFAULT_TENANT_ID}",
        client_credential=DEFAULT_CLIENT_SECRET,
        instance_discovery=False,
        http_client=CASession(server.ca_path),
    )
    result = dict(app.acquire_token_for_client([EXCHANGE_SCOPE]))
    assert "access_token" in result, result
    return result


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(tmp_path_factory.mktemp("emulator-state")).start()
    try:
        yield server
    finally:
        server.stop()


def create_tenant(
    base_url: str,
    ca_path: Path,
    *,
    apps: list[dict[str, Any]] | None = None,
    verified_domains: list[str] | None = None,
    settings: dict[str, Any] | None = None,
    mailboxes: list[str] | None = None,
) -> EmulatedTenant:
    """Add a tenant with a unique id and initial domain through ``POST /_emulator/tenants`` (``mailboxes``: the
    addresses the SMTP front door delivers to)."""
    tenant_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "tenant_id": tenant_id,
        "initial_domain": f"t{tenant_id.replace('-', '')[:12]}.onmicrosoft.com",
        "verified_domains": list(VERIFIED_DOMAINS if verified_domains is None else verified_domains),
        "apps": apps if apps is not None else [{"client_secret": True}],
    }
    if settings:
        body["settings"] = settings
    if mailboxes:
        body["mailboxes"] = mailboxes
    response = requests.post(f"{base_url}/_emulator/tenants", json=body, verify=str(ca_path), timeout=30)
    assert response.status_code == 201, response.text
    data = response.json()
    first = (data["apps"] or [{"client_id": "", "client_secret": None}])[0]
    return EmulatedTenant(
        base_url=base_url,
        ca_path=Path(ca_path),
        tenant_id=data["tenant_id"],
        initial_domain=data["initial_domain"],
        client_id=first["client_id"],
        client_secret=first["client_secret"],
        verified_domains=list(data["verified_domains"]),
        apps=list(data["apps"]),
    )


@pytest.fixture
def emulator_tenant_factory(emulator: EmulatorServer) -> Iterator[Callable[..., EmulatedTenant]]:
    """``make(apps=[...], verified_domains=[...], settings={...})`` -> a fresh :class:`EmulatedTenant`.

    App entries use the seed format: ``{"client_secret": True}`` (generated), ``"certificates": [PEM]``,
    ``"federated_credentials": [{"issuer", "subject", "jwks" | "public_key_pem"}]``, ``"directory_roles": []``
    (no directory role: the admin API answers 403), ``"app_roles": []`` (no Exchange.ManageAsApp: 401).
    """
    made: list[EmulatedTenant] = []

    def make(**kwargs: Any) -> EmulatedTenant:
        tenant = create_tenant(emulator.base_url, emulator.ca_path, **kwargs)
        made.append(tenant)
        return tenant

    yield make
    for tenant in made:
        tenant.clear_faults()


@pytest.fixture
def emulator_tenant(emulator_tenant_factory: Callable[..., EmulatedTenant]) -> EmulatedTenant:
    return emulator_tenant_factory()


@pytest.fixture(scope="session")
def hybrid_stack() -> str:
    """A hybrid Exchange layout (relay by IP and certificate, a locked partner, InternalRelay to on-premises)."""
    return (FIXTURES / "hybrid.yaml").read_text(encoding="utf-8")
