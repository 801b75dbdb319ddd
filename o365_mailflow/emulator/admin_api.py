"""The Exchange admin API as the emulator serves it: ``POST /adminapi/beta/<tenant>/InvokeCommand``.

It reproduces the transport contract of exo-admin-api.md (§1 URLs, §2 the ``CmdletInput`` body, §3 the success
envelope and paging, §4 the 401/403/400/404 shapes, §5 throttling): bearer validation, body parsing, ``$select``,
``Prefer: odata.maxpagesize`` with ``@odata.nextLink`` continuations, the regional redirect, the request log and
fault injection. Cmdlet behaviour lives in :mod:`.cmdlets`; this module only does HTTP.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import time
import uuid
from typing import Any, Mapping

from flask import Flask, Response, request
from werkzeug.http import http_date

from . import tokens
from .cmdlets import MORE_RESULTS, UnknownCmdlet, run_cmdlet
from .context import Context, Cursor, Runner, host_url, json_response
from .errors import CmdletError, error_body
from .faults import CONCURRENCY_TEXT
from .store import TenantState

__all__ = ["admin_routes", "BadRequestBody"]

NUL_BODY = b"\x00" * 4096  # a 403 from the service is ~4 KB of NUL bytes, not JSON [LIVE S5, S12a]
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
PAGINATION_MESSAGE = "Expired or Invalid pagination request. Default Expiry time is 00:30:00"
_PREFER = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)


class BadRequestBody(ValueError):
    pass


# Paged results are kept in memory until they expire; past this many values in all, finished ones and then the
# oldest go first (their continuation then gets the pagination error, as from a restarted backend).
_CURSOR_BUDGET = 200_000


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


def _admin_response(obj: dict[str, Any], page_size: int | None) -> Response:
    response = json_response(obj, content_type=ODATA_JSON)
    response.headers["OData-Version"] = "4.0"
    response.headers["request-id"] = str(uuid.uuid4())
    if page_size is not None:
        response.headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
    return response


def _error_response(err: CmdletError, warnings: list[str] | None = None) -> Response:
    response = json_response(error_body(err, warnings), err.status)
    response.headers["X-ExceptionType"] = err.exception_type.rsplit(".", 1)[-1]
    response.headers["request-id"] = str(uuid.uuid4())
    return response


def _pagination_error() -> Response:
    return _error_response(CmdletError(PAGINATION_MESSAGE, exception_type="System.Exception"))


def _envelope(segment: str, values: list[dict[str, Any]], warnings: list[str]) -> dict[str, Any]:
    return {
        "@odata.context": f"{host_url()}/adminapi/beta/{segment}/$metadata#Collection(Exchange.GenericHashTable)",
        "adminapi.warnings@odata.type": "#Collection(String)",
        "@adminapi.warnings": warnings,
        "value": values,
    }


def _next_link(segment: str, token: str) -> str:
    query = f"%24skiptoken={token}"
    select = request.args.get("$select")
    if select:
        query = f"%24select={select}&{query}"
    return f"{host_url()}/adminapi/beta/{segment}/InvokeCommand?{query}"


def admin_routes(app: Flask, ctx: Context) -> None:  # noqa: C901
    """The admin API: InvokeCommand with auth, faults, the first page and its continuations."""

    def authorize(state: TenantState, cmdlet: str) -> Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _empty_401("missing bearer token")
        audiences = set(tokens.EXCHANGE_AUDIENCES) | {host_url(), ctx.base_url}
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

    def page(segment: str, cursor_id: str, cursor: Cursor, offset: int, page_size: int, first: bool) -> Response:
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

    def new_cursor(cursor: Cursor) -> str:
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
        cursor = Cursor(state.tenant_id, _body_hash(cmdlet, parameters), time.time(), values, warnings, page_size)
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

