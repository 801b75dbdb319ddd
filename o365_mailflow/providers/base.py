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

Every write (create or adopt, update, rename, restore, delete) and its read-back go through the reconcile core
(``o365_mailflow.reconcile``) that ``mailflow apply`` uses, with its one lag policy: what stays here is the
engine's protocol, the shared listing, the claims of one deployment and the outputs.

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
* A changed force-new field (``CREATE_ONLY``, :attr:`~o365_mailflow.specs.ResourceSpec.force_new`, the list the
  CLI's plan refuses to change in place) is a replacement, not an update that Set-* would refuse.

Outputs of every resource: the declared fields (as the tenant holds them after the write; a write the tenant does
not show within the lag budget is trusted, so its values), ``adopt`` when
declared, ``live`` (every field of the spec, normalised) and ``adopted`` (whether create took over an existing
object); connectors add ``guid``; accepted domains add ``restoreValues`` (what was found before the first write,
put back on delete).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, ClassVar, Iterator, Mapping

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

from .. import reconcile
from ..errors import AlreadyExists, Diagnostic, NotFound
from ..plan import FieldChange, diff_object
from ..pulumi_plan import (NULLS_KEY, OPTION_KEYS, REPLACE_KEY, is_unknown, declared_nulls, declared_fields,
                           ignored_fields)
from ..reconcile import AdoptionRequired, LagPolicy, ReplacementRequired, Written
from ..snapshot import LiveObject
from ..specs import META_KEYS, SPECS, ResourceSpec, adopt_of, check_rules, effective, normalise_desired
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

class AlreadyManaged(AlreadyExists):
    """``adopt: true`` names an object that another resource of this deployment already created or adopted."""


# What AdoptionRequired tells a Pulumi user to do.
HOW_TO_ADOPT = (
    "Pulumi cannot import it (`pulumi import` does not work for dynamic providers). To take it over, add "
    "`adopt: true` to it in the stack file (or adopt=True in its Args) and run `pulumi up` again: the declared "
    "fields will then be changed to the declared values, and the fields you do not declare are left as they are. "
    "If another stack or project manages it, do not adopt it: give the declared one another name. If this is a "
    "connector whose name you changed only in case, say so with `renamedFrom: <old name>` instead."
)


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

    def _read_back(self, session: TenantSession, written: Written) -> LiveObject:
        """The object after a write, verified with the core's one lag policy (pauses within the budget).

        A write the tenant does not show within the budget was still accepted: its values are trusted (as apply
        trusts them), and the next diff reads the tenant again. The result replaces the object in the shared
        listing, so the next lookup needs no list call.
        """
        check = reconcile.verify(session.client, [written], LagPolicy.from_env(), list_first=False)
        obj = reconcile.as_written(written, check.seen[0])
        session.record(self.spec, obj)
        return obj

    @contextmanager
    def _writing(self, session: TenantSession) -> Iterator[None]:
        """A write whose outcome is unknown (it failed) drops the type's listing: list again, never trust it."""
        try:
            yield
        except (AdoptionRequired, ReplacementRequired):
            raise  # refused before anything was sent
        except BaseException:
            session.invalidate(self.spec)
            raise

    def _outputs(self, obj: Any, declared: Mapping[str, Any], props: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        outs: dict[str, Any] = _with_nulls({name: obj.fields.get(name) for name in declared})
        if "adopt" in props:
            outs["adopt"] = adopt_of(props)
        outs["live"] = dict(obj.fields)
        if self.spec.identity_field == "name":
            outs["guid"] = obj.identity
        outs.update(extra)
        return outs

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
        replaces = reconcile.replacements(spec, changes, also=sorted(replace_on))
        pending_replaces = sorted(k for k in pending if k in spec.force_new or k in replace_on)
        changed = bool(changes) or bool(pending) or bool(self._restore_now(olds, desired, live))
        return DiffResult(changes=changed, replaces=replaces + pending_replaces, stables=[],
                          delete_before_replace=True)

    def _restore_now(self, olds: Mapping[str, Any], desired: Mapping[str, Any], live: LiveObject
                     ) -> tuple[FieldChange, ...]:
        """Accepted domains only: fields no longer declared go back to the value found (see AcceptedDomain)."""
        return ()

    # ------------------------------------------------------------------------------------------------ create

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = self.spec
        desired = declared_fields(spec, props)
        name = str(desired[spec.identity_field])
        session = self._session()
        existing = session.find_by_name(spec, name)
        # Taking over an object is the user's explicit decision, even when it already matches: a silent take-over
        # lets two resources (or stacks) own one connector, and destroying either deletes it.
        if existing is not None and adopt_of(props) and not session.claim(spec, existing.identity):
            raise AlreadyManaged(
                f"The {self._what(name)} was already created or adopted by another resource of this "
                "deployment; one connector can be managed by one resource only. Remove the duplicate "
                "declaration (or give it another name)."
            )
        with self._writing(session):
            written = reconcile.create(session.client, spec, desired, existing=existing, adopt=adopt_of(props),
                                       how_to_adopt=HOW_TO_ADOPT, lag=LagPolicy.from_env())
        session.claim(spec, written.identity)
        obj = self._read_back(session, written)
        return CreateResult(obj.identity, self._outputs(obj, desired, props, adopted=written.adopted))

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
        changes = diff_object(spec, desired, live) + self._restore_now(olds, desired, live)
        with self._writing(session):
            written = reconcile.update(session.client, spec, id_, changes, name=live.name)
        obj = self._read_back(session, written) if written.writes else live
        return UpdateResult(self._outputs(obj, desired, news, **self._carried(olds, desired, live)))

    def _carried(self, olds: Mapping[str, Any], desired: Mapping[str, Any], live: Any) -> dict[str, Any]:
        return {"adopted": bool(olds.get("adopted", False))}

    # ------------------------------------------------------------------------------------------------ delete

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        spec = self.spec
        session = self._session()
        with self._writing(session):
            written = reconcile.delete(session.client, spec, id_)  # already gone: what delete wanted
        if written.writes:
            # Gone from reads before the engine goes on: a replacement's create must not meet the old one.
            reconcile.verify(session.client, [written], LagPolicy.from_env(), list_first=False)
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
        with self._writing(session):
            written = reconcile.create(session.client, spec, desired, existing=live, adopt=True, how_to_adopt="",
                                       lag=LagPolicy.from_env())
        obj = self._read_back(session, written)
        return CreateResult(obj.identity, self._outputs(obj, desired, props, adopted=True, restoreValues=found))

    def _restore_now(self, olds: Mapping[str, Any], desired: Mapping[str, Any], live: LiveObject
                     ) -> tuple[FieldChange, ...]:
        return reconcile.restore_changes(self.spec, olds.get("restoreValues") or {}, live, declared=tuple(desired))

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
        with self._writing(session):
            written = reconcile.update(session.client, spec, live.identity, self._restore_now(props, {}, live),
                                       name=live.name)
        if written.writes:
            self._read_back(session, written)
        session.release(spec, live.identity)
