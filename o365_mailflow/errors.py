"""Typed errors and diagnostics shared by every layer.

Why one module: the CLI maps these to exit codes and messages, the Pulumi providers map them to
``CheckFailure`` or engine errors, and the plan collects them; none of them should need to know which
layer raised. Messages are written for a mail admin, never contain a secret, and say what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

from .shapes import DiagnosticJson

__all__ = [
    "Severity",
    "Diagnostic",
    "MailflowError",
    "StackError",
    "ExoError",
    "NotFound",
    "AlreadyExists",
    "ServiceValidationError",
    "AuthenticationError",
    "PermissionDenied",
    "Throttled",
    "TransportError",
    "PlanError",
]


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a stack file, a plan or a routing check.

    ``path`` is the field path inside the stack file, e.g. ``("inboundConnectors", 0, "senderIpAddresses", 2)``.
    ``summary`` is a short sentence; ``detail`` says what to change; ``allowed`` lists what is accepted.
    ``file``/``line`` locate it when it comes from a stack file.
    """

    severity: Severity
    path: tuple[str | int, ...]
    summary: str
    detail: str = ""
    allowed: str | None = None
    file: str | None = None
    line: int | None = None
    code: str = ""  # stable identifier, e.g. "inbound.onpremises-needs-ip-or-cert"

    @property
    def dotted_path(self) -> str:
        out = ""
        for part in self.path:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += ("." if out else "") + part
        return out

    def format(self) -> str:
        """``FILE:LINE: path.to.field: message (allowed: ...)`` as `mailflow validate` prints it."""
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        text = self.summary
        if self.detail:
            text += f" {self.detail}"
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        prefix = "" if self.severity is Severity.ERROR else "warning: "
        path = f"{self.dotted_path}: " if self.path else ""
        return f"{where}{prefix}{path}{text}"

    def to_dict(self) -> DiagnosticJson:
        return {
            "severity": self.severity.value,
            "path": self.dotted_path,
            "summary": self.summary,
            "detail": self.detail,
            "allowed": self.allowed,
            "file": self.file,
            "line": self.line,
            "code": self.code,
        }


class MailflowError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass
class StackError(MailflowError):
    """A stack file (or Pulumi inputs) failed validation; carries every diagnostic, not only the first."""

    diagnostics: Sequence[Diagnostic] = field(default_factory=tuple)

    def __str__(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics) or "invalid stack"


class PlanError(MailflowError):
    """The desired state cannot be reached (e.g. an accepted domain the tenant does not have)."""


class ExoError(MailflowError):
    """An error answered by (or on the way to) Exchange Online. Never includes tokens or secrets."""

    def __init__(self, message: str, *, cmdlet: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cmdlet = cmdlet
        self.status = status

    def __str__(self) -> str:
        return f"{self.cmdlet}: {self.message}" if self.cmdlet else self.message


class NotFound(ExoError):
    """The object does not exist (HTTP 404, ManagementObjectNotFoundException)."""


class AlreadyExists(ExoError):
    """An object with that name already exists (ADObjectAlreadyExistsException)."""


class ServiceValidationError(ExoError):
    """Exchange refused the parameters; ``exception_type`` is the .NET type it named."""

    def __init__(self, message: str, *, exception_type: str = "", error_id: str = "", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.exception_type = exception_type
        self.error_id = error_id


class AuthenticationError(ExoError):
    """No token, or Exchange refused it (401)."""


class PermissionDenied(ExoError):
    """Token accepted but the app may not run the cmdlet (403): role or RBAC missing."""


class Throttled(ExoError):
    """Still throttled (429/503/504/concurrency limit) after the retry budget was spent."""


class TransportError(ExoError):
    """Network failure, timeout, TLS failure, or an answer that is not the admin API's."""
