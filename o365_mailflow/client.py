"""The one door to a tenant: the Exchange Online admin API (``InvokeCommand``) over MSAL + requests.

Why one module: every caller (snapshot, apply, export, the Pulumi providers) needs the same token handling,
headers, paging, retries and error typing, and none of them should know that a cmdlet travels as JSON in a
POST. This module builds the request (§1.3 headers, §2.1 body), follows the pages (§3.3) and reads the envelope;
the send path's steps (retries, auth, redirects, one request) are in :mod:`.transport`, the tokens in
:mod:`.token_source`, and the meaning of an error answer in :mod:`.service_errors`. This follows
``reference/exo-admin-api.md`` (section numbers below refer to it); where the reference marks a behaviour as
inferred, the constant that encodes it is named and commented so it is easy to change.

Secrets: the client never formats a token, secret, assertion or private key into a message, a log line or a
repr. Log lines carry the cmdlet, the status, the attempt and the ``client-request-id`` only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote, urlsplit

import requests

from .credentials import Credential
from .errors import AlreadyExists, ExoError, NotFound, TransportError
from .service_errors import error_for_annotations, error_for_answer, parse_error
from .tenant import TenantConfig, is_initial_domain, resolve_endpoints
from .token_source import TokenEndpointUnavailable, token_source
from .transport import (
    CallStats,
    ConnectionRetriesExhausted,
    Request,
    RetryPolicy,
    Wire,
    new_session,
    send_handling_retries,
)

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
    # A record is copied whole (in C) and loses its few annotation keys after; scalars (almost every value: a
    # listing of 10,000 connectors holds ~400,000 of them) get no Python step each, only a class test.
    if isinstance(value, dict):
        out = dict(value)
        for key in [k for k in value if "@" in k]:
            del out[key]
        for key in [k for k, v in out.items() if isinstance(v, _NESTED)]:
            out[key] = strip_annotations(out[key])
        return out
    if isinstance(value, list):
        return [strip_annotations(v) if isinstance(v, _NESTED) else v for v in value]
    return value


_NESTED = (dict, list)



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
        self._session = session or new_session(config.ca_file)
        # A caller's own session may not trust the CA file: a per-call verify wins over the environment.
        self._verify: str | bool = config.ca_file or True
        self._tokens = token_source(self.endpoints, credential, config.ca_file)
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
                raise error_for_annotations(cmdlet, errors)
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

    # ------------------------------------------------------------------ sending

    def _token(self) -> str:
        self.stats.count_token()
        return self._tokens.token(self.retry)

    def _wire(self) -> Wire:
        """The send path's view of this client, read afresh per page (``retry``/``deadline`` may change)."""
        return Wire(
            session=self._session, verify=self._verify, tokens=self._tokens, retry=self.retry, timeout=self.timeout,
            deadline=self.deadline, endpoints=self.endpoints, cloud=self.config.cloud, ca_file=self.config.ca_file,
            stats=self.stats, pin=self._pin, observer=self.observer,
        )

    def _pin(self, base: str, cmdlet: str) -> None:
        """A regional redirect named the tenant's own host (§1.4): later calls go there directly."""
        with self._stats_lock:
            if base != self._base:
                log.info("%s: the tenant lives on %s (regional redirect); later calls go there", cmdlet, base)
            self._base = base

    def _send(
        self, url: str, body: bytes, headers: Mapping[str, str], cmdlet: str, ends_at: float
    ) -> dict[str, Any]:
        """POST one page through the send path (:mod:`.transport`); the parsed envelope, or a typed error."""
        outcome = send_handling_retries(self._wire(), Request(url, body, headers, cmdlet, ends_at))
        answer = outcome.answer
        if answer.status == 200:
            return self._parse_page(answer.data, cmdlet)
        if answer.status == 204:
            return {}
        error = error_for_answer(
            answer.status, answer.error_text, cmdlet,
            scope=self.endpoints.scope, tenant=self.config.tenant, api_base=self.endpoints.api_base,
        )
        error.after_lost_answer = outcome.after_lost_answer  # type: ignore[attr-defined]
        raise error

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


def _union_by_guid(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for record in [*first, *second]:
        key = str(record.get("Guid") or record.get("Identity") or record.get("Name") or id(record)).lower()
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out
