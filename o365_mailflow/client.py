"""The one door to a tenant: the Exchange Online admin API (``InvokeCommand``) over MSAL + requests.

Why one module: every caller (snapshot, apply, export, the Pulumi providers) needs the same token handling,
headers, paging, retries and error typing, and none of them should know that a cmdlet travels as JSON in a
POST. This module follows ``reference/exo-admin-api.md`` (section numbers below refer to it); where the
reference marks a behaviour as inferred, the constant that encodes it is named and commented so it is easy to
change.

Secrets: the client never formats a token, secret, assertion or private key into a message, a log line or a
repr. Log lines carry the cmdlet, the status, the attempt and the ``client-request-id`` only.
"""

from __future__ import annotations

import gzip
import builtins
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, NoReturn
from urllib.parse import quote, urljoin, urlsplit

import msal
import requests

from .credentials import Credential, ManagedIdentity
from .errors import (
    AlreadyExists,
    AuthenticationError,
    ExoError,
    NotFound,
    PermissionDenied,
    ServiceValidationError,
    Throttled,
    TransportError,
)
from .tenant import Endpoints, TenantConfig, is_initial_domain, resolve_endpoints

__all__ = [
    "ExoClient",
    "RetryPolicy",
    "CallStats",
    "InvokeResult",
    "ConnectionRetriesExhausted",
    "TokenEndpointUnavailable",
    "encode_parameters",
    "strip_annotations",
    "parse_error",
    "ANCHOR_SYSTEM_MAILBOX",
]

log = logging.getLogger(__name__)

# §1.3: the app-only, organisation-wide routing anchor. The GUID is the same in every tenant. Built from the
# initial .onmicrosoft.com domain because nextLink continuations need consistent routing (§3.3, [INF]).
ANCHOR_SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
# §3.3: the per-page warning the module suppresses while it follows @odata.nextLink.
_MORE_RESULTS_WARNING = "There are more results available than are currently displayed"
# §5: plain-text throttling answer (status unknown, [INF] 429 or 503): retried whatever the status.
_CONCURRENCY_TEXT = "maximum number of concurrent requests per tenant"
# §5: transient server-side exceptions the module retries when they appear in details[0].message.
_TRANSIENT_EXCEPTIONS = (
    "DCOverloadedException",
    "SuitabilityDirectoryException",
    "ServerInMMException",
    "ADServerSettingsChangedException",
    "StorageTransientException",
)
_RETRY_STATUSES = frozenset({429, 503, 504})
_NOT_FOUND_TYPES = ("ManagementObjectNotFoundException",)
# Duplicate names: ADObjectAlreadyExistsException, ManagementObjectAlreadyExistsException and its subclasses, whose
# names do not contain that string: the connector tasks raise ErrorInboundConnectorAlreadyExistsException /
# ErrorOutboundConnectorAlreadyExistsException ([DECOMPILED], exo-admin-api.md). So match "AlreadyExists"; a
# duplicate *member* of a group is not a duplicate object.
_ALREADY_EXISTS_MARK = "AlreadyExists"
_NOT_ALREADY_EXISTS = ("MemberAlreadyExists",)
_REDIRECT_STATUSES = frozenset({301, 302, 307, 308})
# exo-admin-api.md §1.4: regional redirects may name port 446; production clients (go-exoscc) rewrite it to 443.
_REDIRECT_PORT_REWRITE = {446: 443}
# Token endpoint answers worth retrying (Entra's OAuth error codes for a transient failure, RFC 6749 §5.2 + Entra).
_TOKEN_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
_MAX_MESSAGE = 600  # service messages are truncated to this many characters in exceptions
_CONSENT_HINT = (
    "grant the app registration the 'Exchange.ManageAsApp' application permission on 'Office 365 Exchange "
    "Online' and give admin consent"
)
_ROLE_HINT = (
    "assign the app's service principal the 'Exchange Administrator' role in Entra ID (or an Exchange role "
    "group that allows this cmdlet); role changes can take a while to reach Exchange Online"
)


def _is_already_exists(exception_type: str) -> bool:
    return _ALREADY_EXISTS_MARK in exception_type and not any(t in exception_type for t in _NOT_ALREADY_EXISTS)


class TokenEndpointUnavailable(AuthenticationError, Throttled):
    """Entra ID's token endpoint kept failing (5xx, 429, network) through every retry.

    An :class:`AuthenticationError` (no token) and a :class:`Throttled` (the retry budget is spent): the service is
    at fault, not the credential, so the message says to wait rather than to check the app registration.
    """


class ConnectionRetriesExhausted(TransportError, Throttled):
    """The connection kept failing (dropped, refused, timed out) through every retry.

    It is a :class:`TransportError` (the network is at fault) and also a :class:`Throttled` (the retry budget is
    spent), so callers that treat "still failing after retries" alike catch it either way.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry (§5). ``sleep`` and ``random`` are injectable so tests run without waiting."""

    max_retries: int = 5  # retries after the first attempt (the module: 5)
    base_delay: float = 1.0  # seconds; doubled per retry
    max_delay: float = 60.0  # cap for one back-off wait (a service Retry-After is honoured as given)
    jitter: float = 0.5  # fraction of the back-off that is randomised
    not_found_retries: int = 6  # bounded read-after-create retries for get(..., retry_not_found=True) (§3.5)
    not_found_delay: float = 1.0  # seconds, doubled per retry, capped by max_delay
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff(self, retry: int) -> float:
        """Exponential back-off with jitter for the ``retry``-th retry (0-based)."""
        delay = min(self.max_delay, self.base_delay * (2**retry))
        return delay * (1 - self.jitter) + delay * self.jitter * self.random()


@dataclass
class CallStats:
    """What a client has sent: the reconciler reports it and the tests count calls with it."""

    requests: int = 0  # HTTP requests sent to the admin API (every page and every retry)
    by_cmdlet: Counter[str] = field(default_factory=Counter)  # InvokeCommand calls per cmdlet (pages counted)
    retries: int = 0  # requests that were repeats after a retryable failure
    token_requests: int = 0  # times a token was requested from MSAL (cache hits included)


@dataclass(frozen=True)
class InvokeResult:
    """A cmdlet's output: ``values`` with ``@``-annotation keys stripped, and its warnings (``Write-Warning``)."""

    values: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- encoding


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return _encode_value(value.value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"  # 7 fractional digits
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return {"@odata.type": "#Exchange.ByteArrayType", "Data": list(value)}
    if isinstance(value, Mapping):
        out = {str(k): _encode_value(v) for k, v in value.items()}
        out.setdefault("@odata.type", "#Exchange.GenericHashTable")
        return out
    if isinstance(value, (set, frozenset)):
        return [_encode_value(v) for v in sorted(value, key=str)]
    if isinstance(value, Iterable):
        return [_encode_value(v) for v in value]
    return str(value)  # IPAddress, TimeSpan-likes: their string form (§2.1)


def encode_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Cmdlet parameters as the JSON of §2.1: bools as JSON bools, lists as arrays, hashtables annotated."""
    out: dict[str, Any] = {}
    for name, value in (parameters or {}).items():
        encoded = _encode_value(value)
        out[name] = encoded
        if isinstance(encoded, list) and encoded and all(isinstance(v, dict) for v in encoded):
            kind = "ByteArrayType" if isinstance(value[0], (bytes, bytearray)) else "GenericHashTable"
            out[f"{name}@odata.type"] = f"#Collection(Exchange.{kind})"
    return out


def strip_annotations(value: Any) -> Any:
    """Drop every key containing ``@`` (OData and admin-API annotations, §3.2), recursively."""
    if isinstance(value, dict):
        return {k: strip_annotations(v) for k, v in value.items() if "@" not in k}
    if isinstance(value, list):
        return [strip_annotations(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------- errors


def _split_detail(text: str) -> tuple[str, str, str] | None:
    """Parse §4.3 format A (``Id|Type|message``) or format B (JSON in the string) into (id, type, message)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            localized: dict[str, Any] = data["localizedString"] if isinstance(data.get("localizedString"), dict) else {}
            type_name = str(data.get("TypeName") or data.get("ClassName") or "")
            message = str(data.get("Message") or localized.get("Message") or "")
            error_id = str(localized.get("stringId") or "")
            if type_name or message:
                return error_id, type_name, message
    parts = text.split("|", 2)
    if len(parts) == 3 and "." in parts[1] and " " not in parts[1].strip():
        return parts[0].strip(), parts[1].strip(), parts[2].strip()
    return None


def parse_error(body: Any) -> tuple[str, str, str]:
    """(error id, .NET exception type, message) from an admin-API error envelope (§4.2 precedence)."""
    if not isinstance(body, dict):
        return "", "", ""
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    details: list[Any] = error["details"] if isinstance(error.get("details"), list) else []
    for detail in details:
        if isinstance(detail, dict) and isinstance(detail.get("message"), str) and detail["message"].strip():
            parsed = _split_detail(detail["message"])
            if parsed:
                return parsed
            return "", "", detail["message"].strip()
    inner: dict[str, Any] = error["innererror"] if isinstance(error.get("innererror"), dict) else {}
    internal: dict[str, Any] = inner["internalexception"] if isinstance(inner.get("internalexception"), dict) else {}
    if internal.get("message"):
        text = str(internal["message"])
        parsed = _split_detail(text)
        if parsed:
            return parsed
        return "", str(internal.get("type") or ""), text
    return "", str(inner.get("type") or ""), str(error.get("message") or "")


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _raw_body(response: requests.Response) -> bytes:
    """An error answer's bytes without trusting ``Content-Encoding``.

    403 bodies are NUL runs sometimes declared gzip although they are not gzip (§1.3, [LIVE]); requests would
    raise ContentDecodingError before the status could be looked at. So the body is read undecoded (the request
    was streamed) and gunzipped only when it really is gzip.
    """
    raw = getattr(response, "raw", None)
    if raw is None or getattr(response, "_content", False) is not False:  # already read (or a test transport)
        try:
            return response.content or b""
        except requests.RequestException:
            return b""
    try:
        data = raw.read(decode_content=False) or b""
    except Exception:  # noqa: BLE001 - a cut or broken error body must not hide the status
        data = b""
    finally:
        response.close()
    if "gzip" in response.headers.get("Content-Encoding", "").lower() and data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            pass
    return data


def _body_text(data: bytes) -> str:
    return data.replace(b"\0", b"").decode("utf-8", "replace").strip()


def _json_or_none(text: str) -> Any:
    if not text.startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------- HTTP session


class _TrustingSession(requests.Session):
    """A Session whose own ``verify`` wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.

    requests lets those variables replace ``Session.verify`` when a call passes no ``verify`` (MSAL never
    does), so a session told to trust the emulator's CA would still fail. Proxies and the rest of the
    environment (``trust_env``) keep working.
    """

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            settings["verify"] = self.verify
        return settings


def _new_session(ca_file: str | None) -> requests.Session:
    session = _TrustingSession()
    if ca_file:
        session.verify = ca_file
    return session


# --------------------------------------------------------------------------------------------- tokens


class _TokenEndpointFailure(Exception):
    """A transient token-endpoint failure, retried by :meth:`_TokenSource.token`; never leaves this module."""

    def __init__(self, reason: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# AADSTS700024: "Client assertion is not within its valid time range" (an expired federated token).
_EXPIRED_ASSERTION_CODES = frozenset({700024})


class _ExpiredAssertion(Exception):
    """Entra refused the client assertion as expired (AADSTS700024); :meth:`_TokenSource.token` asks once more."""


class _TimeoutSession(_TrustingSession):
    """MSAL's managed-identity calls pass no timeout; on a machine without IMDS they would hang for minutes."""

    def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def, override]
        kwargs.setdefault("timeout", _MANAGED_IDENTITY_TIMEOUT)
        return super().request(method, url, **kwargs)


_MANAGED_IDENTITY_TIMEOUT = (5, 30)  # connect, read (seconds)


class _ManagedIdentityApp:
    """MSAL's ManagedIdentityClient behind the two things :class:`_TokenSource` uses of an MSAL app.

    It takes a resource, not scopes (the managed-identity endpoints speak the v1 ``resource`` parameter).
    """

    def __init__(self, credential: ManagedIdentity, ca_file: str | None, http_cache: dict[Any, Any]) -> None:
        session = _TimeoutSession()
        if ca_file:
            session.verify = ca_file
        self.token_cache = msal.TokenCache()
        self._client = msal.ManagedIdentityClient(
            credential.msal_managed_identity(), http_client=session, token_cache=self.token_cache,
            http_cache=http_cache,
        )

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
        scope = scopes[0]
        resource = scope[: -len("/.default")] if scope.endswith("/.default") else scope
        result: dict[str, Any] = self._client.acquire_token_for_client(resource=resource)
        return result


def _status_of(exc: Exception) -> int | None:
    digits = "".join(ch for ch in str(exc).rsplit(" ", 1)[-1] if ch.isdigit())
    return int(digits) if digits else None


class _TokenSource:
    """One MSAL ConfidentialClientApplication per (authority, credential) with its token cache reused."""

    def __init__(self, endpoints: Endpoints, credential: Credential, ca_file: str | None) -> None:
        self._endpoints = endpoints
        self._credential = credential
        self._ca_file = ca_file
        self._app: msal.ConfidentialClientApplication | _ManagedIdentityApp | None = None
        self._lock = threading.Lock()
        self._http_cache: dict[Any, Any] = {}  # MSAL's throttling memory, ours so a retry can clear it

    def _build(self) -> msal.ConfidentialClientApplication | _ManagedIdentityApp:
        if isinstance(self._credential, ManagedIdentity):
            return _ManagedIdentityApp(self._credential, self._ca_file, self._http_cache)
        try:
            client_credential = self._credential.msal_credential()
        except ExoError:
            raise
        except Exception as exc:  # noqa: BLE001 - a credential problem must not leak its content
            raise AuthenticationError(
                f"cannot use the {self._credential.describe()}: {type(exc).__name__}"
            ) from None
        known = self._endpoints.known_authority
        try:
            return msal.ConfidentialClientApplication(
                self._credential.client_id,
                client_credential=client_credential,
                authority=self._endpoints.authority,
                # A custom authority (the emulator, a private endpoint) is not in Microsoft's instance
                # discovery list: MSAL must not ask login.microsoftonline.com about it.
                instance_discovery=None if known else False,
                validate_authority=known,
                http_client=_new_session(self._ca_file),
                token_cache=msal.TokenCache(),
                http_cache=self._http_cache,
            )
        except ValueError as exc:
            # MSAL raises ValueError for a malformed credential or an unreachable OIDC discovery document.
            raise AuthenticationError(
                f"cannot set up token requests for the {self._credential.describe()} at "
                f"{self._endpoints.authority}: {_redacted_reason(exc)}"
            ) from None
        except requests.RequestException as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: requests.RequestException) -> TransportError:
        """The authority could not be reached: an untrusted certificate, or the network (never the content)."""
        if isinstance(exc, requests.exceptions.SSLError):
            return TransportError(_tls_message(self._endpoints.authority, self._ca_file))
        return TransportError(f"cannot reach the token authority {self._endpoints.authority} ({type(exc).__name__})")

    def _app_locked(self) -> msal.ConfidentialClientApplication | _ManagedIdentityApp:
        if self._app is None:
            self._app = self._build()
        return self._app

    def token(self, retry: RetryPolicy | None = None) -> str:
        """An access token; a failing token endpoint (5xx, 429, network) is retried like the admin API (§5)."""
        retry = retry or RetryPolicy()
        attempt = 0
        asked_again = False
        while True:
            try:
                return self._token_once()
            except _ExpiredAssertion:
                # The platform may have refreshed the token since it was read: one more sign-in reads (or
                # fetches) it again. A token that is still expired is reported with its expiry and the fix.
                if asked_again:
                    raise self._expired() from None
                asked_again = True
                log.warning("token request: the federated token had expired; reading it again")
            except _TokenEndpointFailure as failure:
                if attempt >= retry.max_retries:
                    raise TokenEndpointUnavailable(
                        f"Entra ID's token endpoint ({self._endpoints.authority}) is still unavailable "
                        f"({failure.reason}) after {attempt} retries. This is on Microsoft's side (or the network "
                        "to it), not a problem with the app's credential: wait a few minutes and run again.",
                        status=failure.status,
                    ) from None
                delay = retry.backoff(attempt)
                log.warning("token request: %s, retrying in %.1fs", failure.reason, delay)
                retry.sleep(delay)
                attempt += 1
                with self._lock:
                    # MSAL remembers a 5xx for its Retry-After (5 s by default) and would answer the retry from
                    # that memory without asking; our own back-off decides when to ask again.
                    self._http_cache.clear()

    def _token_once(self) -> str:
        with self._lock:
            app = self._app_locked()
            try:
                result = app.acquire_token_for_client(scopes=[self._endpoints.scope])
            except ExoError:
                raise
            except msal.exceptions.MsalServiceError as exc:
                # MSAL raises this for an HTTP status >= 500 from the token endpoint.
                raise _TokenEndpointFailure(str(exc).split(":")[-1].strip() or "HTTP 5xx", _status_of(exc)) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                if isinstance(exc, requests.exceptions.SSLError):
                    raise self._unreachable(exc) from None
                if isinstance(self._credential, ManagedIdentity):
                    raise self._no_managed_identity(type(exc).__name__) from None
                raise _TokenEndpointFailure(type(exc).__name__, None) from None
            except requests.RequestException as exc:
                raise self._unreachable(exc) from None
            except ValueError as exc:
                raise AuthenticationError(
                    f"cannot request a token with the {self._credential.describe()}: {_redacted_reason(exc)}"
                ) from None
        if not isinstance(result, dict) or not result.get("access_token"):
            raise self._refused(result if isinstance(result, dict) else {})
        return str(result["access_token"])

    def _refused(self, result: Mapping[str, Any]) -> ExoError:
        error = str(result.get("error") or "no token")
        description = str(result.get("error_description") or "").split("\r\n")[0]
        codes = {int(c) for c in result.get("error_codes") or [] if str(c).isdigit()}
        if error in _TOKEN_TRANSIENT_ERRORS:
            raise _TokenEndpointFailure(error, None)
        if codes & _EXPIRED_ASSERTION_CODES:
            raise _ExpiredAssertion()
        if isinstance(self._credential, ManagedIdentity):
            return self._no_managed_identity(f"{error}: {_truncate(description)}")
        return AuthenticationError(
            f"Entra ID refused a token for the {self._credential.describe()} "
            f"(tenant {self._endpoints.authority.rsplit('/', 1)[-1]}, scope {self._endpoints.scope}): "
            f"{error}: {_truncate(description)} Check the tenant id, the client id and the credential; "
            f"the app also needs the 'Exchange.ManageAsApp' permission with admin consent."
        )

    def _expired(self) -> AuthenticationError:
        advice = getattr(self._credential, "expiry_advice", None)
        return AuthenticationError(
            f"Entra ID refused the {self._credential.describe()}: the federated token (client assertion) has "
            "expired or is not valid yet (AADSTS700024). "
            + (advice() if callable(advice) else "Federated tokens live minutes: the platform must issue a fresh "
               "one for each sign-in; check this machine's clock.")
        )

    def _no_managed_identity(self, reason: str) -> AuthenticationError:
        return AuthenticationError(
            f"cannot get a token for the {self._credential.describe()} ({reason}). A managed identity works only on "
            "an Azure machine or service that has one: enable it (or attach the user-assigned identity named by "
            "AZURE_CLIENT_ID), grant its service principal 'Exchange.ManageAsApp' and the 'Exchange Administrator' "
            "role, or unset AZURE_TOKEN_CREDENTIALS to use an app registration's credential instead."
        )

    def invalidate(self, token: str) -> None:
        """Forget ``token`` so that the next :meth:`token` asks Entra ID for a new one (after a 401)."""
        with self._lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if item.get("secret") == token:
                    cache.remove_at(item)


_TOKEN_SOURCES: dict[tuple[str, ...], _TokenSource] = {}
_TOKEN_SOURCES_LOCK = threading.Lock()


def _token_source(endpoints: Endpoints, credential: Credential, ca_file: str | None) -> _TokenSource:
    """The process-wide token source for this authority, scope, CA and credential.

    Shared so that every client for the same tenant and credential (the CLI's commands, a Pulumi host's
    re-configures, parallel resources) reuses one MSAL app and its token cache. The key holds no secret:
    :meth:`Credential.cache_key` is a digest.
    """
    key = (endpoints.authority, endpoints.scope, ca_file or "", credential.client_id, credential.cache_key())
    with _TOKEN_SOURCES_LOCK:
        source = _TOKEN_SOURCES.get(key)
        if source is None:
            source = _TOKEN_SOURCES[key] = _TokenSource(endpoints, credential, ca_file)
        return source


def _redacted_reason(exc: Exception) -> str:
    """A reason safe to show: the exception type and the start of its message, with no key material."""
    text = str(exc)
    if "-----BEGIN" in text or len(text) > 200 or "eyJ" in text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _tls_message(url: str, ca_file: str | None) -> str:
    hint = (
        f"the server's certificate is not signed by the CA in {ca_file}"
        if ca_file
        else "the server's certificate is not trusted by this machine (set the tenant's caFile for a private CA)"
    )
    return f"TLS verification failed for {url}: {hint}. Verification is never turned off."


def _check_ca_file(ca_file: str | None) -> None:
    """A missing CA file fails here, by name, instead of as requests' OSError on the first call."""
    # A directory is valid too (requests passes it to OpenSSL as a CA path).
    if ca_file and not os.path.exists(ca_file):
        raise TransportError(
            f"the CA file {ca_file} (the tenant's caFile) does not exist; fix the path (relative paths are "
            "relative to the stack file) or remove caFile to trust this machine's CAs"
        )


# --------------------------------------------------------------------------------------------- client


class ExoClient:
    """Run Exchange Online cmdlets for one tenant. Thread-safe enough for the Pulumi host's parallel calls."""

    def __init__(
        self,
        config: TenantConfig,
        credential: Credential,
        *,
        session: requests.Session | None = None,
        timeout: float = 60.0,
        deadline: float = 900.0,
        retry: RetryPolicy = RetryPolicy(),
        observer: Callable[[str, int, dict[str, str], bytes], None] | None = None,
    ) -> None:
        self.config = config
        self.endpoints = resolve_endpoints(config)
        _check_ca_file(config.ca_file)
        self.timeout = timeout
        self.deadline = deadline
        self.retry = retry
        self.stats = CallStats()
        self._credential = credential
        self._session = session or _new_session(config.ca_file)
        # A caller's own session may not trust the CA file: a per-call verify wins over the environment.
        self._verify: str | bool = config.ca_file or True
        self._tokens = _token_source(self.endpoints, credential, config.ca_file)
        self._stats_lock = threading.Lock()
        self.connection_id = str(uuid.uuid4())
        self._anchor = self._anchor_mailbox()
        # Where InvokeCommand is sent: the cloud's host until a regional redirect pins the tenant's own host.
        self._base = self.endpoints.api_base
        # Sees every admin-API answer (cmdlet, status, headers, body bytes): `mailflow doctor --record`.
        self.observer = observer

    def __repr__(self) -> str:
        return f"ExoClient(tenant={self.config.label!r}, endpoint={self.endpoints.api_base!r}, credential={self._credential!r})"

    # ------------------------------------------------------------------ request building

    def _anchor_mailbox(self) -> str:
        """``APP:SystemMailbox{...}@<initial domain or tenant GUID>`` (§1.3): never a custom domain."""
        initial = self.config.initial_domain
        if initial and is_initial_domain(initial):
            return f"APP:{ANCHOR_SYSTEM_MAILBOX}@{initial}"
        if self.config.tenant_id:
            return f"APP:{ANCHOR_SYSTEM_MAILBOX}@{self.config.tenant_id}"
        raise ExoError(
            f"the tenant's initialDomain {initial!r} is not its initial domain (<name>.onmicrosoft.com); Exchange "
            "Online routes app-only calls by that domain or by the tenant id. Set initialDomain to the "
            ".onmicrosoft.com domain (Microsoft 365 admin center, Settings, Domains), or set the tenant id"
        )

    @property
    def invoke_url(self) -> str:
        return f"{self._base}/adminapi/beta/{quote(self.config.tenant, safe='')}/InvokeCommand"

    @property
    def credential(self) -> Credential:
        """The credential (its repr and describe() never show the secret): `mailflow doctor` checks its expiry."""
        return self._credential

    def token_claims(self) -> dict[str, Any]:
        """The access token's claims (roles, wids, aud, tid), decoded without verification: for diagnostics only
        (the service verifies it); the token itself is never returned or shown."""
        # late: PyJWT loads cryptography (a tenth of a second of every start-up); only diagnostics read claims.
        import jwt

        try:
            claims = jwt.decode(self._token(), options={"verify_signature": False})
        except jwt.PyJWTError:
            return {}
        return dict(claims)

    @property
    def api_base(self) -> str:
        """The admin-API base URL in use: the cloud's host, or the regional host a redirect pinned."""
        return self._base

    def _headers(self, cmdlet: str, page_size: int) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "X-AnchorMailbox": self._anchor,
            "X-CmdletName": cmdlet,
            "X-ResponseFormat": "json",
            "Prefer": f"odata.maxpagesize={max(1, min(int(page_size), 1000))}",
            "connection-id": self.connection_id,
        }

    def _check_next_link(self, link: str) -> str:
        """Only follow a nextLink on an admin-API host: the bearer token must not go anywhere else."""
        parts = urlsplit(link)
        if parts.scheme != "https" or not self.endpoints.may_receive_token((parts.hostname or "").lower()):
            raise TransportError(
                f"the service returned a next-page link to an unexpected host ({parts.scheme}://{parts.hostname}); "
                "refusing to send the token there"
            )
        return link

    # ------------------------------------------------------------------ public API

    def invoke(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        select: Iterable[str] | None = None,
        page_size: int = 1000,
    ) -> InvokeResult:
        """Run one cmdlet, following every page; raise a typed :class:`ExoError` on failure."""
        body = json.dumps(
            {"CmdletInput": {"CmdletName": cmdlet, "Parameters": encode_parameters(parameters)}},
            separators=(",", ":"),
        ).encode("utf-8")
        headers = self._headers(cmdlet, page_size)
        url = self.invoke_url
        if select:
            url += "?$select=" + ",".join(select)
        ends_at = time.monotonic() + self.deadline
        values: list[dict[str, Any]] = []
        warnings: list[str] = []
        while url:
            page = self._send(url, body, headers, cmdlet, ends_at)
            next_link = page.get("@odata.nextLink")
            for warning in page.get("@adminapi.warnings") or []:
                if next_link and _MORE_RESULTS_WARNING in str(warning):
                    continue  # we are fetching those results (§3.3)
                warnings.append(str(warning))
            errors = page.get("@adminapi.errors")
            if errors:
                self._raise_annotation_errors(cmdlet, errors)
            for item in page.get("value") or []:
                values.append(strip_annotations(item) if isinstance(item, dict) else {"value": item})
            url = self._check_next_link(str(next_link)) if next_link else ""
        return InvokeResult(values, warnings)

    def list(self, noun: str) -> list[dict[str, Any]]:
        """Every object of ``Get-<noun>`` (all pages). Outbound connectors include test-mode ones."""
        records = self.invoke(f"Get-{noun}", {"ResultSize": "Unlimited"}).values
        if noun.lower() == "outboundconnector":
            # exo-cmdlets.md §5: -IncludeTestModeConnectors $true returns *only* test-mode connectors per the
            # docs, *all* of them per Microsoft365DSC. The union of both calls is right under either reading.
            extra = self.invoke(
                f"Get-{noun}", {"ResultSize": "Unlimited", "IncludeTestModeConnectors": True}
            ).values
            records = _union_by_guid(records, extra)
        return records

    def get(self, noun: str, identity: str, *, retry_not_found: bool = False) -> dict[str, Any]:
        """One object by identity (name or Guid); raises :class:`NotFound`.

        ``retry_not_found`` retries a NotFound a bounded number of times: right after a create the object may
        not be readable yet (§3.5). Use it only then; a plain read must report absence at once.
        """
        attempt = 0
        while True:
            try:
                return self._get_once(noun, identity)
            except NotFound:
                if not retry_not_found or attempt >= self.retry.not_found_retries:
                    raise
                delay = min(self.retry.max_delay, self.retry.not_found_delay * (2**attempt))
                log.info("Get-%s %s: not found yet, retrying in %.1fs (read after write)", noun, identity, delay)
                self.retry.sleep(delay)
                attempt += 1

    def _get_once(self, noun: str, identity: str) -> dict[str, Any]:
        cmdlet = f"Get-{noun}"
        try:
            values = self.invoke(cmdlet, {"Identity": identity}).values
        except NotFound:
            values = []
        if not values and noun.lower() == "outboundconnector":
            # A test-mode connector is invisible to a plain Get under the documented reading (see list()).
            try:
                values = self.invoke(cmdlet, {"Identity": identity, "IncludeTestModeConnectors": True}).values
            except NotFound:
                values = []
        if not values:
            raise NotFound(f"'{identity}' does not exist in {self.config.label}", cmdlet=cmdlet, status=404)
        return values[0]

    def new(self, noun: str, parameters: Mapping[str, Any]) -> InvokeResult:
        """``New-<noun>`` with ``parameters``; the created object is in ``values``.

        If the answer to a first attempt was lost (dropped connection, timeout, 504) the retry may meet the
        object that attempt created, as AlreadyExists. Callers only create what a fresh read said was absent,
        so the object is read back and returned as created, with a warning saying so.
        """
        try:
            return self.invoke(f"New-{noun}", parameters)
        except AlreadyExists as exc:
            name = next((str(v) for k, v in parameters.items() if k.lower() in ("name", "identity")), "")
            if not getattr(exc, "after_lost_answer", False) or not name:
                raise
        record = self.get(noun, name, retry_not_found=True)
        return InvokeResult(
            [record],
            [f"New-{noun} '{name}' was sent again after its answer was lost; the object the first attempt "
             "created was read back"],
        )

    def set(self, noun: str, identity: str, parameters: Mapping[str, Any]) -> InvokeResult:
        """``Set-<noun> -Identity`` with only the given parameters (minimal writes)."""
        params = {"Identity": identity, **{k: v for k, v in parameters.items() if k.lower() != "identity"}}
        return self.invoke(f"Set-{noun}", params)

    def remove(self, noun: str, identity: str) -> InvokeResult:
        """``Remove-<noun> -Identity -Confirm:$false`` (``Confirm: true`` would only ask, §7.3)."""
        return self.invoke(f"Remove-{noun}", {"Identity": identity, "Confirm": False})

    # typed wrappers: raw service records; normalisation belongs to the specs layer

    def list_inbound_connectors(self) -> builtins.list[dict[str, Any]]:
        return self.list("InboundConnector")

    def get_inbound_connector(self, identity: str, *, retry_not_found: bool = False) -> dict[str, Any]:
        return self.get("InboundConnector", identity, retry_not_found=retry_not_found)

    def new_inbound_connector(self, parameters: Mapping[str, Any]) -> InvokeResult:
        return self.new("InboundConnector", parameters)

    def set_inbound_connector(self, identity: str, parameters: Mapping[str, Any]) -> InvokeResult:
        return self.set("InboundConnector", identity, parameters)

    def remove_inbound_connector(self, identity: str) -> InvokeResult:
        return self.remove("InboundConnector", identity)

    def list_outbound_connectors(self) -> builtins.list[dict[str, Any]]:
        return self.list("OutboundConnector")

    def get_outbound_connector(self, identity: str, *, retry_not_found: bool = False) -> dict[str, Any]:
        return self.get("OutboundConnector", identity, retry_not_found=retry_not_found)

    def new_outbound_connector(self, parameters: Mapping[str, Any]) -> InvokeResult:
        return self.new("OutboundConnector", parameters)

    def set_outbound_connector(self, identity: str, parameters: Mapping[str, Any]) -> InvokeResult:
        return self.set("OutboundConnector", identity, parameters)

    def remove_outbound_connector(self, identity: str) -> InvokeResult:
        return self.remove("OutboundConnector", identity)

    def validate_outbound_connector(self, identity: str, recipients: Iterable[str]) -> InvokeResult:
        """``Validate-OutboundConnector``: tests the smart hosts and sends real test mail to ``recipients``."""
        return self.invoke("Validate-OutboundConnector", {"Identity": identity, "Recipients": list(recipients)})

    def list_accepted_domains(self) -> builtins.list[dict[str, Any]]:
        return self.list("AcceptedDomain")

    def get_accepted_domain(self, identity: str) -> dict[str, Any]:
        return self.get("AcceptedDomain", identity)

    def set_accepted_domain(self, identity: str, parameters: Mapping[str, Any]) -> InvokeResult:
        return self.set("AcceptedDomain", identity, parameters)

    # ------------------------------------------------------------------ sending

    def _count(self, cmdlet: str, *, retry: bool) -> None:
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.by_cmdlet[cmdlet] += 1
            if retry:
                self.stats.retries += 1

    def _token(self) -> str:
        with self._stats_lock:
            self.stats.token_requests += 1
        return self._tokens.token(self.retry)

    def _send(
        self, url: str, body: bytes, headers: Mapping[str, str], cmdlet: str, ends_at: float
    ) -> dict[str, Any]:
        """POST one page with retries (§5) and one token refresh on 401; return the parsed JSON envelope."""
        retries = 0
        refreshed = False
        repeat = False
        redirects = 0
        lost_answer = False  # a previous attempt may have run on the server (its answer never came back)
        while True:
            remaining = ends_at - time.monotonic()
            if remaining <= 0:
                raise TransportError(
                    f"gave up after the overall deadline of {self.deadline:g}s", cmdlet=cmdlet
                )
            token = self._token()
            request_id = str(uuid.uuid4())
            sent = dict(headers, Authorization=f"Bearer {token}")
            sent["client-request-id"] = request_id
            self._count(cmdlet, retry=repeat)
            repeat = True
            try:
                response, data = self._post_once(url, body, sent, min(self.timeout, remaining))
            except requests.exceptions.SSLError:
                raise TransportError(_tls_message(self.endpoints.api_base, self.config.ca_file), cmdlet=cmdlet) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                reason = type(exc).__name__
                lost_answer = lost_answer or not isinstance(exc, requests.ConnectTimeout)
                log.warning("%s: %s (request %s, attempt %d)", cmdlet, reason, request_id, retries + 1)
                if retries >= self.retry.max_retries:
                    raise ConnectionRetriesExhausted(
                        f"the connection to {self.endpoints.api_base} failed {retries + 1} times ({reason}); "
                        "check the network, proxy and firewall, then try again",
                        cmdlet=cmdlet,
                    ) from None
                self._wait(self.retry.backoff(retries), ends_at, cmdlet, reason)
                retries += 1
                continue

            status = response.status_code
            self._observe(cmdlet, response, data)
            text = _body_text(data) if status != 200 else ""
            log.debug("%s: HTTP %d (request %s, attempt %d)", cmdlet, status, request_id, retries + 1)
            if status == 200:
                return self._parse_page(data, cmdlet)
            if status == 204:
                return {}
            if status in _REDIRECT_STATUSES and response.headers.get("Location") and redirects < 3:
                # A regional redirect (§1.4): the Authorization header is re-sent by this loop (requests would
                # drop it), only to an admin-API host of this cloud, and the host is pinned for later calls.
                url = self._follow_redirect(url, response.headers["Location"], cmdlet)
                redirects += 1
                continue
            if status == 401 and not refreshed:
                # An expired or revoked token: drop it from the cache and try once more with a fresh one.
                log.info("%s: HTTP 401, refreshing the token once (request %s)", cmdlet, request_id)
                self._tokens.invalidate(token)
                refreshed = True
                continue
            retryable = status in _RETRY_STATUSES or _CONCURRENCY_TEXT in text or (
                status in (400, 500) and any(t in text for t in _TRANSIENT_EXCEPTIONS)
            )
            if retryable:
                log.warning("%s: HTTP %d, will retry (request %s, attempt %d)", cmdlet, status, request_id,
                            retries + 1)
                if retries >= self.retry.max_retries:
                    raise Throttled(
                        f"Exchange Online is still throttling or unavailable (HTTP {status}) after "
                        f"{retries} retries; wait a few minutes and run again",
                        cmdlet=cmdlet,
                        status=status,
                    )
                lost_answer = lost_answer or status == 504
                delay = _retry_after(response)
                # The service's Retry-After is honoured as given; one longer than the deadline allows ends
                # the call now (as Throttled) instead of hammering the service early.
                self._wait(self.retry.backoff(retries) if delay is None else delay, ends_at, cmdlet,
                           f"HTTP {status}")
                retries += 1
                continue
            try:
                self._raise_for(status, text, cmdlet, response)
            except ExoError as exc:
                exc.after_lost_answer = lost_answer  # type: ignore[attr-defined]
                raise

    def _post_once(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[requests.Response, bytes]:
        """One POST and its whole body. Streamed, so that an error body that lies about its encoding (the 403's
        NUL bytes declared gzip) is read raw instead of failing inside requests before the status is seen."""
        response = self._session.post(
            url, data=body, headers=headers, timeout=timeout, verify=self._verify, allow_redirects=False,
            stream=True,
        )
        if response.status_code != 200:
            return response, _raw_body(response)
        try:
            return response, response.content or b""
        except requests.exceptions.ContentDecodingError:
            raise TransportError(
                "the answer declared a compression it did not use; a proxy in between may have changed it",
                cmdlet=headers.get("X-CmdletName"),
                status=200,
            ) from None

    def _follow_redirect(self, url: str, location: str, cmdlet: str) -> str:
        """The redirect's target with :446 rewritten to 443, if it is an admin-API host of this cloud; pinned."""
        target = urlsplit(urljoin(url, location))
        host = (target.hostname or "").lower()
        if target.scheme != "https" or not self.endpoints.may_receive_token(host):
            raise TransportError(
                f"the service redirected to {target.scheme}://{host}, which is not an Exchange admin-API host of "
                f"the {self.config.cloud} cloud; refusing to send the token there",
                cmdlet=cmdlet,
            )
        port = _REDIRECT_PORT_REWRITE.get(target.port or 443, target.port)
        netloc = host if port in (None, 443) else f"{host}:{port}"
        if ":" in host:
            netloc = f"[{host}]" if port in (None, 443) else f"[{host}]:{port}"
        base = f"https://{netloc}"
        with self._stats_lock:
            if base != self._base:
                log.info("%s: the tenant lives on %s (regional redirect); later calls go there", cmdlet, base)
            self._base = base
        return target._replace(netloc=netloc).geturl()

    def _observe(self, cmdlet: str, response: requests.Response, data: bytes) -> None:
        if self.observer is not None:
            self.observer(cmdlet, response.status_code, dict(response.headers), data)

    def _wait(self, delay: float, ends_at: float, cmdlet: str, reason: str) -> None:
        if time.monotonic() + delay > ends_at:
            raise Throttled(
                f"still failing ({reason}) and the next retry would pass the overall deadline of {self.deadline:g}s",
                cmdlet=cmdlet,
            )
        self.retry.sleep(max(0.0, delay))

    def _parse_page(self, raw: bytes, cmdlet: str) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError:
            raise TransportError(
                "the answer was not JSON: the endpoint is probably not the Exchange admin API (check the tenant's "
                "endpoint setting or a proxy in between)",
                cmdlet=cmdlet,
                status=200,
            ) from None
        if not isinstance(data, dict):
            raise TransportError("the answer was not an admin-API envelope", cmdlet=cmdlet, status=200)
        return data

    def _raise_for(self, status: int, text: str, cmdlet: str, response: requests.Response) -> NoReturn:
        body = _json_or_none(text)
        error_id, exception_type, message = parse_error(body)
        message = _truncate(message)
        if status == 401:
            raise AuthenticationError(
                f"Exchange Online refused the app's token (HTTP 401) even after a refresh. Check that the token is "
                f"for {self.endpoints.scope} in tenant {self.config.tenant}, and {_CONSENT_HINT}."
                + (f" Service said: {message}" if message else ""),
                cmdlet=cmdlet,
                status=status,
            )
        if status == 403:
            raise PermissionDenied(
                f"Exchange Online accepted the token but will not run {cmdlet} for this app (HTTP 403). To fix: "
                f"{_ROLE_HINT}; and {_CONSENT_HINT}.",
                cmdlet=cmdlet,
                status=status,
            )
        if status == 404 or any(t in exception_type for t in _NOT_FOUND_TYPES):
            raise NotFound(message or "the object does not exist", cmdlet=cmdlet, status=status)
        if _is_already_exists(exception_type):
            raise AlreadyExists(message or "an object with that name already exists", cmdlet=cmdlet, status=status)
        if (body is not None and exception_type) or (isinstance(body, dict) and "error" in body):
            raise ServiceValidationError(
                message or "Exchange refused the parameters",
                exception_type=exception_type,
                error_id=error_id,
                cmdlet=cmdlet,
                status=status,
            )
        raise TransportError(
            f"unexpected HTTP {status} from {self.endpoints.api_base}"
            + (f": {_truncate(text)[:200]}" if text and body is None and text.isprintable() else ""),
            cmdlet=cmdlet,
            status=status,
        )

    def _raise_annotation_errors(self, cmdlet: str, errors: Any) -> NoReturn:
        """``@adminapi.errors`` on a 200: non-terminating cmdlet errors, treated as errors (§3.1)."""
        first = errors[0] if isinstance(errors, list) and errors else errors
        text = first if isinstance(first, str) else json.dumps(first)
        parsed = _split_detail(text) if isinstance(first, str) else parse_error({"error": first})
        error_id, exception_type, message = parsed or ("", "", text)
        if any(t in exception_type for t in _NOT_FOUND_TYPES):
            raise NotFound(_truncate(message), cmdlet=cmdlet, status=200)
        if _is_already_exists(exception_type):
            raise AlreadyExists(_truncate(message), cmdlet=cmdlet, status=200)
        raise ServiceValidationError(
            _truncate(message), exception_type=exception_type, error_id=error_id, cmdlet=cmdlet, status=200
        )


def _retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds: a (possibly fractional) number, or an HTTP date (§5)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _union_by_guid(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for record in [*first, *second]:
        key = str(record.get("Guid") or record.get("Identity") or record.get("Name") or id(record)).lower()
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out
