"""The emulated tenant's HTTPS front: Entra token endpoints, the admin API and the test control endpoints.

Why: every test and every offline run of the CLI goes through the same HTTP/TLS/MSAL path as production, so
this server reproduces the transport contract of exo-admin-api.md (§1 URLs, §2 the ``CmdletInput`` body, §3 the
success envelope and paging, §4 the 401/403/400/404 shapes, §5 throttling) on Flask, served by werkzeug's
threaded server with an SSL context from :mod:`.certs`. Cmdlet behaviour lives in :mod:`.cmdlets`; this module
only does HTTP: bearer validation, body parsing, ``$select``, ``Prefer: odata.maxpagesize`` with
``@odata.nextLink`` continuations, the request log and fault injection.

Control endpoints (not part of the service; for tests, benchmarks and curious users) live under ``/_emulator/``:

``GET /_emulator/health``; ``GET|DELETE /_emulator/requests?tenant=&kind=invoke|token|all``;
``GET|POST|DELETE /_emulator/faults[?tenant=]`` (see :mod:`.faults`); ``POST /_emulator/reset`` (everything
back to the seed, or ``{"tenant": id}`` to empty one tenant); ``GET|POST /_emulator/tenants`` (add a tenant:
the seed's tenant format, answers with the generated credentials); ``POST /_emulator/federated-token``
(``{"subject", "audience"?, "lifetime"?}``: a workload-identity token from the emulator's own issuer
``<base_url>/_emulator/oidc``, for apps whose federated credential names that issuer).

The SMTP front door (:mod:`.smtp`) starts and stops with this server; its control endpoints are
``GET /_emulator/smtp`` (where it listens), ``GET|DELETE /_emulator/smtp/messages[?tenant=]`` (every transaction,
refused or delivered), ``POST|DELETE /_emulator/smtp/smart-hosts`` (``{"tenant"?, "hosts": {name: "127.0.0.1:port"}}``),
``POST /_emulator/smtp/banned-ips`` (``{"ips": [...]}``) and ``POST /_emulator/certificates`` (``{"name"}``: a
client certificate and key issued by the emulator's CA).
"""

from __future__ import annotations

import base64
import copy
import fcntl
import hashlib
import hmac
import io
import json
import os
import re
import selectors
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from flask import Flask, Response, request
from werkzeug.http import http_date
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import tokens
from .certs import ensure_tls, issue_certificate
from .cmdlets import MORE_RESULTS, UnknownCmdlet, init_tenant, run_cmdlet
from .errors import CmdletError, error_body
from .faults import CONCURRENCY_TEXT, FaultBook
from .settings import Settings
from .smtp import FrontDoor
from .store import Store, TenantState

__all__ = [
    "EmulatorServer",
    "EmulatorBusy",
    "load_seed",
    "DEFAULT_SEED",
    "DEFAULT_TENANT_ID",
    "DEFAULT_INITIAL_DOMAIN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "tenant_from_seed",
]

SEED_FILE = Path(__file__).with_name("seed.json")


def load_seed(path: Path | None = None) -> dict[str, Any]:
    """Read a seed file (default: the packaged ``seed.json``)."""
    return json.loads((path or SEED_FILE).read_text(encoding="utf-8"))


# The embedded default tenant, like Azurite's well-known account key: public on purpose, emulator-only.
DEFAULT_SEED: dict[str, Any] = load_seed()
_DEFAULT_TENANT = DEFAULT_SEED["tenants"][0]
DEFAULT_TENANT_ID: str = _DEFAULT_TENANT["tenant_id"]
DEFAULT_INITIAL_DOMAIN: str = _DEFAULT_TENANT["initial_domain"]
DEFAULT_CLIENT_ID: str = _DEFAULT_TENANT["apps"][0]["client_id"]
DEFAULT_CLIENT_SECRET: str = _DEFAULT_TENANT["apps"][0]["client_secret"]

NUL_BODY = b"\x00" * 4096  # a 403 from the service is ~4 KB of NUL bytes, not JSON [LIVE S5, S12a]
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
PAGINATION_MESSAGE = "Expired or Invalid pagination request. Default Expiry time is 00:30:00"
_PREFER = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_LOG_CAP = 200_000

Runner = Callable[..., Any]  # cmdlets.run_cmdlet's signature


class EmulatorBusy(RuntimeError):
    """Another emulator process already serves this state directory."""


class _DropConnection(ConnectionResetError):
    """Raised through werkzeug so it closes the socket without answering (werkzeug ignores ConnectionError)."""


class BadRequestBody(ValueError):
    pass


def tenant_from_seed(entry: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, str | None]]:
    """Seed tenant entry -> (tenant id, initial domain, stored config, {client_id: plain secret or None}).

    Seed tenant keys: ``tenant_id`` (default: a new GUID), ``initial_domain`` (default
    ``t<8 hex>.onmicrosoft.com``), ``verified_domains`` (list), ``apps`` (see :func:`tokens.app_config_from_seed`),
    ``settings`` (optional per-tenant :class:`Settings` overrides, e.g. ``{"test_mode_listing": "include"}``).
    """
    tenant_id = str(entry.get("tenant_id") or uuid.uuid4()).lower()
    if not _GUID.match(tenant_id):
        raise ValueError(f"tenant_id must be a GUID, got {tenant_id!r}")
    initial = str(entry.get("initial_domain") or f"t{tenant_id[:8]}.onmicrosoft.com").lower()
    if not initial.endswith(".onmicrosoft.com"):
        raise ValueError(f"the initial domain must end with .onmicrosoft.com, got {initial!r}")
    apps, plain = [], {}
    for app_entry in entry.get("apps", []):
        app, secret = tokens.app_config_from_seed(app_entry)
        apps.append(app)
        plain[app["client_id"]] = secret
    verified = [str(d).lower() for d in entry.get("verified_domains", [])]
    config: dict[str, Any] = {"verified_domains": verified, "apps": apps}
    if entry.get("mailboxes"):
        # Addresses with an Exchange Online mailbox, for the SMTP front door (emulator-only seed key).
        config["mailboxes"] = [str(m).strip().lower() for m in entry["mailboxes"]]
    if entry.get("settings"):
        Settings().with_overrides(dict(entry["settings"]))  # fail early on an unknown setting
        config["settings"] = dict(entry["settings"])
    return tenant_id, initial, config, plain


@dataclass
class _Cursor:
    """A paged result kept for its $skiptoken continuations (stable order: no duplicate, no gap)."""

    tenant_id: str
    body_hash: str
    created: float
    values: list[dict[str, Any]]
    warnings: list[str]
    page_size: int
    finished: bool = False  # its last page was served (kept a while for a retried last request)


# Paged results are kept in memory until they expire; past this many values in all, finished ones and then the
# oldest go first (their continuation then gets the pagination error, as from a restarted backend).
_CURSOR_BUDGET = 200_000


@dataclass
class _Context:
    store: Store
    settings: Settings
    key: tokens.SigningKey
    faults: FaultBook = field(default_factory=FaultBook)
    log: list[dict[str, Any]] = field(default_factory=list)
    log_lock: threading.Lock = field(default_factory=threading.Lock)
    cursors: dict[str, _Cursor] = field(default_factory=dict)
    cursor_lock: threading.Lock = field(default_factory=threading.Lock)
    seed: dict[str, Any] = field(default_factory=dict)
    runner: Runner | None = None
    base_url: str = ""
    front_door: FrontDoor | None = None
    state_dir: Path | None = None

    def resolve(self, segment: str) -> TenantState | None:
        return self.store.resolve(segment)

    def tenant_key(self, value: str | None) -> str | None:
        """A tenant id (from an id or a domain) for log and fault filters; ``*``/None pass through."""
        if not value or value == "*":
            return value
        state = self.resolve(value)
        return state.tenant_id if state else value.lower()

    def record(self, entry: dict[str, Any]) -> None:
        with self.log_lock:
            entry["seq"] = len(self.log) + 1
            entry["time"] = time.time()
            self.log.append(entry)
            if len(self.log) > _LOG_CAP:
                del self.log[: len(self.log) - _LOG_CAP]


def _host_url() -> str:
    """The base URL as the client called it (127.0.0.1 or localhost), for links it must follow."""
    return request.host_url.rstrip("/")


def _own_issuer() -> str:
    return f"{_host_url()}/_emulator/oidc"


def _find_app(state: TenantState, client_id: str) -> dict[str, Any] | None:
    return next((a for a in state.config.get("apps", []) if a["client_id"] == client_id.lower()), None)


def _init_tenant_objects(store: Store, state: TenantState, settings: Settings) -> None:
    """Let the cmdlet layer create a new tenant's built-in objects (its accepted domains)."""
    init_tenant(store, state.tenant_id, settings=settings)


def seed_store(store: Store, seed: Mapping[str, Any], settings: Settings) -> None:
    """Create the seed's tenants; remember the first one's first app as the directory's default tenant."""
    for index, entry in enumerate(seed.get("tenants", [])):
        tenant_id, initial, config, plain = tenant_from_seed(entry)
        state = store.add_tenant(tenant_id, initial, config)
        _init_tenant_objects(store, state, settings)
        if index == 0:
            client_id, secret = next(iter(plain.items()), ("", None))
            # Kept so a later start with another (or no) seed still reports this directory's own default app.
            default = {"tenant_id": tenant_id, "initial_domain": initial, "client_id": client_id,
                       "client_secret": secret}
            store.set_meta("default_tenant", json.dumps(default))
    store.set_meta("seeded", "1")


# -- the Flask application -----------------------------------------------------------------------------------


def _json_response(obj: Any, status: int = 200, content_type: str = "application/json; charset=utf-8") -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, content_type=content_type)


def _empty_401(description: str = "invalid_token") -> Response:
    # The service answers 401 with no body [LIVE S5]; the header says why, for humans reading a trace.
    return Response(
        b"",
        status=401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def _nul_403(declare_gzip: bool = False) -> Response:
    response = Response(NUL_BODY, status=403, content_type="application/octet-stream")
    if declare_gzip:
        # [LIVE] the service sometimes declares gzip on this body although it is not gzip (fault forbidden_gzip).
        response.headers["Content-Encoding"] = "gzip"
    return response


def _body_hash(cmdlet: str, parameters: Mapping[str, Any]) -> str:
    canonical = json.dumps([cmdlet.lower(), {k.lower(): v for k, v in parameters.items()}], sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _parse_body(raw: bytes) -> tuple[str, dict[str, Any]]:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise BadRequestBody("The request body is not valid JSON.") from None
    cmdlet_input = None
    if isinstance(body, dict):
        cmdlet_input = next((v for k, v in body.items() if k.lower() == "cmdletinput"), None)
    if not isinstance(cmdlet_input, dict):
        raise BadRequestBody("The request body must be {\"CmdletInput\": {\"CmdletName\": ..., \"Parameters\": {...}}}.")
    fields = {k.lower(): v for k, v in cmdlet_input.items()}
    name = fields.get("cmdletname")
    if not isinstance(name, str) or not name.strip():
        raise BadRequestBody("CmdletInput.CmdletName is required.")
    params = fields.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequestBody("CmdletInput.Parameters must be an object.")
    return name.strip(), params


def _select(values: list[dict[str, Any]], select: str | None) -> list[dict[str, Any]]:
    """``$select=A,B``: keep those properties (names case-insensitive) and their ``@`` annotations."""
    if not select:
        return values
    wanted = {name.strip().lower() for name in select.split(",") if name.strip()}
    return [
        {k: v for k, v in value.items() if k.split("@", 1)[0].lower() in wanted}
        for value in values
    ]


def _page_size(default: int) -> int:
    """The ``Prefer: odata.maxpagesize`` the client asked for, else ``default``."""
    match = _PREFER.search(request.headers.get("Prefer", ""))
    if match and int(match.group(1)) > 0:
        return int(match.group(1))
    return int(default)


def _skiptoken_encode(cursor_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{cursor_id}:{offset}".encode("ascii")).decode("ascii").rstrip("=")


def _skiptoken_decode(token: str) -> tuple[str, int] | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        cursor_id, offset = text.split(":")
        return cursor_id, int(offset)
    except (ValueError, UnicodeDecodeError):
        return None


class _NoLingerSelectors:
    """Stands in for the ``selectors`` module inside ``werkzeug.serving``.

    Why: after every response werkzeug (3.x, ``run_wsgi``) waits up to 10 ms on the socket to drain request
    bytes the application did not read, then reads whatever is there. On a kept-alive connection that would
    be the client's next request, and :func:`_read_whole_body` has already consumed this one's body, so the
    drain never finds anything of this request: it is skipped (it also cost ~13 ms per HTTPS request).
    """

    EVENT_READ = selectors.EVENT_READ

    class DefaultSelector(selectors.DefaultSelector):
        def select(self, timeout: float | None = None) -> Any:
            return []


def _read_whole_body(app: Any) -> Callable[..., Any]:
    """Read each request's body before the app runs, so the connection is positioned at the next request
    whatever the view reads (the condition for keeping connections alive)."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        stream = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH")
        if stream is not None and (length or environ.get("wsgi.input_terminated")):
            body = stream.read(int(length)) if length else stream.read()
            environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return middleware


def _patch_werkzeug_drain() -> None:
    import werkzeug.serving

    if getattr(werkzeug.serving, "selectors", None) is selectors:
        setattr(werkzeug.serving, "selectors", _NoLingerSelectors)  # its module global, read per request


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler, without a log line per request (the emulator keeps its own request log), and with
    HTTP/1.1 keep-alive.

    werkzeug 3 sends ``Connection: close`` on every answer because it cannot drain an unread body; with the
    body always read (:func:`_read_whole_body`) the connection can stay open, as Exchange Online's does: one
    TLS handshake per client instead of one per request, which otherwise dominates apply benchmarks. A client
    that asks for ``Connection: close`` still gets it.
    """

    verbose = False
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: Nagle + delayed ACK add 40 ms each
    timeout = 120  # an idle kept-alive connection is closed after this many seconds
    open_connections: set[Any]  # set per server class (see EmulatorServer.start): closed on stop()

    def setup(self) -> None:
        super().setup()
        self.open_connections.add(self.connection)

    def finish(self) -> None:
        self.open_connections.discard(self.connection)
        super().finish()


    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.verbose:
            super().log_request(code, size)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        if self.verbose:
            super().log_error(format, *args)

    # A Date header set by the application (fault clock_skew) replaces the server's own instead of doubling it.

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self._date_pending = True

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return  # werkzeug's unconditional close (see the class docstring)
        if keyword.lower() == "date":
            self._date_pending = False
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if getattr(self, "_date_pending", False):
            self.send_header("Date", self.date_time_string())
        super().end_headers()


def _drop_middleware(app: Any) -> Callable[..., Any]:
    """Turn a view's "drop this connection" verdict into a closed socket and no HTTP answer."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        result = app(environ, start_response)
        if environ.get("emulator.drop"):
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            raise _DropConnection("fault injection: connection dropped")
        return result

    return middleware


def _lower_adminapi_path(app: Any) -> Callable[..., Any]:
    """The service's path is case-insensitive (``AdminApi`` is used by some clients [S3]); Flask's routing is not."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        parts = path.split("/")
        if len(parts) >= 5 and parts[1].lower() == "adminapi":
            parts[1] = "adminapi"
            parts[2] = parts[2].lower()
            parts[4:] = [p.lower() for p in parts[4:]]
            environ["PATH_INFO"] = "/".join(parts)
        return app(environ, start_response)

    return middleware


def create_app(ctx: _Context) -> Flask:
    app = Flask("o365_mailflow.emulator")
    _entra_routes(app, ctx)
    _managed_identity_routes(app, ctx)
    _admin_routes(app, ctx)
    _control_routes(app, ctx)
    return app


def _token_form() -> dict[str, str]:
    """The token request's form, with ``client_secret_basic`` (HTTP Basic, RFC 6749 §2.3.1) folded in."""
    form = {k: str(v) for k, v in request.form.items()}
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username:
        from urllib.parse import unquote_plus

        form.setdefault("client_id", unquote_plus(auth.username))
        form.setdefault("client_secret", unquote_plus(auth.password or ""))
    return form


def _entra_routes(app: Flask, ctx: _Context) -> None:  # noqa: C901 - the token endpoint's checks, in order
    """Entra ID: OIDC discovery, keys, instance discovery and the v2.0 token endpoint."""

    def unknown_tenant(segment: str) -> Response:
        err = tokens.TokenError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud.",
        )
        return _json_response(err.body(), 400)

    @app.get("/<segment>/v2.0/.well-known/openid-configuration")
    def openid_configuration(segment: str) -> Response:
        state = ctx.resolve(segment)
        if state is None:
            return unknown_tenant(segment)
        return _json_response(tokens.openid_configuration(_host_url(), segment, state.tenant_id))

    @app.get("/<segment>/discovery/v2.0/keys")
    def jwks(segment: str) -> Response:
        if ctx.resolve(segment) is None:
            return unknown_tenant(segment)
        return _json_response(ctx.key.jwks())

    @app.get("/common/discovery/instance")
    def instance_discovery() -> Response:
        endpoint = request.args.get("authorization_endpoint", "")
        return _json_response(tokens.instance_discovery(_host_url(), endpoint))

    @app.post("/<segment>/oauth2/v2.0/token")
    def token(segment: str) -> Response:
        form = _token_form()
        client_id = (form.get("client_id") or "").lower()
        entry: dict[str, Any] = {"kind": "token", "tenant": None, "client_id": client_id, "status": 0}
        try:
            state = ctx.resolve(segment)
            if state is None:
                return unknown_tenant(segment)
            entry["tenant"] = state.tenant_id
            failure = ctx.faults.token_error(state.tenant_id)
            if failure is not None:
                entry["fault"] = "error"
                raise tokens.TokenError(
                    failure, "temporarily_unavailable", 50196 if failure == 503 else 90033,
                    "The service is temporarily unavailable (emulator fault injection). Please retry.",
                )
            if form.get("grant_type") != "client_credentials":
                raise tokens.TokenError(
                    400, "unsupported_grant_type", 70003,
                    "The app requested an unsupported grant type; the emulator supports client_credentials only.",
                )
            registration = _find_app(state, client_id) if client_id else None
            if registration is None:
                raise tokens.TokenError(
                    400, "unauthorized_client", 700016,
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{state.tenant_id}'. This can happen if the application has not been installed by the "
                    "administrator of the tenant or consented to by any user in the tenant.",
                )
            scope = (form.get("scope") or "").strip()
            if len(scope.split()) != 1 or not scope.endswith("/.default"):
                raise tokens.TokenError(
                    400, "invalid_scope", 1002012,
                    f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                    "value with /.default suffixed to the resource identifier (application ID URI).",
                )
            endpoints = {
                f"{_host_url()}/{seg}/oauth2/v2.0/token"
                for seg in (segment, state.tenant_id, state.initial_domain, *state.config.get("verified_domains", []))
            }
            method = tokens.authenticate_client(
                registration, form, token_endpoints=endpoints, own_key=ctx.key, own_issuer=_own_issuer()
            )
            entry["method"] = method
            lifetime = ctx.faults.value(state.tenant_id, "token_lifetime")
            if lifetime is None:
                lifetime = int(ctx.settings.token_lifetime)
            access = tokens.issue_access_token(
                ctx.key,
                tenant_id=state.tenant_id,
                app=registration,
                audience=scope[: -len("/.default")],
                lifetime=int(lifetime),
                method=method,
            )
            entry["status"] = 200
            return _json_response(
                {"token_type": "Bearer", "expires_in": int(lifetime), "ext_expires_in": int(lifetime),
                 "access_token": access}
            )
        except tokens.TokenError as err:
            entry["status"] = err.status
            entry["error"] = err.error
            return _json_response(err.body(), err.status)
        finally:
            ctx.record(entry)


def _identity_environment(ctx: _Context, tenant_id: str, apps: list[dict[str, Any]]) -> dict[str, str]:
    """What the platform puts in a managed-identity host's environment (IDENTITY_ENDPOINT, IDENTITY_HEADER)."""
    if not any(a.get("managed_identity") for a in apps):
        return {}
    return {"identity_endpoint": f"{_host_url()}/{tenant_id}/msi/token",
            "identity_header": tokens.identity_header(ctx.key, tenant_id)}


def _managed_identity_routes(app: Flask, ctx: _Context) -> None:
    """The identity endpoint of an Azure host (App Service style, see :mod:`.tokens`)."""

    @app.get("/<segment>/msi/token")
    def managed_identity_token(segment: str) -> Response:
        entry: dict[str, Any] = {"kind": "token", "tenant": None, "client_id": request.args.get("client_id", ""),
                                 "status": 0, "method": "managed_identity"}
        try:
            state = ctx.resolve(segment)
            if state is None:
                raise tokens.TokenError(404, "not_found", 404, f"No identity endpoint for '{segment}'.")
            entry["tenant"] = state.tenant_id
            given = request.headers.get("X-IDENTITY-HEADER", "")
            if not hmac.compare_digest(given, tokens.identity_header(ctx.key, state.tenant_id)):
                raise tokens.TokenError(401, "unauthorized", 401, "The X-IDENTITY-HEADER is missing or wrong.")
            resource = (request.args.get("resource") or "").strip().rstrip("/")
            if not resource:
                raise tokens.TokenError(400, "invalid_request", 400, "The resource parameter is required.")
            identity = tokens.managed_identity_app(state.config.get("apps", []), request.args)
            entry["client_id"] = identity["client_id"]
            lifetime = ctx.faults.value(state.tenant_id, "token_lifetime")
            lifetime = int(ctx.settings.token_lifetime if lifetime is None else lifetime)
            access = tokens.issue_access_token(ctx.key, tenant_id=state.tenant_id, app=identity, audience=resource,
                                               lifetime=lifetime, method="managed_identity")
            entry["status"] = 200
            return _json_response({"access_token": access, "expires_on": str(int(time.time()) + lifetime),
                                   "resource": resource, "token_type": "Bearer", "client_id": identity["client_id"]})
        except tokens.TokenError as err:
            entry["status"] = err.status
            entry["error"] = err.error
            # App Service's error shape (MSAL turns it into an OAuth error whose description carries both).
            return _json_response({"statusCode": err.status, "message": err.description}, err.status)
        finally:
            ctx.record(entry)


def _admin_response(obj: dict[str, Any], page_size: int | None) -> Response:
    response = _json_response(obj, content_type=ODATA_JSON)
    response.headers["OData-Version"] = "4.0"
    response.headers["request-id"] = str(uuid.uuid4())
    if page_size is not None:
        response.headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
    return response


def _error_response(err: CmdletError, warnings: list[str] | None = None) -> Response:
    response = _json_response(error_body(err, warnings), err.status)
    response.headers["X-ExceptionType"] = err.exception_type.rsplit(".", 1)[-1]
    response.headers["request-id"] = str(uuid.uuid4())
    return response


def _pagination_error() -> Response:
    return _error_response(CmdletError(PAGINATION_MESSAGE, exception_type="System.Exception"))


def _envelope(segment: str, values: list[dict[str, Any]], warnings: list[str]) -> dict[str, Any]:
    return {
        "@odata.context": f"{_host_url()}/adminapi/beta/{segment}/$metadata#Collection(Exchange.GenericHashTable)",
        "adminapi.warnings@odata.type": "#Collection(String)",
        "@adminapi.warnings": warnings,
        "value": values,
    }


def _next_link(segment: str, token: str) -> str:
    query = f"%24skiptoken={token}"
    select = request.args.get("$select")
    if select:
        query = f"%24select={select}&{query}"
    return f"{_host_url()}/adminapi/beta/{segment}/InvokeCommand?{query}"


def _admin_routes(app: Flask, ctx: _Context) -> None:  # noqa: C901
    """The admin API: InvokeCommand with auth, faults, the first page and its continuations."""

    def authorize(state: TenantState, cmdlet: str) -> Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _empty_401("missing bearer token")
        audiences = set(tokens.EXCHANGE_AUDIENCES) | {_host_url(), ctx.base_url}
        try:
            claims = tokens.validate_access_token(token.strip(), ctx.key, audiences)
        except tokens.InvalidToken as exc:
            return _empty_401(str(exc))
        if str(claims.get("tid", "")).lower() != state.tenant_id:
            return _empty_401("token issued for another tenant")
        # Both grants are needed [LIVE S5]: no Exchange.ManageAsApp -> 401; no directory role -> 403.
        if tokens.EXCHANGE_APP_ROLE not in claims.get("roles", []):
            return _empty_401("the app lacks the Exchange.ManageAsApp application permission")
        wids = {str(w).lower() for w in claims.get("wids", [])}
        needed = tokens.READ_ROLES if cmdlet.lower().startswith("get-") else tokens.WRITE_ROLES
        if not wids & needed:
            return forbidden(state)
        return None

    def forbidden(state: TenantState) -> Response:
        return _nul_403(bool(ctx.faults.value(state.tenant_id, "forbidden_gzip")))

    def regional_redirect(state: TenantState) -> Response | None:
        """302 to the tenant's regional host (fault redirect_to) when the request reached another host name."""
        target = ctx.faults.value(state.tenant_id, "redirect_to")
        if not target:
            return None
        target_host = str(target).rsplit(":", 1)[0].lower()
        if (request.host.rsplit(":", 1)[0] if "]" not in request.host else request.host).lower() == target_host:
            return None
        # The path as the client sent it (the routing middleware lower-cased PATH_INFO), with its query.
        raw_uri = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
        if not raw_uri:
            query = request.query_string.decode("ascii", "replace")
            raw_uri = request.path + (f"?{query}" if query else "")
        location = f"https://{target}{raw_uri}"
        return Response(b"", status=302, headers={"Location": location})

    def expiry(tenant_id: str) -> float:
        value = ctx.faults.value(tenant_id, "pagination_expiry")
        return float(value if value is not None else ctx.settings.pagination_expiry)

    def page(segment: str, cursor_id: str, cursor: _Cursor, offset: int, page_size: int, first: bool) -> Response:
        chunk = cursor.values[offset : offset + page_size]
        warnings = list(cursor.warnings) if first else []
        obj = _envelope(segment, _select(chunk, request.args.get("$select")), warnings)
        if offset + page_size < len(cursor.values):
            if MORE_RESULTS not in warnings:  # the cmdlet may already have said so (ResultSize truncation)
                warnings.append(MORE_RESULTS)
            obj["@odata.nextLink"] = _next_link(segment, _skiptoken_encode(cursor_id, offset + page_size))
        else:
            cursor.finished = True
        return _admin_response(obj, page_size)

    def new_cursor(cursor: _Cursor) -> str:
        now = time.time()
        with ctx.cursor_lock:
            stale = [k for k, c in ctx.cursors.items() if now - c.created > expiry(c.tenant_id) + 60]
            for k in stale:
                del ctx.cursors[k]
            total = sum(len(c.values) for c in ctx.cursors.values()) + len(cursor.values)
            # dicts keep insertion order: oldest first; finished ones before unfinished ones.
            for k in [k for k, c in ctx.cursors.items() if c.finished] + [k for k, c in ctx.cursors.items()]:
                if total <= _CURSOR_BUDGET:
                    break
                if k in ctx.cursors:
                    total -= len(ctx.cursors.pop(k).values)
            cursor_id = uuid.uuid4().hex
            ctx.cursors[cursor_id] = cursor
            return cursor_id

    def run(state: TenantState, segment: str, cmdlet: str, parameters: dict[str, Any]) -> Response:
        """Run the cmdlet and answer the first page (or the error)."""
        runner: Runner = ctx.runner or run_cmdlet  # a test double may stand in for the cmdlet layer
        unknown: type[Exception] = getattr(ctx.runner, "unknown_exception", UnknownCmdlet)
        read_lag = float(ctx.faults.value(state.tenant_id, "read_lag") or 0.0)
        lag_reads = int(ctx.faults.value(state.tenant_id, "read_lag_reads") or 0)
        try:
            result = runner(
                ctx.store,
                state.tenant_id,
                cmdlet,
                copy.deepcopy(parameters),
                settings=ctx.settings.with_overrides(state.config.get("settings")),
                read_lag=read_lag,
                **({"read_lag_reads": lag_reads} if lag_reads else {}),
            )
        except CmdletError as err:
            return _error_response(err, list(getattr(err, "warnings", []) or []))
        except unknown:
            return forbidden(state)
        values = list(result.values)
        warnings = list(result.warnings)
        confirmation = getattr(result, "confirmation_message", None)
        page_size = _page_size(ctx.settings.default_page_size)
        if len(values) <= page_size:
            obj = _envelope(segment, _select(values, request.args.get("$select")), warnings)
            if confirmation:
                obj["@adminapi.confirmationmessage"] = confirmation
            return _admin_response(obj, page_size)
        cursor = _Cursor(state.tenant_id, _body_hash(cmdlet, parameters), time.time(), values, warnings, page_size)
        return page(segment, new_cursor(cursor), cursor, 0, page_size, first=True)

    def continuation(
        state: TenantState, segment: str, skiptoken: str, cmdlet: str, parameters: dict[str, Any]
    ) -> Response:
        decoded = _skiptoken_decode(skiptoken)
        if decoded is None:
            return _pagination_error()
        cursor_id, offset = decoded
        with ctx.cursor_lock:
            cursor = ctx.cursors.get(cursor_id)
        if (
            cursor is None
            or cursor.tenant_id != state.tenant_id
            or cursor.body_hash != _body_hash(cmdlet, parameters)
            or time.time() - cursor.created > expiry(state.tenant_id)
            or not 0 < offset < len(cursor.values)
        ):
            return _pagination_error()
        return page(segment, cursor_id, cursor, offset, _page_size(cursor.page_size), first=False)

    @app.post("/adminapi/beta/<segment>/invokecommand")
    def invoke_command(segment: str) -> Response:
        entry: dict[str, Any] = {"kind": "invoke", "tenant": None, "cmdlet": None, "parameters": None, "status": 0}
        state = ctx.resolve(segment)
        if state is None:
            # [INF] the service's answer for an unknown tenant is not captured; an empty 401 is the safest guess.
            entry["status"] = 401
            ctx.record(entry)
            return _empty_401("unknown tenant")
        entry["tenant"] = state.tenant_id
        skiptoken = request.args.get("$skiptoken")
        entry["page"] = skiptoken is not None
        entry["select"] = request.args.get("$select")
        try:
            cmdlet, parameters = _parse_body(request.get_data())
        except BadRequestBody as exc:
            cmdlet, parameters = "", {}
            parse_error: str | None = str(exc)
        else:
            parse_error = None
        entry["cmdlet"] = cmdlet or None
        entry["parameters"] = parameters
        entry["anchor"] = request.headers.get("X-AnchorMailbox")
        entry["host"] = request.host
        redirect = regional_redirect(state)
        if redirect is not None:
            entry["fault"] = "redirect"
            entry["status"] = redirect.status_code
            ctx.record(entry)
            return redirect
        in_flight = ctx.faults.enter(state.tenant_id)
        try:
            decision = ctx.faults.decide(state.tenant_id, cmdlet, in_flight)
            if decision.latency:
                time.sleep(decision.latency)
            entry["fault"] = decision.kind
            response = faulted(decision)
            if response is None:
                denied = authorize(state, cmdlet)
                if denied is not None:
                    response = denied
                elif parse_error is not None:
                    response = _error_response(CmdletError(parse_error, exception_type="System.ArgumentException"))
                elif skiptoken is not None:
                    response = continuation(state, segment, skiptoken, cmdlet, parameters)
                else:
                    response = run(state, segment, cmdlet, parameters)
            if decision.kind == "drop_after":
                # The cmdlet ran (a write is committed); the answer is lost on the way back.
                request.environ["emulator.drop"] = True
            entry["status"] = 0 if decision.kind == "drop" else response.status_code
            skew = ctx.faults.value(state.tenant_id, "clock_skew")
            if skew:
                response.headers["Date"] = http_date(time.time() + float(skew))
            return response
        finally:
            ctx.faults.leave(state.tenant_id)
            ctx.record(entry)

    def faulted(decision: Any) -> Response | None:
        if decision.kind in (None, "drop_after"):
            return None
        if decision.kind == "drop":
            request.environ["emulator.drop"] = True
            return Response(b"", status=500)
        if decision.kind == "concurrency":
            return Response(
                CONCURRENCY_TEXT, status=int(ctx.settings.concurrency_text_status), content_type="text/plain"
            )
        if decision.kind == "throttle":
            retry = decision.retry_after
            text = str(int(retry)) if float(retry) == int(retry) else str(retry)
            return Response(b"", status=429, headers={"Retry-After": text})
        return Response(b"", status=decision.status)


def _control_routes(app: Flask, ctx: _Context) -> None:  # noqa: C901
    """``/_emulator/``: request log, faults, reset, tenants, federated tokens (not part of the service)."""
    _smtp_routes(app, ctx)

    @app.get("/_emulator/health")
    def health() -> Response:
        return _json_response({"status": "ok", "pid": os.getpid(), "tenants": len(ctx.store.tenants())})

    @app.get("/_emulator/requests")
    def get_requests() -> Response:
        tenant = ctx.tenant_key(request.args.get("tenant"))
        kind = request.args.get("kind", "invoke")
        with ctx.log_lock:
            items = [
                dict(e)
                for e in ctx.log
                if (tenant is None or e.get("tenant") == tenant) and (kind == "all" or e.get("kind") == kind)
            ]
        return _json_response({"value": items})

    @app.delete("/_emulator/requests")
    def delete_requests() -> Response:
        tenant = ctx.tenant_key(request.args.get("tenant"))
        with ctx.log_lock:
            ctx.log[:] = [] if tenant is None else [e for e in ctx.log if e.get("tenant") != tenant]
        return Response(status=204)

    @app.get("/_emulator/faults")
    def get_faults() -> Response:
        return _json_response({"value": ctx.faults.snapshot()})

    @app.post("/_emulator/faults")
    def post_faults() -> Response:
        knobs = request.get_json(silent=True)
        if not isinstance(knobs, dict):
            return _json_response({"error": "send a JSON object of fault knobs"}, 400)
        knobs = dict(knobs)
        tenant = ctx.tenant_key(knobs.pop("tenant", None) or request.args.get("tenant")) or "*"
        try:
            plan = ctx.faults.configure(tenant, knobs)
        except (ValueError, TypeError) as exc:
            return _json_response({"error": str(exc)}, 400)
        return _json_response({"tenant": tenant, "faults": plan})

    @app.delete("/_emulator/faults")
    def delete_faults() -> Response:
        ctx.faults.clear(ctx.tenant_key(request.args.get("tenant")))
        return Response(status=204)

    @app.post("/_emulator/reset")
    def reset() -> Response:
        body = request.get_json(silent=True) or {}
        tenant = ctx.tenant_key(body.get("tenant") or request.args.get("tenant"))
        if tenant:
            state = ctx.resolve(tenant)
            if state is None:
                return _json_response({"error": f"unknown tenant {tenant}"}, 404)
            with ctx.store.tenant(state.tenant_id) as locked:
                for kind, objects in locked.objects.items():
                    for guid in list(objects):
                        ctx.store.delete(locked, kind, guid)
            _init_tenant_objects(ctx.store, state, ctx.settings)
            ctx.faults.clear(state.tenant_id)
            return _json_response({"reset": state.tenant_id})
        ctx.store.wipe()
        seed_store(ctx.store, ctx.seed, ctx.settings)
        ctx.faults.clear()
        with ctx.log_lock:
            ctx.log.clear()
        with ctx.cursor_lock:
            ctx.cursors.clear()
        return _json_response({"reset": "all"})

    @app.get("/_emulator/tenants")
    def list_tenants() -> Response:
        return _json_response(
            {
                "value": [
                    {
                        "tenant_id": s.tenant_id,
                        "initial_domain": s.initial_domain,
                        "verified_domains": s.config.get("verified_domains", []),
                        "apps": [
                            {k: a[k] for k in ("client_id", "display_name", "app_roles", "directory_roles")}
                            for a in s.config.get("apps", [])
                        ],
                        **_identity_environment(ctx, s.tenant_id, s.config.get("apps", [])),
                    }
                    for s in ctx.store.tenants()
                ]
            }
        )

    @app.post("/_emulator/tenants")
    def add_tenant() -> Response:
        entry = request.get_json(silent=True)
        if not isinstance(entry, dict):
            return _json_response({"error": "send a JSON tenant object (the seed file's tenant format)"}, 400)
        try:
            tenant_id, initial, config, plain = tenant_from_seed(entry)
        except (ValueError, TypeError) as exc:
            return _json_response({"error": str(exc)}, 400)
        if ctx.store.resolve(tenant_id) is not None or ctx.store.resolve(initial) is not None:
            return _json_response({"error": f"tenant {tenant_id} / {initial} already exists"}, 409)
        state = ctx.store.add_tenant(tenant_id, initial, config)
        _init_tenant_objects(ctx.store, state, ctx.settings)
        answer: dict[str, Any] = {
            "tenant_id": tenant_id,
            "initial_domain": initial,
            "verified_domains": config["verified_domains"],
            "apps": [{"client_id": cid, "client_secret": secret} for cid, secret in plain.items()],
        }
        answer.update(_identity_environment(ctx, tenant_id, config["apps"]))
        return _json_response(answer, 201)

    @app.post("/_emulator/federated-token")
    def federated_token() -> Response:
        body = request.get_json(silent=True) or {}
        if not body.get("subject"):
            return _json_response({"error": "subject is required"}, 400)
        token = tokens.mint_federated_token(
            ctx.key,
            issuer=_own_issuer(),
            subject=str(body["subject"]),
            audience=str(body.get("audience") or tokens.FEDERATED_AUDIENCE),
            lifetime=int(body.get("lifetime", 600)),
        )
        return _json_response({"token": token, "issuer": _own_issuer()})

    @app.get("/_emulator/oidc/.well-known/openid-configuration")
    def own_issuer_configuration() -> Response:
        return _json_response({"issuer": _own_issuer(), "jwks_uri": f"{_own_issuer()}/keys"})

    @app.get("/_emulator/oidc/keys")
    def own_issuer_keys() -> Response:
        return _json_response(ctx.key.jwks())


# -- the server ----------------------------------------------------------------------------------------------


def _smtp_routes(app: Flask, ctx: _Context) -> None:
    """``/_emulator/smtp/...`` and ``/_emulator/certificates``: the SMTP front door's knobs and its record."""

    def door() -> FrontDoor:
        assert ctx.front_door is not None, "the SMTP front door is not running"
        return ctx.front_door

    @app.get("/_emulator/smtp")
    def smtp_endpoint() -> Response:
        return _json_response(door().endpoint)

    @app.get("/_emulator/smtp/messages")
    def smtp_messages() -> Response:
        return _json_response({"value": door().messages(ctx.tenant_key(request.args.get("tenant")))})

    @app.delete("/_emulator/smtp/messages")
    def smtp_clear_messages() -> Response:
        door().clear_messages(ctx.tenant_key(request.args.get("tenant")))
        return Response(status=204)

    @app.post("/_emulator/smtp/smart-hosts")
    def smtp_smart_hosts() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("hosts"), dict):
            return _json_response({"error": 'send {"tenant"?: id, "hosts": {"mail.contoso.com": "127.0.0.1:2525"}}'},
                                  400)
        tenant = ctx.tenant_key(body.get("tenant"))
        try:
            hosts = door().set_smart_hosts(tenant, body["hosts"])
        except ValueError as exc:
            return _json_response({"error": str(exc)}, 400)
        return _json_response({"tenant": tenant or "*", "hosts": hosts})

    @app.delete("/_emulator/smtp/smart-hosts")
    def smtp_clear_smart_hosts() -> Response:
        door().clear_smart_hosts(ctx.tenant_key(request.args.get("tenant")))
        return Response(status=204)

    @app.post("/_emulator/smtp/banned-ips")
    def smtp_banned_ips() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("ips"), list):
            return _json_response({"error": 'send {"ips": ["203.0.113.66"]}'}, 400)
        try:
            return _json_response({"ips": door().set_banned(body["ips"])})
        except ValueError as exc:
            return _json_response({"error": str(exc)}, 400)

    @app.post("/_emulator/certificates")
    def certificates() -> Response:
        body = request.get_json(silent=True) or {}
        name = str(body.get("name") or "").strip().lower()
        if not name or any(c.isspace() for c in name) or "." not in name:
            return _json_response({"error": 'send {"name": "mail.contoso.com"}'}, 400)
        assert ctx.state_dir is not None
        cert, key = issue_certificate(ctx.state_dir, name)
        # Emulator-only material signed by the emulator's private CA; returning the key is the point.
        return _json_response({"name": name, "certificate": cert.decode(), "private_key": key.decode()}, 201)


class EmulatorServer:
    """One emulated Exchange Online (and Entra) endpoint for several tenants, over HTTPS, in a background thread.

    ``state_dir`` holds the SQLite database, the TLS material (CA printed for clients to trust) and the token
    signing key; restarting on the same directory keeps every tenant and object. A ``seed`` (the
    ``seed.json`` format; default :data:`DEFAULT_SEED`) is applied once, to an empty state directory.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: dict[str, Any] | None = None,
        settings: Settings | None = None,
        verbose: bool = False,
        runner: Runner | None = None,
        smtp_port: int = 0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.smtp_port = smtp_port
        self.front_door: FrontDoor | None = None
        self.seed = copy.deepcopy(seed if seed is not None else DEFAULT_SEED)
        self.settings = settings or Settings()
        self.verbose = verbose
        self._runner = runner
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._lock_file: Any = None
        self.ca_path: Path = self.state_dir / "tls" / "ca.pem"
        self.base_url = ""

    @property
    def store(self) -> Store:
        assert self._store is not None, "the emulator is not running"
        return self._store

    def _acquire_lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.state_dir / "server.lock", "a+")  # noqa: SIM115 - held for the server's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise EmulatorBusy(
                f"another emulator is already serving {self.state_dir} (see {self.state_dir / 'server.json'})"
            ) from None
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def start(self) -> "EmulatorServer":
        if self._server is not None:
            return self
        self._acquire_lock()
        try:
            self._start()
        except BaseException:
            if self._store is not None:
                self._store.close()
                self._store = None
            self._server = None
            self._release_lock()
            raise
        return self

    def _start(self) -> None:
        extra = () if self.host in ("127.0.0.1", "localhost", "0.0.0.0", "::") else (self.host,)
        tls = ensure_tls(self.state_dir, extra)
        self.ca_path = tls.ca_cert
        self._store = Store(self.state_dir / "emulator.sqlite3")
        if self._store.get_meta("seeded") is None:
            seed_store(self._store, self.seed, self.settings)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls.server_cert), str(tls.server_key))
        ctx = _Context(
            store=self._store,
            settings=self.settings,
            key=tokens.load_signing_key(self.state_dir),
            seed=self.seed,
            runner=self._runner,
            state_dir=self.state_dir,
        )
        self._ctx = ctx
        app = create_app(ctx)
        app.wsgi_app = _read_whole_body(  # type: ignore[method-assign]
            _lower_adminapi_path(_drop_middleware(app.wsgi_app)))
        _patch_werkzeug_drain()
        self._connections: set[Any] = set()
        handler = type("Handler", (_QuietHandler,),
                       {"verbose": self.verbose, "open_connections": self._connections})
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=handler,
                                   ssl_context=context)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = self._server.server_port
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        self.base_url = f"https://{shown}:{self.port}"
        ctx.base_url = self.base_url
        store = self._store
        self.front_door = FrontDoor(store, tls, host=shown, port=self.smtp_port,
                                    default_tenant=lambda: self.default_tenant().get("tenant_id")).start()
        self.smtp_port = self.front_door.port
        ctx.front_door = self.front_door
        self._thread = threading.Thread(target=self._server.serve_forever, name="mailflow-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self.front_door is not None:
            self.front_door.stop()
            self.front_door = None
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.server_close()
        for conn in list(self._connections):  # kept-alive connections must not outlive the server
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = None
        self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self._release_lock()

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C), then stop cleanly."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    def default_tenant(self) -> dict[str, Any]:
        """The first seed tenant and its first app, with the plain secret from the seed (if any)."""
        if self._store is not None:
            recorded = self._store.get_meta("default_tenant")
            if recorded:
                return dict(json.loads(recorded))
        tenants: Iterable[dict[str, Any]] = self.seed.get("tenants", [])
        first = next(iter(tenants), None)
        if first is None:
            return {}
        app = (first.get("apps") or [{}])[0]
        secret = app.get("client_secret")
        return {
            "tenant_id": str(first.get("tenant_id", "")).lower(),
            "initial_domain": str(first.get("initial_domain", "")).lower(),
            "client_id": str(app.get("client_id", "")).lower(),
            "client_secret": secret if isinstance(secret, str) else None,
        }

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
