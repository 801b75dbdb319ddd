"""``renamedFrom`` (a connector's previous name) is refused at the exact field path and line when it cannot work.

Matrix, each through ``mailflow validate FILE`` (must print ``FILE:LINE: path: ...`` and exit 1) and the loader:
- on an accepted domain (only connectors can be renamed);
- equal to the object's own name, case-insensitively;
- equal to the name of another declared connector of the same type (a swap or a chain in one apply);
- the same old name claimed by two connectors of one type;
- not a connector name (a number, empty, longer than 64 characters), and a misspelt key gets "did you mean".
Accepted: an old name that is another type's connector name; the loader keeps it on the object (normalised); the
generated JSON Schema accepts it on connectors and refuses it on accepted domains.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from stack_corpus import assert_refused_at

from o365_mailflow.stack import load_stack_text

ROOT = Path(__file__).resolve().parents[2]
HEAD = "tenant:\n  emulator: true\n"
M = "  #!"  # marks the line the diagnostic must point at

RELAY = """\
  - name: {name}
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
"""


def _relay(name: str, renamed_from: str | None = None, *, marked: bool = False) -> str:
    text = RELAY.format(name=name)
    if renamed_from is not None:
        text += f"    renamedFrom: {renamed_from}" + (M if marked else "") + "\n"
    return text


CASES: list[tuple[str, str, str, str]] = [
    ("accepted-domain",
     HEAD + f"acceptedDomains:\n  - domainName: contoso.com\n    renamedFrom: fabrikam.com{M}\n",
     "acceptedDomains[0].renamedFrom", "only for connectors"),
    ("same-as-name-case-insensitive",
     HEAD + "inboundConnectors:\n" + _relay("Relay", "RELAY", marked=True),
     "inboundConnectors[0].renamedFrom", "the same as name"),
    ("name-of-another-declared-connector",
     HEAD + "inboundConnectors:\n" + _relay("Printers") + _relay("Copiers", "printers", marked=True),
     "inboundConnectors[1].renamedFrom", "is the name of inboundConnectors[0] (line 4)"),
    ("claimed-twice",
     HEAD + "outboundConnectors:\n  - name: To A\n    recipientDomains: [a.example.com]\n    renamedFrom: Old\n"
     + f"  - name: To B\n    recipientDomains: [b.example.com]\n    renamedFrom: old{M}\n",
     "outboundConnectors[1].renamedFrom", "already claimed by outboundConnectors[0] (line 4)"),
    ("not-a-name", HEAD + "inboundConnectors:\n" + _relay("Relay", "42", marked=True),
     "inboundConnectors[0].renamedFrom", "expected a connector name"),
    ("empty", HEAD + "inboundConnectors:\n" + _relay("Relay", '""', marked=True),
     "inboundConnectors[0].renamedFrom", "must not be empty"),
    ("too-long", HEAD + "inboundConnectors:\n" + _relay("Relay", "x" * 65, marked=True),
     "inboundConnectors[0].renamedFrom", "more than the 64"),
    ("misspelt", HEAD + "inboundConnectors:\n" + RELAY.format(name="Relay") + f"    renamedfrom: Old{M}\n",
     "inboundConnectors[0].renamedfrom", "did you mean renamedFrom"),
]


@pytest.mark.parametrize(("text", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_renamed_from_is_refused_at_its_path_and_line(tmp_path: Path, text: str, path: str, fragment: str) -> None:
    assert_refused_at(tmp_path / "stack.yaml", text, path, fragment)


VALID = HEAD + "inboundConnectors:\n" + _relay("Relay from copiers", "'  Relay from printers '") + """\
outboundConnectors:
  - name: To partner
    renamedFrom: Relay from copiers
    recipientDomains: [partner.example.com]
"""


def test_a_valid_rename_loads_and_the_old_name_may_be_another_types_name() -> None:
    stack = load_stack_text(VALID, file="stacks/test.yaml", name="test")
    inbound, outbound = stack.objects
    assert (inbound.name, inbound.renamed_from) == ("Relay from copiers", "Relay from printers")
    assert "renamedFrom" not in inbound.fields  # a meta key: never a field sent to Exchange
    assert (outbound.name, outbound.renamed_from) == ("To partner", "Relay from copiers")


def test_the_json_schema_accepts_renamed_from_on_connectors_only() -> None:
    import yaml

    schema = json.loads((ROOT / "docs" / "stack.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(VALID), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(HEAD + "acceptedDomains:\n  - domainName: contoso.com\n"
                                          "    renamedFrom: fabrikam.com\n"), schema)
    for shipped in sorted((ROOT / "stacks").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(shipped.read_text(encoding="utf-8")), schema)
