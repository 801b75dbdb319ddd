"""Errors the emulated cmdlets raise, and the admin API's error envelope for them.

Why: clients must be tested against the service's real error shape (exo-admin-api.md §4.2/§4.3): HTTP 400/404
with ``error.code``, a generic ``error.message`` ("Invalid Operation"), ``details[0].message`` in the pipe form
``<ErrorId>|<ExceptionType>|<message>`` and ``innererror.internalexception``. Parameter-transformation errors
carry no ``details`` (as in the live capture).

Choice (the reference has no exact English texts for connector rules): the ErrorId slot carries the
service's resource identifier from the decompiled code (e.g. ``InboundConnectorMissingTlsCertificateOrSenderIP``)
and the message is a paraphrase, as exo-cmdlets.md §2.2 recommends. Not-found uses the captured ``Ex6F9304``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CmdletError",
    "VALIDATION",
    "DATA_VALIDATION",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "INBOUND_ALREADY_EXISTS",
    "OUTBOUND_ALREADY_EXISTS",
    "connector_already_exists",
    "TRANSFORMATION",
    "AMBIGUOUS",
    "BINDING",
    "COMMAND_NOT_FOUND",
    "not_found",
    "already_exists",
    "validation",
    "transformation",
    "ambiguous",
    "missing_mandatory",
    "command_not_found",
    "error_body",
    "DC_FQDN",
]

VALIDATION = "Microsoft.Exchange.Management.Tasks.ValidationException"
DATA_VALIDATION = "Microsoft.Exchange.Data.DataValidationException"
NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
ALREADY_EXISTS = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
# [DECOMPILED] the connector tasks' own duplicate-name exceptions (subclasses of
# ManagementObjectAlreadyExistsException), exo-admin-api.md "checked side by side" notes.
INBOUND_ALREADY_EXISTS = "Microsoft.Exchange.Management.Tasks.ErrorInboundConnectorAlreadyExistsException"
OUTBOUND_ALREADY_EXISTS = "Microsoft.Exchange.Management.Tasks.ErrorOutboundConnectorAlreadyExistsException"
TRANSFORMATION = "Microsoft.Exchange.AdminApi.CommandInvocation.ParameterTransformationException"
AMBIGUOUS = "Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException"
BINDING = "System.Management.Automation.ParameterBindingException"
COMMAND_NOT_FOUND = "System.Management.Automation.CommandNotFoundException"
DC_FQDN = "EMU01A001DC01.EMUPR01A001.PROD.OUTLOOK.COM"


class CmdletError(Exception):
    """A cmdlet failure that becomes a JSON error envelope."""

    def __init__(
        self,
        message: str,
        *,
        exception_type: str = VALIDATION,
        error_id: str = "",
        status: int = 400,
        code: str = "BadRequest",
        with_details: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type
        self.error_id = error_id
        self.status = status
        self.code = code
        self.with_details = with_details


def not_found(identity: str) -> CmdletError:
    return CmdletError(
        f"The operation couldn't be performed because object '{identity}' couldn't be found on '{DC_FQDN}'.",
        exception_type=NOT_FOUND,
        error_id="Ex6F9304",
        status=404,
        code="NotFound",
    )


def already_exists(dn: str, error_id: str) -> CmdletError:
    """Duplicate name: the AD "already exists" text (exo-admin-api.md §8 item 7), the [X] resource id as ErrorId."""
    return CmdletError(f"The object '{dn}' already exists.", exception_type=ALREADY_EXISTS, error_id=error_id)


def connector_already_exists(name: str, exception_type: str) -> CmdletError:
    """Duplicate connector name: the task's own exception type; the English text is a paraphrase ([X] resource
    ErrorInboundConnectorAlreadyExists(name) / its outbound twin)."""
    error_id = exception_type.rsplit(".", 1)[-1].removesuffix("Exception")
    return CmdletError(f"A connector with the name '{name}' already exists.", exception_type=exception_type,
                       error_id=error_id)


def command_not_found(cmdlet: str) -> CmdletError:
    # PowerShell's own text for a cmdlet missing from the session (exo-cmdlets.md §12: CommandNotFound in EXO).
    return CmdletError(
        f"The term '{cmdlet}' is not recognized as a name of a cmdlet, function, script file, or executable "
        "program. It is available in Exchange Server only: in Exchange Online, accepted domains are added and "
        "removed as domains in the Microsoft 365 admin center.",
        exception_type=COMMAND_NOT_FOUND,
        error_id="CommandNotFoundException",
    )


def validation(error_id: str, message: str, *, object_level: bool = False) -> CmdletError:
    return CmdletError(message, exception_type=DATA_VALIDATION if object_level else VALIDATION, error_id=error_id)


def transformation(parameter: str, value: Any, target: str, reason: str) -> CmdletError:
    text = (
        f"Cannot process argument transformation on parameter '{parameter}'. "
        f'Cannot convert value "{value}" to type "{target}". Error: "{reason}"'
    )
    return CmdletError(text, exception_type=TRANSFORMATION, with_details=False)


def ambiguous(names: list[str]) -> CmdletError:
    return CmdletError(
        "Parameter set cannot be resolved using the specified named parameters. Invalid cmdlet parameters specified. "
        + ", ".join(names),
        exception_type=AMBIGUOUS,
    )


def missing_mandatory(names: list[str]) -> CmdletError:
    # [I] the REST surface of a PowerShell binding failure is not captured; this is PowerShell's own text.
    return CmdletError(
        "Cannot process command because of one or more missing mandatory parameters: " + " ".join(names) + ".",
        exception_type=BINDING,
        error_id="MissingMandatoryParameter",
    )


def error_body(err: CmdletError, warnings: list[str] | None = None) -> dict[str, Any]:
    """The JSON body for ``err`` (send it with HTTP ``err.status``)."""
    error: dict[str, Any] = {
        "code": err.code,
        "message": "Invalid Operation",
    }
    if err.with_details:
        error["details"] = [
            {"code": "Client", "target": "", "message": f"{err.error_id}|{err.exception_type}|{err.message}"}
        ]
    error["innererror"] = {
        "message": "Invalid Operation",
        "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
        "stacktrace": "",
        "internalexception": {"message": err.message, "type": err.exception_type, "stacktrace": ""},
    }
    error["adminapi.warnings@odata.type"] = "#Collection(String)"
    error["@adminapi.warnings"] = list(warnings or [])
    return {"error": error}
