"""Generate the stack file reference (``docs/stack-reference.md``) and its JSON Schema
(``docs/stack.schema.json``) from the spec tables in :mod:`o365_mailflow.specs`.

Why generated: the spec tables are the one description of every field (name, Exchange parameter, value kind,
service default, create/set mode, risky flag). Hand-written docs would drift from them; these files are
rebuilt from the tables and checked in, and ``python -m o365_mailflow.docgen --check`` (run by the test suite)
fails when they are stale. Each value kind describes itself (``Kind.describe()``, ``Kind.json_schema()``), so
no field name or allowed value is repeated here.

Usage::

    python -m o365_mailflow.docgen            # rewrite both files
    python -m o365_mailflow.docgen --check    # exit 1 (and say which) when a file is out of date

The ``tenant:`` section and the ``prune`` switch are not resource fields; they are described below by
:data:`TENANT_KEYS` and :data:`TOP_LEVEL`, which mirror the stack loader (``o365_mailflow/stack.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from . import patterns as rx
from .specs import (META_KEYS, RENAMED_FROM, SPECS, UNSET, Bool, Field, Mode, ResourceSpec, adopting_schema,
                    rule_schemas)
from .stack import TENANT_KEYS as STACK_TENANT_KEYS
from .stack import TENANT_KINDS
from .tenant import INITIAL_DOMAIN_SUFFIXES

__all__ = [
    "REFERENCE_PATH",
    "SCHEMA_PATH",
    "TENANT_KEYS",
    "TOP_LEVEL",
    "stack_schema",
    "stack_reference",
    "generated_files",
    "stale_files",
    "main",
]

_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PATH = Path("docs/stack-reference.md")  # relative to the project root
SCHEMA_PATH = Path("docs/stack.schema.json")
SCHEMA_ID = "https://o365-mailflow.invalid/stack.schema.json"  # a stable name, not a download location

_GUID_PATTERN = rx.padded("[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# urlsplit lower-cases the scheme, and the loader wants a host after it.
_HTTPS_PATTERN = rf"^\s*{rx.any_case('https')}://(?:[^/?#@]*@)?[^/?#@:\s]"


def _kind_schema(key: str) -> dict[str, Any]:
    schema = dict(TENANT_KINDS[key].json_schema())
    schema.pop("description", None)
    return schema


def _initial_domain_schema() -> dict[str, Any]:
    suffixes = "|".join(rx.any_case(s) for s in INITIAL_DOMAIN_SUFFIXES)
    return {"allOf": [_kind_schema("initialDomain"), {"pattern": rf"[^.\s]\s*(?:{suffixes})\.?\s*$"}]}


# JSON Schema of each ``tenant:`` key. The key names and their one-line descriptions come from the stack loader
# (``stack.TENANT_KEYS``), and so do the value kinds it has (``stack.TENANT_KINDS``); a test checks that both list
# the same keys. The loader reads null as "not given" for every key but emulator and cloud.
_TENANT_VALUE_SCHEMA: dict[str, dict[str, Any]] = {
    "emulator": _kind_schema("emulator"),
    "id": {"type": ["string", "null"], "pattern": _GUID_PATTERN},
    "initialDomain": {"anyOf": [_initial_domain_schema(), {"type": "null"}]},
    "cloud": {**_kind_schema("cloud"), "default": "commercial"},
    "endpoint": {"type": ["string", "null"], "pattern": _HTTPS_PATTERN},
    "authority": {"type": ["string", "null"], "pattern": _HTTPS_PATTERN},
    "caFile": {"type": ["string", "null"], "pattern": r"\S"},
}
_TENANT_NOTES = {
    "emulator": "Leave out, or false, for a real tenant.",
    "id": "Give id, initialDomain, or both.",
    "endpoint": "For tests and sovereign clouds only.",
    "authority": "For tests and sovereign clouds only.",
}


def _tenant_keys() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, text in STACK_TENANT_KEYS.items():
        schema = dict(_TENANT_VALUE_SCHEMA.get(key, {"type": "string"}))
        description = text + "."
        if key in _TENANT_NOTES:
            description += " " + _TENANT_NOTES[key]
        schema["description"] = description
        out[key] = schema
    return out


TENANT_KEYS: dict[str, dict[str, Any]] = _tenant_keys()

# Top-level keys other than the resource lists.
TOP_LEVEL: dict[str, dict[str, Any]] = {
    "prune": {
        **Bool().json_schema(),
        "default": False,
        "description": "true: delete connectors that are in the tenant but not in this file (accepted domains "
        "are never deleted; their routing fields go back to the service defaults). false: report them only.",
    },
}

_MODE_TEXT = {
    Mode.CREATE_AND_SET: "create and update",
    Mode.CREATE_ONLY: "create only (a change replaces the object)",
    Mode.SET_ONLY: "set only (sent by Set-* right after a create)",
    Mode.READ_ONLY: "read only",
}

def _mode_text(spec: ResourceSpec, f: Field) -> str:
    if f.mode is Mode.SET_ONLY and not spec.creatable:
        return "update (Set-* only)"  # nothing is ever created, so "after a create" would mislead
    if f.name == spec.identity_field and f.mode is Mode.READ_ONLY:
        return "identity (never changed)"
    return _MODE_TEXT[f.mode]


def _article(word: str) -> str:
    return ("an " if word[:1].upper() in "AEIOU" else "a ") + word


_META_DESCRIPTION = {
    "adopt": "true: the object already exists in the tenant and this stack takes it over, managing only the "
    "fields declared here. Fields required to create it are then optional.",
}
_RENAMED_FROM_DESCRIPTION = (
    "The connector's previous name, when `name` is changed: plan and apply then rename that connector in place "
    "(one Set with Name and any other changed field, same Guid) instead of creating a second one, and the Pulumi "
    "program aliases the old resource. Ignored once the new name exists and the old one is gone, so it can stay "
    "in the file. Must differ from `name` and from every other declared connector name of this type."
)


# --------------------------------------------------------------------------------------------- JSON Schema


def _declarable(spec: ResourceSpec) -> list[Field]:
    """Fields a stack file may declare: everything but read-only ones (the identity is always declared)."""
    return [f for f in spec.fields if f.mode is not Mode.READ_ONLY or f.name == spec.identity_field]


def _json_default(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _field_description(spec: ResourceSpec, f: Field) -> str:
    parts = [f.description.rstrip(".") + "." if f.description else ""]
    allowed = f.kind.describe()
    if allowed:
        parts.append(f"Allowed: {allowed}.")
    parts.append(f"Exchange parameter {f.param}; {_mode_text(spec, f)}.")
    if f.risky:
        parts.append("Risky: changes are flagged in pull-request previews.")
    return " ".join(p for p in parts if p)


def _field_schema(spec: ResourceSpec, f: Field) -> dict[str, Any]:
    schema = dict(f.kind.json_schema())
    schema["description"] = _field_description(spec, f)
    if f.default is not UNSET:
        schema["default"] = _json_default(f.default)
    # Annotations for tools (ignored by validators): where the field goes and whether reviewers are warned.
    schema["x-exchangeParameter"] = f.param
    schema["x-mode"] = f.mode.value
    schema["x-risky"] = bool(f.risky)
    return schema


def _resource_schema(spec: ResourceSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {f.name: _field_schema(spec, f) for f in _declarable(spec)}
    for key in META_KEYS:
        properties[key] = {**Bool().json_schema(), "default": False, "description": _META_DESCRIPTION.get(key, "")}
    if spec.renamable:
        name_kind = spec.field(spec.identity_field).kind.json_schema()
        properties[RENAMED_FROM] = {**name_kind, "description": _RENAMED_FROM_DESCRIPTION}
    schema: dict[str, Any] = {
        "title": spec.type_name,
        "description": f"One {spec.type_name} (Get-/Set-{spec.noun}), identified by {spec.identity_field}.",
        "type": "object",
        "properties": properties,
        "required": [spec.identity_field],
        "additionalProperties": False,
    }
    on_create = [f.name for f in spec.fields if f.required_on_create and f.name != spec.identity_field]
    if spec.creatable and on_create:
        # Required to create the object, but not when adopting an existing one.
        schema["if"] = adopting_schema()
        schema["else"] = {"required": on_create}
    rules = rule_schemas(spec)
    if rules:
        schema["allOf"] = rules  # the cross-field rules, generated from the same declarations the loader checks
    return schema


def stack_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``stacks/<name>.yaml`` file."""
    properties: dict[str, Any] = {
        "tenant": {
            "description": "Which tenant this stack manages. Credentials never go here: they come from the "
            "environment (AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, ...) or Pulumi config.",
            "type": "object",
            "properties": TENANT_KEYS,
            "additionalProperties": False,
            # Say which tenant: the emulator, or a real one by id or initial domain.
            "anyOf": [
                {"properties": {"emulator": Bool().matching(True)}, "required": ["emulator"]},
                {"properties": {"id": {"type": "string"}}, "required": ["id"]},
                {"properties": {"initialDomain": {"type": "string"}}, "required": ["initialDomain"]},
            ],
        },
        **TOP_LEVEL,
    }
    defs: dict[str, Any] = {}
    for spec in SPECS.values():
        defs[spec.type_name] = _resource_schema(spec)
        properties[spec.stack_key] = {
            "description": f"{spec.type_name} objects managed by this stack.",
            "type": ["array", "null"],
            "items": {"$ref": f"#/$defs/{spec.type_name}"},
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "o365-mailflow stack file",
        "description": "Exchange Online mail flow as code: stacks/<name>.yaml. Generated from the spec tables "
        "by `python -m o365_mailflow.docgen`; do not edit. Enumerations list the canonical spelling and "
        "accept other letter cases, as the stack loader does. What this schema cannot check (for example two "
        "connectors with the same name) is listed in tests/specs/test_schema_agrees_with_validate.py; run "
        "`mailflow validate` for the full check.",
        "type": "object",
        "properties": properties,
        "required": ["tenant"],
        "additionalProperties": False,
        "$defs": defs,
    }


# --------------------------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    """Table-cell text: pipes escaped, newlines flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(value: str) -> str:
    return "`" + value.replace("|", "\\|") + "`" if "`" not in value else "`` " + value.replace("|", "\\|") + " ``"


def _default_text(value: Any) -> str:
    if value is UNSET:
        return "(none)"
    return _code(json.dumps(_json_default(value), ensure_ascii=False))


def _first(schema: dict[str, Any]) -> dict[str, Any]:
    """The main form of a value schema: an enumeration's list of names rather than its any-case pattern."""
    return schema["anyOf"][0] if "anyOf" in schema else schema


def _type_text(f: Field) -> str:
    schema = _first(f.kind.json_schema())
    if "enum" in schema:
        return "enum"
    kind = schema.get("type", "string")
    kinds = [kind] if isinstance(kind, str) else list(kind)
    main = next((k for k in kinds if k != "null"), "null")
    if main == "array":
        item = _first(schema.get("items", {}))
        inner = "enum" if "enum" in item else item.get("type", "string")
        inner = inner if isinstance(inner, str) else next(t for t in inner if t != "null")
        main = f"list of {inner}"
    return main + (" or null" if "null" in kinds else "")


def _resource_section(spec: ResourceSpec) -> list[str]:
    lines = [f"## `{spec.stack_key}`: {spec.type_name}", ""]
    ops = [f"`Get-{spec.noun}`", f"`Set-{spec.noun}`"]
    if spec.creatable:
        ops.insert(1, f"`New-{spec.noun}`")
    if spec.deletable:
        ops.append(f"`Remove-{spec.noun}`")
    lines.append(
        f"Each item is one {spec.type_name}, identified by `{spec.identity_field}` (case-insensitive). "
        f"Cmdlets: {', '.join(ops)}."
    )
    if not spec.creatable:
        lines += ["", f"Exchange Online cannot create or delete {_article(spec.type_name)}: it must already exist in the "
                  "tenant (added and verified in the Microsoft 365 admin center); the stack adopts it and manages "
                  "the declared fields."]
    lines += [
        "",
        "| Field | Exchange parameter | Type | Default | Allowed values | Mode | Risky | Description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    declarable = _declarable(spec)
    for f in declarable:
        name = _code(f.name)
        if f.name == spec.identity_field:
            name += " (identity, required)"
        elif f.required_on_create and spec.creatable:
            name += " (required unless `adopt: true`)"
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    _code(f.param),
                    _cell(_type_text(f)),
                    _default_text(f.default),
                    _cell(f.kind.describe()),
                    _cell(_mode_text(spec, f)),
                    "⚠️ yes" if f.risky else "no",
                    _cell(f.description),
                ]
            )
            + " |"
        )
    for key in META_KEYS:
        lines.append(
            f"| {_code(key)} | (none: not sent to Exchange) | boolean | `false` | true, false | stack only | no | "
            f"{_cell(_META_DESCRIPTION.get(key, ''))} |"
        )
    if spec.renamable:
        lines.append(
            f"| {_code(RENAMED_FROM)} | (none: not sent to Exchange) | string | (none) | "
            f"{_cell(spec.field(spec.identity_field).kind.describe())} | stack only | no | "
            f"{_cell(_RENAMED_FROM_DESCRIPTION)} |"
        )
    hidden = [f for f in spec.fields if f not in declarable]
    if hidden:
        lines += ["", "Read-only (reported, never declared): " + ", ".join(_code(f.name) for f in hidden) + "."]
    return lines


def _tenant_type(schema: dict[str, Any]) -> str:
    if "allOf" in schema:
        return _tenant_type(schema["allOf"][0])
    kind = schema.get("type", "string")
    return kind if isinstance(kind, str) else str(kind[0])


def stack_reference() -> str:
    """The markdown text of ``docs/stack-reference.md``."""
    lines = [
        "<!-- GENERATED by `python -m o365_mailflow.docgen` from o365_mailflow/specs/. Do not edit by hand. -->",
        "# Stack file reference",
        "",
        "A stack file (`stacks/<name>.yaml`) declares the mail flow of one tenant. This page lists every key it "
        "accepts; it is generated from the same spec tables that validate the file, build the Exchange "
        "parameters and compute plans, so it cannot disagree with the code. A JSON Schema of the same file is "
        "in [`stack.schema.json`](stack.schema.json): add "
        "`# yaml-language-server: $schema=../docs/stack.schema.json` as the first line of a stack file for "
        "completion and checking in editors that use the YAML language server. The schema is generated from the "
        "same declarations and checks every value rule and cross-field rule below; what JSON Schema cannot "
        "compare (connector names unique across the file, `renamedFrom` against the other names, a range that "
        "ends before it starts, 29 February of a year that is not a leap year) and duplicate YAML keys are "
        "reported by `mailflow validate` only.",
        "",
        "Values are normalised before they are compared: enumerations are case-insensitive (written here in "
        "their canonical case), domains are lower-cased, and lists marked as sets ignore order and duplicates. "
        "A field that a stack does not declare is never compared or changed.",
        "",
        "**Modes**: *create and update*: sent by `New-*` and `Set-*`; *create only*: a change needs the object "
        "to be replaced; *set only*: `New-*` does not take it, so a create sends it in a follow-up `Set-*`; "
        "*update (Set-\\* only)*: for types Exchange Online cannot create (accepted domains); *identity*: names "
        "the object, never changed. **Risky** fields can stop or misroute mail; a pull-request preview that "
        "changes one shows a caution banner.",
        "",
        "## Top level",
        "",
        "| Key | Type | Default | Description |",
        "|---|---|---|---|",
        "| `tenant` | mapping | (required) | Which tenant this stack manages (below). |",
    ]
    for key, schema in TOP_LEVEL.items():
        default = _code(json.dumps(schema["default"])) if "default" in schema else "(none)"
        kind = schema["type"] if isinstance(schema["type"], str) else schema["type"][0]
        lines.append(f"| {_code(key)} | {kind} | {default} | {_cell(schema['description'])} |")
    for spec in SPECS.values():
        lines.append(
            f"| {_code(spec.stack_key)} | list of {spec.type_name} | `[]` | "
            f"[{spec.type_name}](#{spec.stack_key.lower()}-{spec.type_name.lower()}) objects. |"
        )
    lines += ["", "## `tenant`", "", "| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, schema in TENANT_KEYS.items():
        main = _first(schema)
        kind = "enum: " + ", ".join(main["enum"]) if "enum" in main else _tenant_type(main)
        default = _code(json.dumps(schema["default"])) if "default" in schema else "(none)"
        lines.append(f"| {_code(key)} | {_cell(kind)} | {default} | {_cell(schema['description'])} |")
    lines += [
        "",
        "Examples: `tenant: {emulator: true}` for the emulated tenant; "
        "`tenant: {id: 00000000-0000-0000-0000-000000000000, initialDomain: contoso.onmicrosoft.com}` for a real one.",
    ]
    for spec in SPECS.values():
        lines += [""] + _resource_section(spec)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- files


def generated_files() -> dict[Path, str]:
    """Relative path -> expected content of every generated file."""
    return {
        REFERENCE_PATH: stack_reference(),
        SCHEMA_PATH: json.dumps(stack_schema(), indent=2, ensure_ascii=False) + "\n",
    }


def _differs(path: Path, text: str) -> bool:
    return not path.is_file() or path.read_text(encoding="utf-8") != text


def stale_files(root: Path = _ROOT) -> list[Path]:
    """Generated files under ``root`` that are missing or differ from what the spec tables give."""
    return [rel for rel, text in generated_files().items() if _differs(root / rel, text)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m o365_mailflow.docgen",
        description="Generate docs/stack-reference.md and docs/stack.schema.json from the spec tables.",
    )
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when a file is out of date")
    parser.add_argument("--root", type=Path, default=_ROOT, help="project root (default: this checkout)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for rel in stale:
            print(f"{rel} is out of date with o365_mailflow/specs/; run: python -m o365_mailflow.docgen",
                  file=sys.stderr)
        return 1 if stale else 0
    for rel, text in generated_files().items():
        path = args.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if _differs(path, text):
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
