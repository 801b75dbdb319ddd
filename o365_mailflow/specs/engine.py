"""The engine: every function that reads the field tables (validation and normalisation of desired objects, service
defaults, cross-field rule checks and their JSON Schema, normalisation of Get-* records, cmdlet parameters).
"""

from __future__ import annotations

from typing import Any, Collection, Mapping

from ..errors import Diagnostic, Severity
from .kinds import META_KEYS, RENAMED_FROM, UNSET, Bool, Mode, did_you_mean
from .tables import ResourceSpec

__all__ = [
    "normalise_desired", "effective", "check_rules", "adopting_schema", "rule_schemas", "normalise_live", "name_key",
    "to_parameters", "split_create", "adopt_of", "renamed_from_of",
]


# ---------------------------------------------------------------------------------------------------------------------
# Desired values
# ---------------------------------------------------------------------------------------------------------------------


def _error(path: tuple[str | int, ...], summary: str, *, allowed: str | None = None, code: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, path, summary, allowed=allowed, code=code)


def adopt_of(raw: Mapping[str, Any]) -> bool:
    """The ``adopt`` meta key of a raw desired object (validated by :func:`normalise_desired`)."""
    value = raw.get("adopt")
    if value is None or isinstance(value, bool):  # what Bool().validate makes of them, without building a Bool
        return value is True
    return Bool().validate(value)[0] is True


def renamed_from_of(spec: ResourceSpec, raw: Mapping[str, Any]) -> str | None:
    """The ``renamedFrom`` meta key of a raw connector (normalised), or None when absent or invalid.

    :func:`normalise_desired` reports why a value is refused; this only reads a valid one.
    """
    if RENAMED_FROM not in raw or _renamed_from_problems(spec, raw, ()):
        return None
    return str(spec.field(spec.identity_field).kind.parse(raw[RENAMED_FROM]))


def _renamed_from_problems(spec: ResourceSpec, raw: Mapping[str, Any], path: tuple[str | int, ...]) -> list[Diagnostic]:
    """What is wrong with one object's ``renamedFrom`` on its own (the stack loader checks it across objects)."""
    where = path + (RENAMED_FROM,)
    if not spec.renamable:
        return [_error(where, f"{RENAMED_FROM} is only for connectors: a {spec.type_name} is identified by "
                              f"{spec.identity_field} and cannot be renamed", code="field.renamed-from")]
    kind = spec.field(spec.identity_field).kind
    old, problems = kind.validate(raw[RENAMED_FROM])
    if problems:
        return [_error(where, f"{RENAMED_FROM}: {p.message}", allowed=f"the connector's previous name ({kind.allowed})",
                       code="value.renamedFrom") for p in problems]
    new, name_problems = kind.validate(raw.get(spec.identity_field))
    if not name_problems and str(new).casefold() == str(old).casefold():
        return [_error(where, f"{RENAMED_FROM} {old!r} is the same as name {new!r} (names are compared "
                              f"case-insensitively): give the connector's previous name, or remove {RENAMED_FROM}",
                       code="value.renamedFrom")]
    return []


def normalise_desired(
    spec: ResourceSpec, raw: Mapping[str, Any], path: tuple[str | int, ...] = ()
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Validate and normalise one desired object's declared fields.

    Returns the normalised declared fields (meta keys such as ``adopt`` and ``renamedFrom`` are validated but
    not returned; read them with :func:`adopt_of` and :func:`renamed_from_of`) and every problem found. Unknown
    keys get a "did you mean" suggestion. The identity field is always required; fields required by New-* are
    required unless ``adopt: true`` (the object then already exists and only its declared fields are managed).
    """
    out: dict[str, Any] = {}
    diags: list[Diagnostic] = []
    known = spec.by_name
    settable = spec._settable_validators
    for key, value in raw.items():
        validate = settable.get(key)
        if validate is not None:  # the common case, checked first: a field a stack may declare
            normalised, problems = validate(value)
            if problems:
                diags.extend(_error(path + (key,) + p.subpath, p.message, allowed=p.allowed, code=f"value.{key}")
                             for p in problems)
            else:
                out[key] = normalised
            continue
        if key == RENAMED_FROM:
            diags.extend(_renamed_from_problems(spec, raw, path))
            continue
        if key in META_KEYS:
            _, problems = Bool().validate(value)
            diags.extend(_error(path + (key,), p.message, allowed=p.allowed, code="value.adopt") for p in problems)
            continue
        fld = known.get(key)
        if fld is None:
            meta = list(META_KEYS) + ([RENAMED_FROM] if spec.renamable else [])
            hint = did_you_mean(str(key), list(known) + meta)
            diags.append(_error(path + (str(key),), f"unknown field {key!r} for {spec.type_name}{hint}",
                                allowed=", ".join(list(known) + meta), code="field.unknown"))
            continue
        if fld.mode is Mode.READ_ONLY and fld.name != spec.identity_field:
            diags.append(_error(path + (key,), f"{key} is read-only and cannot be declared", code="field.read-only"))
            continue
        normalised, problems = fld.kind.validate(value)
        for p in problems:
            diags.append(_error(path + (key,) + p.subpath, p.message, allowed=p.allowed, code=f"value.{key}"))
        if not problems:
            out[key] = normalised
    adopting = adopt_of(raw)
    for fld in spec._may_be_required:
        if fld.name in raw:
            continue
        if fld.name == spec.identity_field:
            diags.append(_error(path + (fld.name,), f"{fld.name} is required", allowed=fld.kind.allowed,
                                code="field.required"))
        elif fld.required_on_create and spec.creatable and not adopting:
            diags.append(_error(
                path + (fld.name,),
                f"{fld.name} is required to create the {spec.type_name}; declare it, or set adopt: true to "
                f"manage only the declared fields of an existing one",
                allowed=fld.kind.allowed, code="field.required"))
    return out, diags


def effective(spec: ResourceSpec, declared: Mapping[str, Any]) -> dict[str, Any]:
    """Declared values over the service defaults (fields without a known default are left out).

    Used for offline rule checks of an object that will be created: what is not declared takes the service
    default. For an existing (adopted) object undeclared fields are unknown until the tenant is read.
    """
    out = dict(spec._defaults_map)
    for name in spec._list_defaults:
        out[name] = list(out[name])  # each object gets its own list
    names = spec.by_name
    if declared.keys() <= names.keys():  # the usual case (normalised objects hold fields only): one C-level update
        out.update(declared)
        return out
    for key, value in declared.items():
        if key in names:
            out[key] = value
    return out



def check_rules(
    spec: ResourceSpec,
    obj: Mapping[str, Any],
    path: tuple[str | int, ...] = (),
    *,
    declared: Collection[str] | None = None,
) -> list[Diagnostic]:
    """Cross-field rules on one merged, normalised object (see :func:`effective`).

    A rule whose fields are not all present in ``obj`` is skipped: absent means unknown (an adopted object's
    undeclared fields, before the tenant is read). Each diagnostic points at the first of the rule's fields
    that is in ``declared`` (default: the keys of ``obj``).
    """
    diags: list[Diagnostic] = []
    known = obj.keys()
    for rule in spec.rules:
        if not rule.needs_set <= known or not rule.broken.compiled(obj):
            continue
        # Only a broken rule needs to know what was declared (most objects break none).
        present = set(declared) if declared is not None else set(obj)
        at = next((name for name in rule.at if name in present), rule.at[0])
        diags.append(_error(path + (at,), rule.message, allowed=rule.allowed, code=rule.code))
    return diags


def adopting_schema() -> dict[str, Any]:
    """JSON Schema of an object that says ``adopt: true`` (as :func:`adopt_of` reads it, "true" included)."""
    return {"properties": {"adopt": Bool().matching(True)}, "required": ["adopt"]}


def rule_schemas(spec: ResourceSpec) -> list[dict[str, Any]]:
    """The cross-field rules of ``spec`` as JSON Schema (for docgen's editor schema), one ``not`` per rule.

    A rule is checked only when every field it reads is known, as :func:`check_rules` is called by the stack
    loader: declared, or, for an object that will be created (creatable and not ``adopt: true``), taken from the
    service default (:func:`effective`). Fields without a default must be declared.
    """
    out: list[dict[str, Any]] = []
    for rule in spec.rules:
        always = [n for n in rule.needs if spec.field(n).default is UNSET or not spec.creatable]
        defaulted = [n for n in rule.needs if n not in always]
        known: list[dict[str, Any]] = [{"required": always}] if always else []
        if defaulted:
            known.append({"anyOf": [{"not": adopting_schema()}, {"required": defaulted}]})
        out.append({"$comment": rule.code, "description": rule.message,
                    "not": {"allOf": known + [rule.broken.json_schema(spec)]}})
    return out



# ---------------------------------------------------------------------------------------------------------------------
# Live values and parameters
# ---------------------------------------------------------------------------------------------------------------------


def normalise_live(spec: ResourceSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """A Get-* record (PascalCase properties) -> every field of the spec, normalised like a desired value.

    ``smtp:x;1`` sender domains become ``x``, ``null`` lists become ``[]``, ``AdminUI`` reads as ``Default``,
    enums take their canonical case, domains are lower-cased and sets sorted. Property names are matched
    case-insensitively; a property the record does not carry takes the field's default (None if it has none).
    """
    out: dict[str, Any] = {}
    for name, live, key, default in _live_keys(spec, tuple(record)):
        if key is not None:
            out[name] = live(record[key])
        elif default is not UNSET:
            out[name] = list(default) if isinstance(default, list) else default
        else:
            out[name] = None
    return out


def name_key(name: str) -> str:
    """How Exchange compares object names: .NET's StringComparer.OrdinalIgnoreCase (exo-cmdlets.md, [X] uniqueness
    check), i.e. each character upper-cased on its own by simple case mapping. Unlike ``str.casefold()`` this
    keeps 'ß' apart from 'SS' (casefold maps both to 'ss'), as the service does."""
    if name.isascii():
        return name.lower()  # what the mapping below gives for ASCII, without a Python step per character
    # Upper-case per character (simple mapping), then back to lower case so ASCII keys read naturally.
    return "".join(_simple_lower(u) if len(u := c.upper()) == 1 else c for c in name)


def _simple_lower(c: str) -> str:
    low = c.lower()
    return low if len(low) == 1 else c


def _live_keys(spec: ResourceSpec, keys: tuple[Any, ...]) -> tuple[tuple[str, Any, Any, Any], ...]:
    """Each field's name, its kind's ``live`` method, the record key that holds it (matched case-insensitively)
    and its default, per shape of record: every record of a listing has the same keys, so a snapshot of thousands
    of objects matches them once and reads no field attributes per record. (Cached on the spec by the keys alone:
    hashing the spec itself would walk its whole field table every time.)"""
    cache = spec._live_key_cache
    found = cache.get(keys)
    if found is None:
        lowered = {str(k).lower(): k for k in keys if "@" not in str(k)}
        found = cache[keys] = tuple((fld.name, fld.kind.live, lowered.get(fld.param.lower()), fld.default)
                                    for fld in spec.fields)
        if len(cache) > 64:  # records of unusual shapes: keep the cache small
            cache.pop(next(iter(cache)))
    return found


def to_parameters(spec: ResourceSpec, values: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    """Normalised camelCase values -> cmdlet parameters (``{"SenderIPAddresses": [...], ...}``).

    With ``create=True`` (New-*), SET_ONLY fields are left out: use :func:`split_create` to get them as a
    follow-up Set-*. With ``create=False`` (Set-*), a CREATE_ONLY field raises ValueError (it needs a replace).
    READ_ONLY fields and meta keys are never sent; an unknown key raises KeyError.
    """
    params: dict[str, Any] = {}
    for key, value in values.items():
        if key in META_KEYS or key == RENAMED_FROM:
            continue
        fld = spec.field(key)
        if fld.mode is Mode.READ_ONLY:
            continue
        if create and fld.mode is Mode.SET_ONLY:
            continue
        if not create and fld.mode is Mode.CREATE_ONLY:
            raise ValueError(f"{spec.type_name}.{key} can only be set when the object is created")
        params[fld.param] = fld.kind.to_param(value)
    return params


def split_create(spec: ResourceSpec, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters for New-* and for the follow-up Set-* that carries the SET_ONLY fields (may be empty)."""
    new_params = to_parameters(spec, values, create=True)
    followup = {
        fld.param: fld.kind.to_param(values[fld.name])
        for fld in spec.fields
        if fld.name in values and fld.mode is Mode.SET_ONLY
    }
    return new_params, followup
