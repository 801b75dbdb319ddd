"""The dynamic providers: one stateless ``ResourceProvider`` per resource type, driven by the spec tables.

Why stateless: the Pulumi SDK pickles the provider object (dill) into the ``__provider`` input of every
resource, so anything on the instance ends up in state. The instances here carry nothing at all; their class
(pickled by reference, importable from the installed package) names the resource type, the tenant and the
credential come from ``configure()`` (``config.py``), and the client and the per-process snapshot live in
module-level state (``session.py``).

Why the diff reads the tenant: a diff against the last recorded state misses a change made in the admin
center. ``diff`` and ``read`` look the object up in the shared per-process snapshot (one list call per type,
updated in place after every write), and compare the *declared* inputs only, through the reconciler's
:func:`o365_mailflow.plan.diff_object`. A rename is an update: the connector's Guid is the Pulumi id.

What the engine decides and these providers must survive (each found with the real Pulumi CLI):

* Replacements are delete-before-replace (the resource classes set the option, because a replacement the
  engine forces itself, ``--target-replace``, never asks ``Diff``). Create-before-delete made the new resource
  find the old connector by name, take it over, and then the engine deleted that very Guid.
* Create never takes over an existing object unless the declaration says ``adopt: true``, and never one that
  another resource of this deployment already created or adopted.
* ``ignoreChanges``: the engine hands over the *old input* for an ignored property, which the provider would
  compare with the tenant and "correct". The resource classes pass the ignored names as the ``ignoreChanges``
  input, and diff and update leave those fields alone.
* ``replaceOnChanges``: the engine needs the changed property names to apply it, and the SDK's dynamic-provider
  host never sends them, so the option did nothing. The resource classes pass the names as the
  ``replaceOnChanges`` input, and diff lists those fields as replacements when they change.
* A changed ``CREATE_ONLY`` field is a replacement, not an update that Set-* would refuse.

Outputs of every resource: the declared fields (as the tenant holds them after the write), ``adopt`` when
declared, ``live`` (every field of the spec, normalised) and ``adopted`` (whether create took over an existing
object); connectors add ``guid``; accepted domains add ``restoreValues`` (what was found before the first write,
put back on delete).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Mapping

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from pulumi.runtime.rpc import UNKNOWN  # the SDK's marker for a value not known yet (preview)

from ..errors import AlreadyExists, Diagnostic, ExoError, NotFound, PlanError
from ..plan import diff_object
from ..pulumi_plan import (IGNORE_KEY, NULLS_KEY, OPTION_KEYS, REPLACE_KEY, is_unknown, declared_nulls, declared_fields,
                           ignored_fields)
from ..snapshot import LiveObject, live_object
from ..specs import META_KEYS, SPECS, Mode, ResourceSpec, adopt_of, check_rules, effective, normalise_desired
from ..specs import split_create, to_parameters
from .config import register_settings, settings_from_config
from .session import TenantSession, session_for

__all__ = [
    "PROVIDER_KEY",
    "UNKNOWN",
    "MailflowProvider",
    "InboundConnectorProvider",
    "OutboundConnectorProvider",
    "AcceptedDomainProvider",
    "AdoptionRequired",
    "declared_fields",
]

PROVIDER_KEY = "__provider"
# Properties that are not spec fields; never treated as declared inputs.
OUTPUT_KEYS = ("guid", "live", "adopted", "restoreValues", NULLS_KEY, *OPTION_KEYS)

# Read-back after a write (the service is eventually consistent): pauses before each retry, seconds.
_READ_BACK_PAUSES = (0.25, 0.5, 1.0, 2.0)


class AdoptionRequired(AlreadyExists):
    """An object with the declared name exists and the declaration does not say ``adopt: true``."""


class AlreadyManaged(AlreadyExists):
    """``adopt: true`` names an object that another resource of this deployment already created or adopted."""


def _with_nulls(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with None-valued fields moved into ``declaredNulls`` (Pulumi would drop them)."""
    nulls = sorted(k for k, v in values.items() if v is None)
    out = {k: v for k, v in values.items() if v is not None}
    if nulls:
        out[NULLS_KEY] = nulls
    return out


def _failure(diag: Diagnostic) -> CheckFailure:
    reason = diag.summary + (f" {diag.detail}" if diag.detail else "")
    if diag.allowed:
        reason += f" (allowed: {diag.allowed})"
    return CheckFailure(diag.dotted_path, reason)


class MailflowProvider(ResourceProvider):
    """Shared CRUD for the three resource types. Subclasses only name their type: no instance state."""

    type_name: ClassVar[str] = ""

    # ----------------------------------------------------------------------------------------------- plumbing

    @property
    def spec(self) -> ResourceSpec:
        return SPECS[self.type_name]

    def configure(self, req: ConfigureRequest) -> None:
        # Called once per host process per distinct __provider; the settings land in module-level state.
        register_settings(settings_from_config(req.config))

    def _session(self) -> TenantSession:
        return session_for()

    def _what(self, name: str) -> str:
        return f"{self.spec.what} {name!r}"

    def _read_back(self, session: TenantSession, identity: str, expected: Mapping[str, Any]) -> Any:
        """The object as the tenant shows it after a write; retries briefly until the declared values show.

        The result replaces the object in the shared listing, so the next lookup needs no list call.
        """
        spec = self.spec
        obj: LiveObject | None = None
        for pause in (0.0, *_READ_BACK_PAUSES):
            if pause:
                time.sleep(pause)
            obj = live_object(spec, session.client.get(spec.noun, identity, retry_not_found=True))
            if all(obj.fields.get(k) == v for k, v in expected.items()):
                break
        # Accepted but not (yet) visible: report what the tenant shows; the next diff will say if it differs.
        assert obj is not None  # the loop runs at least once
        session.record(spec, obj)
        return obj

    def _outputs(self, obj: Any, declared: Mapping[str, Any], props: Mapping[str, Any], **extra: Any) -> dict:
        outs: dict[str, Any] = _with_nulls({name: obj.fields.get(name) for name in declared})
        if "adopt" in props:
            outs["adopt"] = adopt_of(props)
        outs["live"] = dict(obj.fields)
        if self.spec.identity_field == "name":
            outs["guid"] = obj.identity
        outs.update(extra)
        return outs

    def _set(self, session: TenantSession, identity: str, values: Mapping[str, Any]) -> None:
        """One Set-* with exactly ``values`` (already minimal); the type's snapshot is dropped afterwards."""
        spec = self.spec
        try:
            params = to_parameters(spec, values, create=False)
        except ValueError as exc:  # a CREATE_ONLY field: no such field today, kept for the table's sake
            raise PlanError(f"{self._what(identity)}: {exc}; it cannot be changed in place.") from exc
        if not params:
            return
        try:
            session.client.set(spec.noun, identity, params)
        except BaseException:
            session.invalidate(spec)  # outcome unknown: list again rather than trust the cached object
            raise

    # ------------------------------------------------------------------------------------------------- check

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        spec = self.spec
        raw = {k: v for k, v in news.items() if k != PROVIDER_KEY}
        option_failures = [f for key in OPTION_KEYS for f in self._check_option(key, raw.get(key))]
        if option_failures:
            return CheckResult(dict(raw), option_failures)
        unknown = {k for k, v in raw.items() if is_unknown(v)}
        known = {k: v for k, v in raw.items() if k not in unknown and k not in OUTPUT_KEYS}
        known.update({k: None for k in declared_nulls(raw) if k not in known})
        normalised, diags = normalise_desired(spec, known)
        # A field whose value is not known yet (preview) is neither missing nor invalid.
        diags = [d for d in diags if not (d.path and d.path[0] in unknown)]
        if not diags:
            if spec.creatable and not adopt_of(known):
                merged = effective(spec, normalised)  # a new object: undeclared fields take service defaults
            else:
                merged = dict(normalised)  # an existing object: undeclared fields are unknown until read
            for key in unknown:
                merged.pop(key, None)  # rules that need an unknown value are skipped
            diags = check_rules(spec, merged, declared=normalised.keys())
        if diags:
            return CheckResult(dict(raw), [_failure(d) for d in diags])
        inputs: dict[str, Any] = _with_nulls(dict(normalised))
        for key in META_KEYS:
            if key in known:
                inputs[key] = adopt_of(known) if key == "adopt" else known[key]
        inputs.update({k: raw[k] for k in unknown})
        for key in OPTION_KEYS:
            if raw.get(key):
                inputs[key] = sorted(str(v) for v in raw[key])
        return CheckResult(inputs, [])

    def _check_option(self, key: str, value: Any) -> list[CheckFailure]:
        """``ignoreChanges``/``replaceOnChanges`` must name fields of this type (a typo would do nothing)."""
        if value is None or is_unknown(value):
            return []
        names = [str(v) for v in value] if isinstance(value, (list, tuple)) else None
        allowed = sorted(f.name for f in self.spec.fields)
        bad = [n for n in names or [] if n not in allowed]
        if names is None or bad:
            return [CheckFailure(key, f"{key} names {', '.join(bad) or repr(value)}, which is not "
                                 f"a field of {self.type_name} (allowed: {', '.join(allowed)})")]
        return []

    # -------------------------------------------------------------------------------------------------- diff

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        spec = self.spec
        desired = declared_fields(spec, news)
        pending = [k for k, v in news.items() if spec.has_field(k) and is_unknown(v)]
        ident = spec.identity_field
        if ident != "name" and str(desired.get(ident, id_)).lower() != str(id_).lower():
            # Another accepted domain: adopt the new one, restore the old one (they are different objects).
            return DiffResult(changes=True, replaces=[ident], stables=[], delete_before_replace=False)
        session = self._session()
        live = session.find_by_identity(spec, id_)
        if live is None:
            if ident != "name":
                raise NotFound(
                    f"The {self._what(id_)} is no longer in the tenant. Add and verify it again in the Microsoft "
                    "365 admin center, or remove it from the stack and run `pulumi refresh`."
                )
            # Deleted outside Pulumi: recreate it (the old one is already gone, so delete first is a no-op).
            return DiffResult(changes=True, replaces=[ident], stables=[], delete_before_replace=True)
        ignored = ignored_fields(spec, news)
        desired = {k: v for k, v in desired.items() if k not in ignored}
        changes = diff_object(spec, desired, live)
        # A field Set-* cannot change, or one the program says to replace on: the object must be replaced
        # (delete first, see the module docstring).
        replace_on = ignored_fields(spec, news, REPLACE_KEY)
        replaces = sorted(c.field for c in changes
                          if spec.field(c.field).mode is Mode.CREATE_ONLY or c.field in replace_on)
        pending_replaces = sorted(k for k in pending if spec.field(k).mode is Mode.CREATE_ONLY or k in replace_on)
        changed = bool(changes) or bool(pending) or bool(self._restore_now(olds, desired, live))
        return DiffResult(changes=changed, replaces=replaces + pending_replaces, stables=[],
                          delete_before_replace=True)

    def _restore_now(self, olds: Mapping[str, Any], desired: Mapping[str, Any], live: Any) -> dict[str, Any]:
        """Accepted domains only: fields no longer declared go back to the value found (see AcceptedDomain)."""
        return {}

    # ------------------------------------------------------------------------------------------------ create

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = self.spec
        desired = declared_fields(spec, props)
        name = str(desired[spec.identity_field])
        session = self._session()
        existing = session.find_by_name(spec, name)
        if existing is not None:
            # Taking over an object is the user's explicit decision, even when it already matches: a silent
            # take-over lets two resources (or stacks) own one connector, and destroying either deletes it.
            if not adopt_of(props):
                blocking = [c.field for c in diff_object(spec, desired, existing)
                            if not (c.field == spec.identity_field and str(c.before).lower() == str(c.after).lower())]
                raise AdoptionRequired(self._adopt_message(name, blocking))
            if not session.claim(spec, existing.identity):
                raise AlreadyManaged(
                    f"The {self._what(name)} was already created or adopted by another resource of this "
                    "deployment; one connector can be managed by one resource only. Remove the duplicate "
                    "declaration (or give it another name)."
                )
            self._set(session, existing.identity, {c.field: c.after for c in diff_object(spec, desired, existing)})
            obj = self._read_back(session, existing.identity, desired)
            return CreateResult(obj.identity, self._outputs(obj, desired, props, adopted=True))
        new_params, followup = split_create(spec, desired)
        try:
            result = session.client.new(spec.noun, new_params)
        except BaseException:
            session.invalidate(spec)  # outcome unknown: list again rather than trust the cache
            raise
        identity = self._new_identity(result, name)
        session.claim(spec, identity)
        if followup:
            try:
                session.client.set(spec.noun, identity, followup)
            except ExoError:
                # Create must be transactional: a half-made connector would be unknown to Pulumi's state.
                try:
                    session.client.remove(spec.noun, identity)
                finally:
                    session.invalidate(spec)
                raise
        obj = self._read_back(session, identity, desired)
        return CreateResult(obj.identity, self._outputs(obj, desired, props, adopted=False))

    def _new_identity(self, result: Any, name: str) -> str:
        values = getattr(result, "values", None) or []
        record = values[0] if values else {}
        return str(record.get("Guid") or record.get("ExchangeObjectId") or record.get("Identity") or name)

    def _adopt_message(self, name: str, fields: list[str]) -> str:
        differs = f"differs from the declaration ({', '.join(fields)})" if fields else "matches the declaration"
        return (
            f"An {self._what(name)} already exists in the tenant and {differs}; it is not managed by this "
            "resource, so it was left alone. Pulumi cannot import it (`pulumi import` does not work for dynamic "
            "providers). To take it over, add `adopt: true` to it in the stack file (or adopt=True in its "
            "Args) and run `pulumi up` again: the declared fields will then be changed to the declared values, "
            "and the fields you do not declare are left as they are. If another stack or project manages it, "
            "do not adopt it: give the declared one another name. If this is a connector whose name you "
            "changed only in case, say so with `renamedFrom: <old name>` instead."
        )

    # -------------------------------------------------------------------------------------------------- read

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        spec = self.spec
        live = self._session().find_by_identity(spec, id_)
        if live is None:
            return ReadResult(None, {})  # gone: the engine drops it from state
        declared = declared_fields(spec, props)
        extra = {k: props[k] for k in ("adopted", "restoreValues") if k in props}
        outs = self._outputs(live, declared, props, **extra)
        inputs = _with_nulls({k: live.fields.get(k) for k in declared})
        if "adopt" in props:
            inputs["adopt"] = adopt_of(props)
        return ReadResult(live.identity, outs, inputs)

    # ------------------------------------------------------------------------------------------------ update

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        spec = self.spec
        desired = declared_fields(spec, news)
        session = self._session()
        live = session.find_by_identity(spec, id_)
        if live is None:
            raise NotFound(
                f"The {self._what(str(desired.get(spec.identity_field, id_)))} (id {id_}) is no longer in the "
                "tenant. Run `pulumi refresh` so that Pulumi forgets it, then `pulumi up` to create it again."
            )
        ignored = ignored_fields(spec, news)
        desired = {k: v for k, v in desired.items() if k not in ignored}
        values = {c.field: c.after for c in diff_object(spec, desired, live)}
        values.update(self._restore_now(olds, desired, live))
        self._set(session, id_, values)
        obj = self._read_back(session, id_, desired)
        return UpdateResult(self._outputs(obj, desired, news, **self._carried(olds, desired, live)))

    def _carried(self, olds: Mapping[str, Any], desired: Mapping[str, Any], live: Any) -> dict[str, Any]:
        return {"adopted": bool(olds.get("adopted", False))}

    # ------------------------------------------------------------------------------------------------ delete

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        spec = self.spec
        session = self._session()
        try:
            session.client.remove(spec.noun, id_)
        except NotFound:
            pass  # already gone: what delete wanted
        except BaseException:
            session.invalidate(spec)  # outcome unknown
            raise
        session.forget(spec, id_)
        session.release(spec, id_)


class InboundConnectorProvider(MailflowProvider):
    type_name = "InboundConnector"


class OutboundConnectorProvider(MailflowProvider):
    type_name = "OutboundConnector"


class AcceptedDomainProvider(MailflowProvider):
    """Accepted domains cannot be created or removed in Exchange Online (New-/Remove-AcceptedDomain do not
    exist there): create adopts the verified domain and remembers the values it found for the declared fields
    (output ``restoreValues``); delete, and a field leaving the declaration, put those values back."""

    type_name = "AcceptedDomain"

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = self.spec
        desired = declared_fields(spec, props)
        domain = str(desired[spec.identity_field])
        session = self._session()
        live = session.find_by_name(spec, domain)
        if live is None:
            raise NotFound(
                f"The {self._what(domain)} is not in the tenant. Exchange Online cannot create accepted domains: "
                "add and verify the domain in the Microsoft 365 admin center first, then run `pulumi up` again."
            )
        if not session.claim(spec, live.identity):
            raise AlreadyManaged(f"The {self._what(domain)} is already managed by another resource of this "
                                 "deployment. Declare each accepted domain once.")
        found = {k: live.fields.get(k) for k in desired if k != spec.identity_field}
        self._set(session, live.identity, {c.field: c.after for c in diff_object(spec, desired, live)})
        obj = self._read_back(session, live.identity, desired)
        return CreateResult(obj.identity, self._outputs(obj, desired, props, adopted=True, restoreValues=found))

    def _restore_now(self, olds: Mapping[str, Any], desired: Mapping[str, Any], live: Any) -> dict[str, Any]:
        found = olds.get("restoreValues") or {}
        return {
            k: v for k, v in found.items()
            if k not in desired and spec_has(self.spec, k) and live.fields.get(k) != v
        }

    def _carried(self, olds: Mapping[str, Any], desired: Mapping[str, Any], live: Any) -> dict[str, Any]:
        found = dict(olds.get("restoreValues") or {})
        # A field declared for the first time: remember the value it had before we managed it.
        for key in desired:
            if key != self.spec.identity_field and key not in found:
                found[key] = live.fields.get(key)
        # A field no longer declared was restored by this update: forget it.
        found = {k: v for k, v in found.items() if k in desired}
        return {"adopted": True, "restoreValues": found}

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        spec = self.spec
        session = self._session()
        live = session.find_by_identity(spec, id_)
        if live is None:
            return  # the domain left the tenant: nothing to restore
        # Nothing is declared any more: every remembered field goes back. Read back, so that a replacement's
        # create (delete runs first) finds, and remembers, the original values rather than ours.
        values = self._restore_now(props, {}, live)
        self._set(session, live.identity, values)
        if values:
            self._read_back(session, live.identity, values)
        session.release(spec, live.identity)


def spec_has(spec: ResourceSpec, name: str) -> bool:
    return spec.has_field(name) and name != spec.identity_field
