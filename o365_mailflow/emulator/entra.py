"""Entra ID as the emulator serves it: OIDC discovery, signing keys, instance discovery, the v2.0 token endpoint
(client secret, certificate and federated assertions) and a managed identity's endpoint.

The token checks and formats follow the service contract (see :mod:`.tokens`); this module only does HTTP.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Flask, Response, request

from . import tokens
from .context import Context, host_url, json_response, own_issuer
from .store import TenantState

__all__ = ["entra_routes", "managed_identity_routes", "identity_environment"]


def _find_app(state: TenantState, client_id: str) -> dict[str, Any] | None:
    return next((a for a in state.config.get("apps", []) if a["client_id"] == client_id.lower()), None)



def _token_form() -> dict[str, str]:
    """The token request's form, with ``client_secret_basic`` (HTTP Basic, RFC 6749 §2.3.1) folded in."""
    form = {k: str(v) for k, v in request.form.items()}
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username:
        from urllib.parse import unquote_plus

        form.setdefault("client_id", unquote_plus(auth.username))
        form.setdefault("client_secret", unquote_plus(auth.password or ""))
    return form


def entra_routes(app: Flask, ctx: Context) -> None:  # noqa: C901 - the token endpoint's checks, in order
    """Entra ID: OIDC discovery, keys, instance discovery and the v2.0 token endpoint."""

    def unknown_tenant(segment: str) -> Response:
        err = tokens.TokenError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud.",
        )
        return json_response(err.body(), 400)

    @app.get("/<segment>/v2.0/.well-known/openid-configuration")
    def openid_configuration(segment: str) -> Response:
        state = ctx.resolve(segment)
        if state is None:
            return unknown_tenant(segment)
        return json_response(tokens.openid_configuration(host_url(), segment, state.tenant_id))

    @app.get("/<segment>/discovery/v2.0/keys")
    def jwks(segment: str) -> Response:
        if ctx.resolve(segment) is None:
            return unknown_tenant(segment)
        return json_response(ctx.key.jwks())

    @app.get("/common/discovery/instance")
    def instance_discovery() -> Response:
        endpoint = request.args.get("authorization_endpoint", "")
        return json_response(tokens.instance_discovery(host_url(), endpoint))

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
                f"{host_url()}/{seg}/oauth2/v2.0/token"
                for seg in (segment, state.tenant_id, state.initial_domain, *state.config.get("verified_domains", []))
            }
            method = tokens.authenticate_client(
                registration, form, token_endpoints=endpoints, own_key=ctx.key, own_issuer=own_issuer()
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
            return json_response(
                {"token_type": "Bearer", "expires_in": int(lifetime), "ext_expires_in": int(lifetime),
                 "access_token": access}
            )
        except tokens.TokenError as err:
            entry["status"] = err.status
            entry["error"] = err.error
            return json_response(err.body(), err.status)
        finally:
            ctx.record(entry)


def identity_environment(ctx: Context, tenant_id: str, apps: list[dict[str, Any]]) -> dict[str, str]:
    """What the platform puts in a managed-identity host's environment (IDENTITY_ENDPOINT, IDENTITY_HEADER)."""
    if not any(a.get("managed_identity") for a in apps):
        return {}
    return {"identity_endpoint": f"{host_url()}/{tenant_id}/msi/token",
            "identity_header": tokens.identity_header(ctx.key, tenant_id)}


def managed_identity_routes(app: Flask, ctx: Context) -> None:
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
            return json_response({"access_token": access, "expires_on": str(int(time.time()) + lifetime),
                                   "resource": resource, "token_type": "Bearer", "client_id": identity["client_id"]})
        except tokens.TokenError as err:
            entry["status"] = err.status
            entry["error"] = err.error
            # App Service's error shape (MSAL turns it into an OAuth error whose description carries both).
            return json_response({"statusCode": err.status, "message": err.description}, err.status)
        finally:
            ctx.record(entry)

