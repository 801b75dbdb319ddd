"""The generated stack reference and JSON Schema (``python -m o365_mailflow.docgen``).

Matrix: the checked-in files are what the spec tables generate (``--check`` passes, and fails naming the file
when one is stale or missing); the schema is a valid draft 2020-12 schema; every committed ``stacks/*.yaml``
validates against it; every declarable field of every spec is in both files with its parameter, default and
risky flag; and the schema agrees with the stack loader on accepted and refused files.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from o365_mailflow import docgen
from o365_mailflow.errors import StackError
from o365_mailflow.specs import SPECS, UNSET, Mode
from o365_mailflow.stack import TENANT_KEYS, load_stack_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "stack.schema.json"
REFERENCE_FILE = ROOT / "docs" / "stack-reference.md"
STACK_FILES = sorted((ROOT / "stacks").glob("*.yaml"))


def run_docgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o365_mailflow.docgen", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def test_the_checked_in_reference_and_schema_are_what_the_spec_tables_generate():
    result = run_docgen("--check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param("edit", id="edited-by-hand"),
        pytest.param("delete", id="missing"),
    ],
)
@pytest.mark.parametrize("rel", [docgen.REFERENCE_PATH, docgen.SCHEMA_PATH], ids=lambda p: p.name)
def test_check_fails_and_names_the_file_when_a_generated_file_is_stale(tmp_path, rel, damage):
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("*.tmp"))
    target = tmp_path / rel
    if damage == "edit":
        target.write_text(target.read_text(encoding="utf-8").replace("a", "b", 1), encoding="utf-8")
    else:
        target.unlink()
    stale = run_docgen("--check", "--root", str(tmp_path))
    assert stale.returncode == 1
    assert str(rel) in stale.stderr and "python -m o365_mailflow.docgen" in stale.stderr
    regenerate = run_docgen("--root", str(tmp_path))
    assert regenerate.returncode == 0 and str(rel) in regenerate.stdout
    assert run_docgen("--check", "--root", str(tmp_path)).returncode == 0


def test_the_schema_is_a_valid_draft_2020_12_schema(schema):
    jsonschema.Draft202012Validator.check_schema(schema)


def test_there_are_stack_files_to_check():
    assert {p.stem for p in STACK_FILES} >= {"dev", "prod"}


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_committed_stack_file_validates_against_the_schema(validator, path):
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_load(path))]
    assert errors == []


DECLARABLE = [
    pytest.param(spec, f, id=f"{spec.type_name}.{f.name}")
    for spec in SPECS.values()
    for f in spec.fields
    if f.mode is not Mode.READ_ONLY or f.name == spec.identity_field
]


@pytest.mark.parametrize(("spec", "field"), DECLARABLE)
def test_every_declarable_field_is_in_the_schema_with_its_parameter_default_and_risk(schema, spec, field):
    prop = schema["$defs"][spec.type_name]["properties"][field.name]
    assert prop["x-exchangeParameter"] == field.param
    assert prop["x-risky"] is field.risky
    assert prop["x-mode"] == field.mode.value
    assert field.description.rstrip(".") in prop["description"]
    if field.default is UNSET:
        assert "default" not in prop
    else:
        assert prop["default"] == field.default


@pytest.mark.parametrize(("spec", "field"), DECLARABLE)
def test_every_declarable_field_has_a_row_in_the_reference(spec, field):
    text = REFERENCE_FILE.read_text(encoding="utf-8")
    section = text.split(f"## `{spec.stack_key}`")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| `{field.name}`"))
    assert f"`{field.param}`" in row
    assert ("⚠️ yes" in row) is field.risky
    assert field.kind.describe().replace("|", "\\|") in row


def test_the_schema_lists_exactly_the_tenant_keys_the_loader_accepts(schema):
    assert list(schema["properties"]["tenant"]["properties"]) == list(TENANT_KEYS)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dev() -> dict[str, Any]:
    return copy.deepcopy(_load(ROOT / "stacks" / "dev.yaml"))


def _mutate(change: str) -> dict[str, Any]:
    doc = _dev()
    inbound = doc["inboundConnectors"][0]
    if change == "unchanged":
        pass
    elif change == "unknown-field":
        inbound["senderIpAdresses"] = inbound.pop("senderIpAddresses")
    elif change == "unknown-top-level-key":
        doc["inboundConnector"] = doc.pop("inboundConnectors")
    elif change == "bad-enum":
        inbound["connectorType"] = "Hybrid"
    elif change == "string-for-boolean":
        inbound["requireTls"] = "maybe"
    elif change == "scalar-for-list":
        inbound["senderDomains"] = 42
    elif change == "missing-identity":
        del inbound["name"]
    elif change == "missing-required-on-create":
        del inbound["senderDomains"]
    elif change == "missing-required-but-adopting":
        del inbound["senderDomains"]
        inbound["adopt"] = True
    elif change == "no-tenant":
        del doc["tenant"]
    elif change == "tenant-without-identity":
        doc["tenant"] = {"cloud": "commercial"}
    elif change == "real-tenant-by-id":
        doc["tenant"] = {"id": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"}
    elif change == "bad-tenant-id":
        doc["tenant"] = {"id": "not-a-guid"}
    elif change == "renamed-from-old-name":
        inbound["renamedFrom"] = "Old relay name"
    elif change == "renamed-from-a-number":
        inbound["renamedFrom"] = 42
    elif change == "empty-lists":
        doc["outboundConnectors"] = []
    elif change == "null-comment":
        doc["inboundConnectors"][0]["comment"] = None
    else:  # pragma: no cover
        raise AssertionError(change)
    return doc


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ("unchanged", True),
        ("unknown-field", False),
        ("unknown-top-level-key", False),
        ("bad-enum", False),
        ("string-for-boolean", False),
        ("scalar-for-list", False),
        ("missing-identity", False),
        ("missing-required-on-create", False),
        ("missing-required-but-adopting", True),
        ("no-tenant", False),
        ("tenant-without-identity", False),
        ("real-tenant-by-id", True),
        ("bad-tenant-id", False),
        ("empty-lists", True),
        ("null-comment", True),
        ("renamed-from-old-name", True),
        ("renamed-from-a-number", False),
    ],
)
def test_the_schema_and_the_stack_loader_agree(validator, change, valid):
    doc = _mutate(change)
    schema_ok = validator.is_valid(doc)
    try:
        load_stack_text(yaml.safe_dump(doc, sort_keys=False), file="stacks/dev.yaml", name="dev")
        loader_ok = True
    except StackError:
        loader_ok = False
    assert (schema_ok, loader_ok) == (valid, valid)
