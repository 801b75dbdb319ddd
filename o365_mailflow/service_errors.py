"""What the admin API's error answers mean: an answer's status and body, mapped to one typed :class:`ExoError`.

Why its own module: the send path (:mod:`.transport`) only decides whether to retry, redirect or refresh; the
mapping of what is left (a 401 after a refresh, a 403, an error envelope, an ``@adminapi.errors`` annotation on
a 200) into the typed errors every caller catches follows ``reference/exo-admin-api.md`` §4 alone and is tested
through HTTP like the rest of the client. Messages are for a mail admin: they say what to fix.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import (
    AlreadyExists,
    AuthenticationError,
    ExoError,
    NotFound,
    PermissionDenied,
    ServiceValidationError,
    TransportError,
)

__all__ = ["parse_error", "error_for_answer", "error_for_annotations", "body_text", "truncate"]

_NOT_FOUND_TYPES = ("ManagementObjectNotFoundException",)
# Duplicate names: ADObjectAlreadyExistsException, ManagementObjectAlreadyExistsException and its subclasses, whose
# names do not contain that string: the connector tasks raise ErrorInboundConnectorAlreadyExistsException /
# ErrorOutboundConnectorAlreadyExistsException ([DECOMPILED], exo-admin-api.md). So match "AlreadyExists"; a
# duplicate *member* of a group is not a duplicate object.
_ALREADY_EXISTS_MARK = "AlreadyExists"
_NOT_ALREADY_EXISTS = ("MemberAlreadyExists",)
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


def truncate(text: str) -> str:
    """One line of at most :data:`_MAX_MESSAGE` characters: a service message as an exception shows it."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def body_text(data: bytes) -> str:
    """An error answer's bytes as text; the 403's NUL runs (§1.3) are dropped."""
    return data.replace(b"\0", b"").decode("utf-8", "replace").strip()


def _json_or_none(text: str) -> Any:
    if not text.startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def error_for_answer(
    status: int, text: str, cmdlet: str, *, scope: str, tenant: str, api_base: str
) -> ExoError:
    """The typed error for a final non-2xx answer (no retry, redirect or refresh is left to try), §4."""
    body = _json_or_none(text)
    error_id, exception_type, message = parse_error(body)
    message = truncate(message)
    if status == 401:
        return AuthenticationError(
            f"Exchange Online refused the app's token (HTTP 401) even after a refresh. Check that the token is "
            f"for {scope} in tenant {tenant}, and {_CONSENT_HINT}."
            + (f" Service said: {message}" if message else ""),
            cmdlet=cmdlet,
            status=status,
        )
    if status == 403:
        return PermissionDenied(
            f"Exchange Online accepted the token but will not run {cmdlet} for this app (HTTP 403). To fix: "
            f"{_ROLE_HINT}; and {_CONSENT_HINT}.",
            cmdlet=cmdlet,
            status=status,
        )
    if status == 404 or any(t in exception_type for t in _NOT_FOUND_TYPES):
        return NotFound(message or "the object does not exist", cmdlet=cmdlet, status=status)
    if _is_already_exists(exception_type):
        return AlreadyExists(message or "an object with that name already exists", cmdlet=cmdlet, status=status)
    if (body is not None and exception_type) or (isinstance(body, dict) and "error" in body):
        return ServiceValidationError(
            message or "Exchange refused the parameters",
            exception_type=exception_type,
            error_id=error_id,
            cmdlet=cmdlet,
            status=status,
        )
    return TransportError(
        f"unexpected HTTP {status} from {api_base}"
        + (f": {truncate(text)[:200]}" if text and body is None and text.isprintable() else ""),
        cmdlet=cmdlet,
        status=status,
    )


def error_for_annotations(cmdlet: str, errors: Any) -> ExoError:
    """``@adminapi.errors`` on a 200: non-terminating cmdlet errors, treated as errors (§3.1)."""
    first = errors[0] if isinstance(errors, list) and errors else errors
    text = first if isinstance(first, str) else json.dumps(first)
    parsed = _split_detail(text) if isinstance(first, str) else parse_error({"error": first})
    error_id, exception_type, message = parsed or ("", "", text)
    if any(t in exception_type for t in _NOT_FOUND_TYPES):
        return NotFound(truncate(message), cmdlet=cmdlet, status=200)
    if _is_already_exists(exception_type):
        return AlreadyExists(truncate(message), cmdlet=cmdlet, status=200)
    return ServiceValidationError(
        truncate(message), exception_type=exception_type, error_id=error_id, cmdlet=cmdlet, status=200
    )
