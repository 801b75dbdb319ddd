"""The editor schema (``docs/stack.schema.json``) and ``mailflow validate`` judge one corpus of stack files alike.

Matrix: every case of ``tests/specs/stack_corpus.py`` (bad files with the error code the CLI must give, good files it
must accept) goes through ``mailflow validate --format json`` (all files in one run of the command) and through the
checked-in schema with a Draft 2020-12 validator, each file read as YAML 1.2 as the YAML language server reads it.
- the CLI gives each bad file its expected error code and accepts each good file;
- the schema accepts exactly the files the CLI accepts, except the cases in KNOWN_DIFFERENCES, each with the reason
  JSON Schema cannot express that rule; a listed case that no longer differs fails too, so the list stays true;
- the bad files cover every cross-field rule the spec tables declare;
- the generated IP patterns agree with the SenderIp and SmartHost value kinds on both sides of every reserved
  range's edges, bare and with prefixes around the range's own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from o365_mailflow.cli import main
from o365_mailflow.specs import SPECS, rule_schemas

from stack_corpus import BAD, CASES, GOOD, Case

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "stack.schema.json"

# Files the CLI refuses and the schema accepts, and why JSON Schema cannot refuse them. Keep it short: a rule that
# JSON Schema can express belongs in the schema (generated from the specs package), not here.
KNOWN_DIFFERENCES: dict[str, str] = {
    "duplicate-names-in-other-case": "names must be unique across the list, compared case-insensitively; "
    "uniqueItems compares whole items, exactly, and nothing compares one property across items",
    "renamed-from-its-own-name": "renamedFrom must differ from name (case-insensitively): JSON Schema cannot "
    "compare two values of the same object (there is no $data reference in Draft 2020-12)",
    "renamed-from-a-name-still-declared": "renamedFrom must not name another connector of the file: a comparison "
    "across list items, which JSON Schema cannot make",
    "duplicate-yaml-key": "below the schema: the YAML parser keeps one of the two values before any schema sees the "
    "document (duplicate keys are the YAML parser's error, not the schema's)",
    "ef-skip-ip-range-backwards": "a range a-b must not end before it starts: a numeric comparison between two "
    "parts of one string, which a pattern cannot make in general (IPv6 included)",
    "validation-timestamp-29-february-2026": "leap years: the pattern knows the days of each month but accepts "
    "29 February of every year; telling leap years apart needs arithmetic on the year",
}

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 core schema, as editors read a stack file (the YAML language server's default): only true/false
    in three spellings are booleans (``yes`` stays text) and dates stay text. Independent of the stack loader."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def cli_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every corpus file through one run of ``mailflow validate --format json``: case id -> that file's report."""
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    for case in CASES:
        path = folder / f"{case.id}.yaml"
        path.write_text(case.text, encoding="utf-8")
        files[str(path)] = case.id
    result = CliRunner().invoke(main, ["validate", "--format", "json", *files])
    assert result.exit_code == 1, result.output  # the corpus has bad files
    report = json.loads(result.stdout)
    return {files[entry["file"]]: entry for entry in report["files"]}


def _schema_errors(validator: jsonschema.Draft202012Validator, case: Case) -> list[str]:
    document = yaml.load(case.text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.validator}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_validate_refuses_each_bad_file_with_its_error_and_accepts_each_good_file(cli_verdicts, case):
    verdict = cli_verdicts[case.id]
    codes = [d["code"] for d in verdict["diagnostics"] if d["severity"] == "error"]
    if case.code is None:
        assert (verdict["valid"], codes) == (True, [])
    else:
        assert verdict["valid"] is False
        assert case.code in codes


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_schema_agrees_with_validate_except_the_known_differences(cli_verdicts, validator, case):
    cli_valid = cli_verdicts[case.id]["valid"]
    errors = _schema_errors(validator, case)
    if case.id in KNOWN_DIFFERENCES:
        assert cli_valid is False and errors == [], "no longer a difference: remove it from KNOWN_DIFFERENCES"
    else:
        assert (errors == []) is cli_valid, errors or "the schema accepts a file that mailflow validate refuses"


def test_the_known_differences_name_cases_of_the_corpus():
    assert set(KNOWN_DIFFERENCES) <= {c.id for c in CASES}


def test_the_bad_files_cover_every_cross_field_rule():
    rules = {rule["$comment"] for spec in SPECS.values() for rule in rule_schemas(spec)}
    assert rules - {c.code for c in BAD} == set()


def test_the_corpus_is_large_enough_to_mean_something():
    assert len(BAD) >= 30 and len(GOOD) >= 10


def _boundary_texts() -> list[str]:
    """Addresses on both sides of every reserved range's edges, bare and with prefixes around each range's own."""
    from ipaddress import IPv4Address

    from o365_mailflow.specs.kinds import _RESERVED_V4

    texts = []
    for net, _ in _RESERVED_V4:
        first, last = int(net.network_address), int(net.broadcast_address)
        for value in {max(first - 1, 0), first, last, min(last + 1, 2**32 - 1)}:
            address = str(IPv4Address(value))
            texts.append(address)
            texts += [f"{address}/{p}" for p in (0, 1, net.prefixlen - 1, net.prefixlen, net.prefixlen + 1, 16, 23,
                                                 24, 31, 32) if 0 <= p <= 32]
    return sorted(set(texts))


@pytest.mark.parametrize("kind_name", ["SenderIp", "SmartHost"])
def test_the_ip_patterns_agree_with_the_value_kinds_at_every_reserved_range_edge(kind_name):
    from o365_mailflow import specs

    kind = getattr(specs, kind_name)()
    pattern = re.compile(kind.json_schema()["pattern"])
    disagree = [t for t in _boundary_texts() if bool(pattern.search(t)) != (kind.validate(t)[1] == [])]
    assert disagree == []
