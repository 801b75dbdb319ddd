"""The admin API's send path, one step per concern, in the spirit of httpx's client layering.

``send_handling_retries`` -> ``send_handling_auth`` -> ``send_handling_redirects`` -> ``send_single_request``:

- retries (§5): a dropped or refused connection, throttling (429 with ``Retry-After``, the plain-text concurrency
  answer), 503/504 and the transient exceptions are tried again with back-off, within one budget and the overall
  deadline; an attempt whose answer was lost (it may have run on the server) is remembered for the caller;
- auth: the bearer token is attached, and a 401 gets one fresh token (an expired or revoked one);
- redirects (§1.4): a regional redirect is followed, with the token, only to an admin-API host of this cloud,
  port 446 rewritten to 443, and the host pinned for later calls;
- one request: one POST with a fresh ``client-request-id``, its whole body read (raw when it is an error).

Each step gets what it needs as arguments (:class:`Wire`, :class:`Request`, the token) and returns an
:class:`Answer`; none of them maps an answer to an error: that is :mod:`.service_errors`' job, done by the client
on the answer the steps hand back. Secrets: no step formats a token into a message or a log line.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping, Protocol
from urllib.parse import urljoin, urlsplit

import requests

from .errors import Throttled, TransportError
from .service_errors import body_text
from .tenant import Endpoints

__all__ = [
    "RetryPolicy",
    "CallStats",
    "ConnectionRetriesExhausted",
    "TokenProvider",
    "Wire",
    "Request",
    "Answer",
    "Outcome",
    "send_handling_retries",
    "send_handling_auth",
    "send_handling_redirects",
    "send_single_request",
    "new_session",
    "tls_message",
]

log = logging.getLogger("o365_mailflow.client")  # one logger for the client's story, whichever step tells it

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
_REDIRECT_STATUSES = frozenset({301, 302, 307, 308})
_MAX_REDIRECTS = 3
# exo-admin-api.md §1.4: regional redirects may name port 446; production clients (go-exoscc) rewrite it to 443.
_REDIRECT_PORT_REWRITE = {446: 443}
_CONNECTION_FAILURES = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


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
        return float(delay * (1 - self.jitter) + delay * self.jitter * self.random())


@dataclass
class CallStats:
    """What a client has sent: the reconciler reports it and the tests count calls with it."""

    requests: int = 0  # HTTP requests sent to the admin API (every page and every retry)
    by_cmdlet: Counter[str] = field(default_factory=Counter)  # InvokeCommand calls per cmdlet (pages counted)
    retries: int = 0  # requests after the first for the same page (retries, the token refresh, redirects)
    token_requests: int = 0  # times a token was requested from MSAL (cache hits included)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_request(self, cmdlet: str, *, repeat: bool) -> None:
        with self._lock:
            self.requests += 1
            self.by_cmdlet[cmdlet] += 1
            if repeat:
                self.retries += 1

    def count_token(self) -> None:
        with self._lock:
            self.token_requests += 1


class TokenProvider(Protocol):
    """Where the bearer token comes from (:mod:`.token_source`): a token, and forgetting one the API refused."""

    def token(self, retry: RetryPolicy | None = None) -> str: ...

    def invalidate(self, token: str) -> None: ...


@dataclass(frozen=True)
class Wire:
    """What the steps need from the client, read afresh for each page (callers may change ``retry`` or
    ``deadline`` on a client between calls)."""

    session: requests.Session
    verify: str | bool  # per call: a caller's own session may not trust the tenant's CA file
    tokens: TokenProvider
    retry: RetryPolicy
    timeout: float  # one request
    deadline: float  # the whole call, for messages (the clock is Request.ends_at)
    endpoints: Endpoints
    cloud: str
    ca_file: str | None
    stats: CallStats
    pin: Callable[[str, str], None]  # (base URL, cmdlet): a regional redirect named the tenant's own host
    observer: Callable[[str, int, dict[str, str], bytes], None] | None = None


@dataclass(frozen=True)
class Request:
    """One page's POST: the same body and headers whichever host, attempt or token it goes with."""

    url: str
    body: bytes
    headers: Mapping[str, str]  # without Authorization and client-request-id (added per request)
    cmdlet: str
    ends_at: float  # time.monotonic() after which no request is sent

    def to(self, url: str) -> Request:
        return replace(self, url=url)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer with its whole body, and where it came from."""

    status: int
    headers: Mapping[str, str]
    data: bytes
    url: str
    request_id: str

    @property
    def error_text(self) -> str:
        """The body as text when it is not a success page (what retries and error mapping read)."""
        return body_text(self.data) if self.status != 200 else ""


@dataclass(frozen=True)
class Outcome:
    """The answer the steps settled on, and whether an earlier attempt's answer was lost on the way back (that
    attempt may have run: a create retried after it meets its own object)."""

    answer: Answer
    after_lost_answer: bool


class _ConnectionLost(Exception):
    """No answer came back (refused, dropped, timed out); raised by the one-request step to the retry step."""

    def __init__(self, reason: str, *, url: str, request_id: str, may_have_run: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.url = url
        self.request_id = request_id
        self.may_have_run = may_have_run


# --------------------------------------------------------------------------------------------- retries


def send_handling_retries(wire: Wire, request: Request) -> Outcome:
    """Send until an answer is not worth retrying; one retry budget for lost connections and throttling (§5)."""
    after_lost_answer = False
    for retries in itertools.count():
        try:
            answer = send_handling_auth(wire, request, repeat=retries > 0)
        except _ConnectionLost as lost:
            after_lost_answer = after_lost_answer or lost.may_have_run
            log.warning("%s: %s (request %s, attempt %d)", request.cmdlet, lost.reason, lost.request_id, retries + 1)
            if retries >= wire.retry.max_retries:
                raise ConnectionRetriesExhausted(
                    f"the connection to {wire.endpoints.api_base} failed {retries + 1} times ({lost.reason}); "
                    "check the network, proxy and firewall, then try again",
                    cmdlet=request.cmdlet,
                ) from None
            _wait(wire, request, wire.retry.backoff(retries), lost.reason)
            request = request.to(lost.url)
            continue
        if not _is_retryable(answer):
            return Outcome(answer, after_lost_answer)
        log.warning("%s: HTTP %d, will retry (request %s, attempt %d)", request.cmdlet, answer.status,
                    answer.request_id, retries + 1)
        if retries >= wire.retry.max_retries:
            raise Throttled(
                f"Exchange Online is still throttling or unavailable (HTTP {answer.status}) after "
                f"{retries} retries; wait a few minutes and run again",
                cmdlet=request.cmdlet,
                status=answer.status,
            )
        after_lost_answer = after_lost_answer or answer.status == 504
        delay = _retry_after(answer.headers)
        # The service's Retry-After is honoured as given; one longer than the deadline allows ends the call now
        # (as Throttled) instead of hammering the service early.
        _wait(wire, request, wire.retry.backoff(retries) if delay is None else delay, f"HTTP {answer.status}")
        request = request.to(answer.url)
    raise AssertionError("unreachable")  # itertools.count() does not end


def _is_retryable(answer: Answer) -> bool:
    text = answer.error_text
    return answer.status in _RETRY_STATUSES or _CONCURRENCY_TEXT in text or (
        answer.status in (400, 500) and any(t in text for t in _TRANSIENT_EXCEPTIONS)
    )


def _wait(wire: Wire, request: Request, delay: float, reason: str) -> None:
    if time.monotonic() + delay > request.ends_at:
        raise Throttled(
            f"still failing ({reason}) and the next retry would pass the overall deadline of {wire.deadline:g}s",
            cmdlet=request.cmdlet,
        )
    wire.retry.sleep(max(0.0, delay))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds: a (possibly fractional) number, or an HTTP date (§5)."""
    value = (headers.get("Retry-After") or "").strip()
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


# --------------------------------------------------------------------------------------------- auth


def send_handling_auth(wire: Wire, request: Request, *, repeat: bool) -> Answer:
    """Send with a bearer token; on a 401, forget that token and send once more with a fresh one."""
    token = _token(wire)
    answer = send_handling_redirects(wire, request, token, repeat=repeat)
    if answer.status != 401:
        return answer
    # An expired or revoked token: drop it from the cache and try once more with a fresh one.
    log.info("%s: HTTP 401, refreshing the token once (request %s)", request.cmdlet, answer.request_id)
    wire.tokens.invalidate(token)
    return send_handling_redirects(wire, request.to(answer.url), _token(wire), repeat=True)


def _token(wire: Wire) -> str:
    wire.stats.count_token()
    return wire.tokens.token(wire.retry)


# --------------------------------------------------------------------------------------------- redirects


def send_handling_redirects(wire: Wire, request: Request, token: str, *, repeat: bool) -> Answer:
    """Send, following up to three regional redirects (§1.4) with the token (requests would drop it)."""
    answer = send_single_request(wire, request, token, repeat=repeat)
    for _ in range(_MAX_REDIRECTS):
        location = answer.headers.get("Location")
        if answer.status not in _REDIRECT_STATUSES or not location:
            return answer
        request = request.to(_redirect_target(wire, answer.url, location, request.cmdlet))
        answer = send_single_request(wire, request, token, repeat=True)
    return answer


def _redirect_target(wire: Wire, url: str, location: str, cmdlet: str) -> str:
    """The redirect's target with :446 rewritten to 443, if it is an admin-API host of this cloud; pinned."""
    target = urlsplit(urljoin(url, location))
    host = (target.hostname or "").lower()
    if target.scheme != "https" or not wire.endpoints.may_receive_token(host):
        raise TransportError(
            f"the service redirected to {target.scheme}://{host}, which is not an Exchange admin-API host of "
            f"the {wire.cloud} cloud; refusing to send the token there",
            cmdlet=cmdlet,
        )
    port = _REDIRECT_PORT_REWRITE.get(target.port or 443, target.port)
    netloc = host if port in (None, 443) else f"{host}:{port}"
    if ":" in host:
        netloc = f"[{host}]" if port in (None, 443) else f"[{host}]:{port}"
    wire.pin(f"https://{netloc}", cmdlet)
    return target._replace(netloc=netloc).geturl()


# --------------------------------------------------------------------------------------------- one request


def send_single_request(wire: Wire, request: Request, token: str, *, repeat: bool) -> Answer:
    """One POST with a fresh ``client-request-id``; its answer, or :class:`_ConnectionLost`."""
    remaining = request.ends_at - time.monotonic()
    if remaining <= 0:
        raise TransportError(f"gave up after the overall deadline of {wire.deadline:g}s", cmdlet=request.cmdlet)
    request_id = str(uuid.uuid4())
    headers = dict(request.headers, Authorization=f"Bearer {token}")
    headers["client-request-id"] = request_id
    wire.stats.count_request(request.cmdlet, repeat=repeat)
    try:
        response, data = _post(wire, request, headers, min(wire.timeout, remaining))
    except requests.exceptions.SSLError:
        raise TransportError(tls_message(wire.endpoints.api_base, wire.ca_file), cmdlet=request.cmdlet) from None
    except _CONNECTION_FAILURES as exc:
        # A connect timeout never reached the server; anything later may have run the cmdlet.
        raise _ConnectionLost(type(exc).__name__, url=request.url, request_id=request_id,
                              may_have_run=not isinstance(exc, requests.ConnectTimeout)) from None
    if wire.observer is not None:
        wire.observer(request.cmdlet, response.status_code, dict(response.headers), data)
    log.debug("%s: HTTP %d (request %s)", request.cmdlet, response.status_code, request_id)
    return Answer(response.status_code, response.headers, data, request.url, request_id)


def _post(
    wire: Wire, request: Request, headers: Mapping[str, str], timeout: float
) -> tuple[requests.Response, bytes]:
    """One POST and its whole body. Streamed, so that an error body that lies about its encoding (the 403's
    NUL bytes declared gzip) is read raw instead of failing inside requests before the status is seen."""
    response = wire.session.post(
        request.url, data=request.body, headers=headers, timeout=timeout, verify=wire.verify,
        allow_redirects=False, stream=True,
    )
    if response.status_code != 200:
        return response, _raw_body(response)
    try:
        return response, response.content or b""
    except requests.exceptions.ContentDecodingError:
        raise TransportError(
            "the answer declared a compression it did not use; a proxy in between may have changed it",
            cmdlet=request.cmdlet,
            status=200,
        ) from None


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
        import gzip  # late: only a gzipped error body needs it, not every process that signs in

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            pass
    return data


# --------------------------------------------------------------------------------------------- HTTP session


class TrustingSession(requests.Session):
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


def new_session(ca_file: str | None) -> requests.Session:
    session = TrustingSession()
    if ca_file:
        session.verify = ca_file
    return session


def tls_message(url: str, ca_file: str | None) -> str:
    hint = (
        f"the server's certificate is not signed by the CA in {ca_file}"
        if ca_file
        else "the server's certificate is not trusted by this machine (set the tenant's caFile for a private CA)"
    )
    return f"TLS verification failed for {url}: {hint}. Verification is never turned off."
