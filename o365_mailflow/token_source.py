"""Bearer tokens for the admin API: one MSAL app per (authority, credential), its cache shared, its failures typed.

Why its own module: signing in is the auth step of the send path (:mod:`.transport` asks a
:class:`~.transport.TokenProvider` for a token and says which one the API refused); how a token is obtained
(client secret, certificate, federated assertion, managed identity), retried when Entra ID's endpoint fails and
explained when it is refused is a concern of its own. No message or log line carries a secret or an assertion.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

import msal
import requests

from .credentials import Credential, ManagedIdentity
from .errors import AuthenticationError, ExoError, Throttled, TransportError
from .service_errors import truncate as _truncate
from .tenant import Endpoints
from .transport import RetryPolicy, TrustingSession as _TrustingSession, new_session as _new_session
from .transport import tls_message as _tls_message

__all__ = ["TokenEndpointUnavailable", "TokenSource", "token_source"]

log = logging.getLogger("o365_mailflow.client")

# Token endpoint answers worth retrying (Entra's OAuth error codes for a transient failure, RFC 6749 §5.2 + Entra).
_TOKEN_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


class TokenEndpointUnavailable(AuthenticationError, Throttled):
    """Entra ID's token endpoint kept failing (5xx, 429, network) through every retry.

    An :class:`AuthenticationError` (no token) and a :class:`Throttled` (the retry budget is spent): the service is
    at fault, not the credential, so the message says to wait rather than to check the app registration.
    """


class _TokenEndpointFailure(Exception):
    """A transient token-endpoint failure, retried by :meth:`TokenSource.token`; never leaves this module."""

    def __init__(self, reason: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# AADSTS700024: "Client assertion is not within its valid time range" (an expired federated token).
_EXPIRED_ASSERTION_CODES = frozenset({700024})


class _ExpiredAssertion(Exception):
    """Entra refused the client assertion as expired (AADSTS700024); :meth:`TokenSource.token` asks once more."""


class _TimeoutSession(_TrustingSession):
    """MSAL's managed-identity calls pass no timeout; on a machine without IMDS they would hang for minutes."""

    def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def, override]
        kwargs.setdefault("timeout", _MANAGED_IDENTITY_TIMEOUT)
        return super().request(method, url, **kwargs)


_MANAGED_IDENTITY_TIMEOUT = (5, 30)  # connect, read (seconds)


class _ManagedIdentityApp:
    """MSAL's ManagedIdentityClient behind the two things :class:`TokenSource` uses of an MSAL app.

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


class TokenSource:
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


_TOKEN_SOURCES: dict[tuple[str, ...], TokenSource] = {}
_TOKEN_SOURCES_LOCK = threading.Lock()


def token_source(endpoints: Endpoints, credential: Credential, ca_file: str | None) -> TokenSource:
    """The process-wide token source for this authority, scope, CA and credential.

    Shared so that every client for the same tenant and credential (the CLI's commands, a Pulumi host's
    re-configures, parallel resources) reuses one MSAL app and its token cache. The key holds no secret:
    :meth:`Credential.cache_key` is a digest.
    """
    key = (endpoints.authority, endpoints.scope, ca_file or "", credential.client_id, credential.cache_key())
    with _TOKEN_SOURCES_LOCK:
        source = _TOKEN_SOURCES.get(key)
        if source is None:
            source = _TOKEN_SOURCES[key] = TokenSource(endpoints, credential, ca_file)
        return source


def _redacted_reason(exc: Exception) -> str:
    """A reason safe to show: the exception type and the start of its message, with no key material."""
    text = str(exc)
    if "-----BEGIN" in text or len(text) > 200 or "eyJ" in text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}"


