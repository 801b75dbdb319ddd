"""The emulator's own control endpoints under ``/_emulator/`` (not part of the service; for tests, benchmarks and
curious users).

``GET /_emulator/health``; ``GET|DELETE /_emulator/requests?tenant=&kind=invoke|token|all``;
``GET|POST|DELETE /_emulator/faults[?tenant=]`` (see :mod:`.faults`); ``POST /_emulator/reset`` (everything
back to the seed, or ``{"tenant": id}`` to empty one tenant); ``GET|POST /_emulator/tenants`` (add a tenant:
the seed's tenant format, answers with the generated credentials); ``POST /_emulator/federated-token``
(``{"subject", "audience"?, "lifetime"?}``: a workload-identity token from the emulator's own issuer
``<base_url>/_emulator/oidc``, for apps whose federated credential names that issuer).

The SMTP front door (:mod:`.smtp`) starts and stops with the server; its control endpoints are
``GET /_emulator/smtp`` (where it listens), ``GET|DELETE /_emulator/smtp/messages[?tenant=]`` (every transaction,
refused or delivered), ``POST|DELETE /_emulator/smtp/smart-hosts`` (``{"tenant"?, "hosts": {name: "127.0.0.1:port"}}``),
``POST /_emulator/smtp/banned-ips`` (``{"ips": [...]}``) and ``POST /_emulator/certificates`` (``{"name"}``: a
client certificate and key issued by the emulator's CA).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, request

from . import tokens
from .certs import issue_certificate
from .context import Context, json_response, own_issuer
from .entra import identity_environment
from .seed import init_tenant_objects, seed_store, tenant_from_seed
from .smtp import FrontDoor

__all__ = ["control_routes"]


def control_routes(app: Flask, ctx: Context) -> None:  # noqa: C901
    """``/_emulator/``: request log, faults, reset, tenants, federated tokens (not part of the service)."""
    _smtp_routes(app, ctx)

    @app.get("/_emulator/health")
    def health() -> Response:
        return json_response({"status": "ok", "pid": os.getpid(), "tenants": len(ctx.store.tenants())})

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
        return json_response({"value": items})

    @app.delete("/_emulator/requests")
    def delete_requests() -> Response:
        tenant = ctx.tenant_key(request.args.get("tenant"))
        with ctx.log_lock:
            ctx.log[:] = [] if tenant is None else [e for e in ctx.log if e.get("tenant") != tenant]
        return Response(status=204)

    @app.get("/_emulator/faults")
    def get_faults() -> Response:
        return json_response({"value": ctx.faults.snapshot()})

    @app.post("/_emulator/faults")
    def post_faults() -> Response:
        knobs = request.get_json(silent=True)
        if not isinstance(knobs, dict):
            return json_response({"error": "send a JSON object of fault knobs"}, 400)
        knobs = dict(knobs)
        tenant = ctx.tenant_key(knobs.pop("tenant", None) or request.args.get("tenant")) or "*"
        try:
            plan = ctx.faults.configure(tenant, knobs)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"tenant": tenant, "faults": plan})

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
                return json_response({"error": f"unknown tenant {tenant}"}, 404)
            with ctx.store.tenant(state.tenant_id) as locked:
                for kind, objects in locked.objects.items():
                    for guid in list(objects):
                        ctx.store.delete(locked, kind, guid)
            init_tenant_objects(ctx.store, state, ctx.settings)
            ctx.faults.clear(state.tenant_id)
            return json_response({"reset": state.tenant_id})
        ctx.store.wipe()
        seed_store(ctx.store, ctx.seed, ctx.settings)
        ctx.faults.clear()
        with ctx.log_lock:
            ctx.log.clear()
        with ctx.cursor_lock:
            ctx.cursors.clear()
        return json_response({"reset": "all"})

    @app.get("/_emulator/tenants")
    def list_tenants() -> Response:
        return json_response(
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
                        **identity_environment(ctx, s.tenant_id, s.config.get("apps", [])),
                    }
                    for s in ctx.store.tenants()
                ]
            }
        )

    @app.post("/_emulator/tenants")
    def add_tenant() -> Response:
        entry = request.get_json(silent=True)
        if not isinstance(entry, dict):
            return json_response({"error": "send a JSON tenant object (the seed file's tenant format)"}, 400)
        try:
            tenant_id, initial, config, plain = tenant_from_seed(entry)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        if ctx.store.resolve(tenant_id) is not None or ctx.store.resolve(initial) is not None:
            return json_response({"error": f"tenant {tenant_id} / {initial} already exists"}, 409)
        state = ctx.store.add_tenant(tenant_id, initial, config)
        init_tenant_objects(ctx.store, state, ctx.settings)
        answer: dict[str, Any] = {
            "tenant_id": tenant_id,
            "initial_domain": initial,
            "verified_domains": config["verified_domains"],
            "apps": [{"client_id": cid, "client_secret": secret} for cid, secret in plain.items()],
        }
        answer.update(identity_environment(ctx, tenant_id, config["apps"]))
        return json_response(answer, 201)

    @app.post("/_emulator/federated-token")
    def federated_token() -> Response:
        body = request.get_json(silent=True) or {}
        if not body.get("subject"):
            return json_response({"error": "subject is required"}, 400)
        token = tokens.mint_federated_token(
            ctx.key,
            issuer=own_issuer(),
            subject=str(body["subject"]),
            audience=str(body.get("audience") or tokens.FEDERATED_AUDIENCE),
            lifetime=int(body.get("lifetime", 600)),
        )
        return json_response({"token": token, "issuer": own_issuer()})

    @app.get("/_emulator/oidc/.well-known/openid-configuration")
    def own_issuer_configuration() -> Response:
        return json_response({"issuer": own_issuer(), "jwks_uri": f"{own_issuer()}/keys"})

    @app.get("/_emulator/oidc/keys")
    def own_issuer_keys() -> Response:
        return json_response(ctx.key.jwks())


def _smtp_routes(app: Flask, ctx: Context) -> None:
    """``/_emulator/smtp/...`` and ``/_emulator/certificates``: the SMTP front door's knobs and its record."""

    def door() -> FrontDoor:
        assert ctx.front_door is not None, "the SMTP front door is not running"
        return ctx.front_door

    @app.get("/_emulator/smtp")
    def smtp_endpoint() -> Response:
        return json_response(door().endpoint)

    @app.get("/_emulator/smtp/messages")
    def smtp_messages() -> Response:
        return json_response({"value": door().messages(ctx.tenant_key(request.args.get("tenant")))})

    @app.delete("/_emulator/smtp/messages")
    def smtp_clear_messages() -> Response:
        door().clear_messages(ctx.tenant_key(request.args.get("tenant")))
        return Response(status=204)

    @app.post("/_emulator/smtp/smart-hosts")
    def smtp_smart_hosts() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("hosts"), dict):
            return json_response({"error": 'send {"tenant"?: id, "hosts": {"mail.contoso.com": "127.0.0.1:2525"}}'},
                                  400)
        tenant = ctx.tenant_key(body.get("tenant"))
        try:
            hosts = door().set_smart_hosts(tenant, body["hosts"])
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"tenant": tenant or "*", "hosts": hosts})

    @app.delete("/_emulator/smtp/smart-hosts")
    def smtp_clear_smart_hosts() -> Response:
        door().clear_smart_hosts(ctx.tenant_key(request.args.get("tenant")))
        return Response(status=204)

    @app.post("/_emulator/smtp/banned-ips")
    def smtp_banned_ips() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("ips"), list):
            return json_response({"error": 'send {"ips": ["203.0.113.66"]}'}, 400)
        try:
            return json_response({"ips": door().set_banned(body["ips"])})
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)

    @app.post("/_emulator/certificates")
    def certificates() -> Response:
        body = request.get_json(silent=True) or {}
        name = str(body.get("name") or "").strip().lower()
        if not name or any(c.isspace() for c in name) or "." not in name:
            return json_response({"error": 'send {"name": "mail.contoso.com"}'}, 400)
        assert ctx.state_dir is not None
        cert, key = issue_certificate(ctx.state_dir, name)
        # Emulator-only material signed by the emulator's private CA; returning the key is the point.
        return json_response({"name": name, "certificate": cert.decode(), "private_key": key.decode()}, 201)
