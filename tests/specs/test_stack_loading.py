"""Loading good stack files, and what `mailflow validate` does with them.

Matrix:
- the shipped stacks (dev on the emulator, prod with placeholders) validate clean, by name and with no argument;
- every problem of a file is reported, not only the first; several files in one run;
- normalisation: sets de-duplicated, sorted and lower-cased, enums in canonical case, ``smtp:x;1`` accepted,
  TEST-NET addresses accepted as public, EFSkipIPs ranges/CIDR/IPv6 accepted;
- the tenant section becomes a TenantConfig; line numbers of objects and fields are kept;
- routing warnings are printed but do not fail; validate opens no network connection.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from o365_mailflow.cli import main
from o365_mailflow.errors import Severity, StackError
from o365_mailflow.routing import check_stack
from o365_mailflow.stack import load_stack, load_stack_text, stack_path, validate_stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("name", ["dev", "prod"], ids=["dev", "prod"])
def test_the_shipped_stacks_validate_clean_by_name(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(main, ["validate", "--stack", name])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(")") and ": valid (" in result.output
    assert "error" not in result.output


def test_with_no_argument_every_stack_of_the_project_is_validated(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO / "stacks")  # found by walking up from a subdirectory
    result = runner.invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert "dev.yaml: valid" in result.output and "prod.yaml: valid" in result.output


def test_the_dev_stack_describes_the_hybrid_tenant() -> None:
    stack = load_stack(REPO / "stacks" / "dev.yaml")
    assert stack.tenant.emulator is True and stack.name == "dev" and stack.prune is False
    domains = {o.name: o.fields for o in stack.of_type("AcceptedDomain")}
    assert domains["contoso.com"]["domainType"] == "InternalRelay"
    inbound = stack.of_type("InboundConnector")
    assert any(o.fields.get("senderIpAddresses") for o in inbound)
    assert any(o.fields.get("tlsSenderCertificateName") for o in inbound)
    (outbound,) = stack.of_type("OutboundConnector")
    assert outbound.fields["tlsSettings"] == "DomainValidation" and outbound.fields["tlsDomain"]
    assert "contoso.com" in outbound.fields["recipientDomains"]


def test_the_prod_stack_names_a_real_tenant_and_holds_no_secret() -> None:
    stack = load_stack(REPO / "stacks" / "prod.yaml")
    assert stack.tenant.emulator is False
    assert stack.tenant.tenant_id and stack.tenant.initial_domain == "contoso.onmicrosoft.com"
    text = (REPO / "stacks" / "prod.yaml").read_text(encoding="utf-8").lower()
    assert "clientsecret:" not in text and "password:" not in text


def test_every_problem_in_a_file_is_reported_not_only_the_first(tmp_path: Path, runner: CliRunner) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "tenant:\n  emulator: true\n"
        "inboundConnectors:\n"
        "  - name: Relay\n    connectorType: OnPremises\n    senderDomains: ['*']\n"
        "    senderIpAddresses: [10.0.0.1, 192.168.0.1]\n"
        "outboundConnectors:\n"
        "  - name: Out\n    recipientDomains: [fabrikam.com]\n    tlsSettings: DomainValidation\n"
        "acceptedDomains:\n  - domainName: contoso.com\n    matchSubDomains: true\n    domainType: Authoritative\n",
        encoding="utf-8",
    )
    result = runner.invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1
    located = [line.split(": ")[1] for line in result.output.splitlines() if line.startswith(f"{bad}:")]
    assert located[:-1] == [
        "inboundConnectors[0].senderIpAddresses[0]",
        "inboundConnectors[0].senderIpAddresses[1]",
        "outboundConnectors[0].tlsSettings",
        "acceptedDomains[0].matchSubDomains",
    ]
    assert result.output.splitlines()[-1] == f"{bad}: 4 error(s), 0 warning(s)"


def test_several_files_are_validated_in_one_run_and_any_error_fails_it(tmp_path: Path, runner: CliRunner) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("tenant:\n  emulator: true\n", encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(main, ["validate", str(good), str(missing)])
    assert result.exit_code == 1
    assert f"{good}: valid" in result.output
    assert f"{missing}: the stack file does not exist" in result.output


def test_load_stack_raises_one_stack_error_carrying_every_diagnostic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenant:\n  emulator: maybe\nprune: 1\n", encoding="utf-8")
    with pytest.raises(StackError) as caught:
        load_stack(bad)
    assert [(d.dotted_path, d.line) for d in caught.value.diagnostics] == [("tenant.emulator", 2), ("prune", 3)]
    assert str(caught.value).splitlines()[0].startswith(f"{bad}:2: tenant.emulator: ")


LIST_STACK = """\
tenant:
  emulator: true
inboundConnectors:
  - name: Partner Fabrikam
    connectorType: partner
    senderDomains: [smtp:Fabrikam.COM;1, "*.fabrikam.com", fabrikam.com]
    senderIpAddresses: [203.0.113.7/24, 198.51.100.9, 192.0.2.1/32]
    efSkipIps: [10.0.0.0/8, 203.0.113.1-203.0.113.9, "2001:db8::/32"]
    efUsers: [Admin@Contoso.com]
    adopt: true
outboundConnectors:
  - name: To Fabrikam
    recipientDomains: [FABRIKAM.com, "*.Fabrikam.com"]
    useMxRecord: false
    smartHosts: [Mail.Fabrikam.COM., 203.0.113.25]
    tlsSettings: domainvalidation
    tlsDomain: "*.fabrikam.com"
    mtaStsMode: none
"""


def test_values_are_normalised_so_order_and_case_never_make_a_diff() -> None:
    stack = load_stack_text(LIST_STACK, file="inline.yaml", name="inline")
    (inbound,) = stack.of_type("InboundConnector")
    assert inbound.adopt is True
    assert inbound.fields == {
        "name": "Partner Fabrikam",
        "connectorType": "Partner",
        "senderDomains": ["*.fabrikam.com", "fabrikam.com"],
        "senderIpAddresses": ["192.0.2.1", "198.51.100.9", "203.0.113.0/24"],
        "efSkipIps": ["10.0.0.0/8", "203.0.113.1-203.0.113.9", "2001:db8::/32"],
        "efUsers": ["admin@contoso.com"],
    }
    (outbound,) = stack.of_type("OutboundConnector")
    assert outbound.adopt is False
    assert outbound.fields["recipientDomains"] == ["*.fabrikam.com", "fabrikam.com"]
    assert outbound.fields["smartHosts"] == ["203.0.113.25", "mail.fabrikam.com"]
    assert outbound.fields["tlsSettings"] == "DomainValidation"
    assert outbound.fields["mtaStsMode"] == "None"


def test_objects_and_fields_keep_their_line_numbers() -> None:
    stack = load_stack_text(LIST_STACK, file="inline.yaml", name="inline")
    inbound = stack.of_type("InboundConnector")[0]
    outbound = stack.of_type("OutboundConnector")[0]
    assert (inbound.file, inbound.line) == ("inline.yaml", 4)
    assert inbound.field_lines["senderIpAddresses"] == 7
    assert outbound.line == 12 and outbound.field_lines["tlsDomain"] == 17


def test_yaml_anchors_and_merge_keys_work_and_explicit_keys_win() -> None:
    text = (
        "tenant: {emulator: true}\n"
        "inboundConnectors:\n"
        "  - &relay\n    name: One\n    connectorType: OnPremises\n    senderDomains: ['*']\n"
        "    senderIpAddresses: [203.0.113.1]\n"
        "  - <<: *relay\n    name: Two\n    senderIpAddresses: [203.0.113.2]\n"
    )
    stack = load_stack_text(text, file="anchors.yaml", name="anchors")
    one, two = stack.of_type("InboundConnector")
    assert two.fields["connectorType"] == "OnPremises"
    assert (one.fields["senderIpAddresses"], two.fields["senderIpAddresses"]) == (["203.0.113.1"], ["203.0.113.2"])
    assert (two.name, two.line, two.field_lines["name"], two.field_lines["senderIpAddresses"]) == ("Two", 8, 9, 10)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("emulator: true", {"emulator": True, "tenant_id": None, "cloud": "commercial"}),
        ("id: 6F1C2D3E-4B5A-4C7D-8E9F-0A1B2C3D4E5F\n  cloud: GCCHigh",
         {"emulator": False, "tenant_id": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f", "cloud": "gcchigh"}),
        ("initialDomain: Contoso.onmicrosoft.com\n  endpoint: https://127.0.0.1:8443/",
         {"initial_domain": "contoso.onmicrosoft.com", "endpoint": "https://127.0.0.1:8443"}),
    ],
    ids=["emulator", "id-and-cloud", "initial-domain-and-endpoint"],
)
def test_the_tenant_section_becomes_a_tenant_config(section: str, expected: dict[str, object]) -> None:
    stack = load_stack_text(f"tenant:\n  {section}\n", file="t.yaml", name="t")
    for attr, value in expected.items():
        assert getattr(stack.tenant, attr) == value


def test_a_relative_ca_file_is_read_from_the_stack_files_directory(tmp_path: Path) -> None:
    stack_file = tmp_path / "stacks" / "lab.yaml"
    stack_file.parent.mkdir()
    stack_file.write_text("tenant:\n  initialDomain: lab.onmicrosoft.com\n  caFile: certs/ca.pem\n", encoding="utf-8")
    assert load_stack(stack_file).tenant.ca_file == str(tmp_path / "stacks" / "certs" / "ca.pem")


def test_a_stack_name_resolves_to_stacks_dir_and_a_path_stays_a_path(tmp_path: Path) -> None:
    assert stack_path("dev", root=tmp_path) == tmp_path / "stacks" / "dev.yaml"
    assert stack_path("other/dev.yaml") == Path("other/dev.yaml")
    assert stack_path("lab.yml", root=tmp_path) == Path("lab.yml")


def test_a_stack_name_is_found_from_the_project_or_any_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text("tenant: {emulator: true}\n", encoding="utf-8")
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert stack_path("dev") == Path("stacks/dev.yaml")
    monkeypatch.chdir(tmp_path / "docs" / "deep")
    assert stack_path("dev").resolve() == (tmp_path / "stacks" / "dev.yaml").resolve()
    assert stack_path("missing") == Path("stacks/missing.yaml")


def test_routing_warnings_are_printed_but_do_not_fail(tmp_path: Path, runner: CliRunner) -> None:
    stack_file = tmp_path / "s.yaml"
    stack_file.write_text(
        "tenant:\n  emulator: true\nacceptedDomains:\n  - domainName: contoso.com\n    domainType: InternalRelay\n",
        encoding="utf-8",
    )
    result = runner.invoke(main, ["validate", str(stack_file)])
    assert result.exit_code == 0, result.output
    assert f"{stack_file}:5: warning: acceptedDomains[0].domainType: " in result.output
    assert "1 warning(s)" in result.output
    _, diags = validate_stack(stack_file, checks=(check_stack,))
    assert [(d.code, d.severity) for d in diags] == [("routing.internal-relay-uncovered", Severity.WARNING)]
    assert validate_stack(stack_file)[1] == []  # the loader alone has no routing opinion


def test_validate_opens_no_network_connection(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("mailflow validate tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.chdir(REPO)
    result = runner.invoke(main, ["validate", "--stack", "dev", "--stack", "prod"])
    assert result.exit_code == 0, result.output


def test_validate_stack_returns_diagnostics_instead_of_raising(tmp_path: Path) -> None:
    stack_file = tmp_path / "s.yaml"
    stack_file.write_text("tenant:\n  emulator: true\nacceptedDomains: {}\n", encoding="utf-8")
    stack, diags = validate_stack(stack_file)
    assert stack is None
    assert [(d.dotted_path, d.line, d.severity) for d in diags] == [("acceptedDomains", 3, Severity.ERROR)]


def test_validating_with_the_routing_checks_loads_no_http_client() -> None:
    code = (
        "import sys; from o365_mailflow.stack import validate_stack; from o365_mailflow.routing import check_stack; "
        "stack, diags = validate_stack('stacks/dev.yaml', checks=(check_stack,)); assert stack is not None; "
        "print(sorted(m for m in sys.modules if m in ('requests', 'msal', 'o365_mailflow.client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_quiet_prints_problems_only(tmp_path: Path, runner: CliRunner) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("tenant:\n  emulator: true\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenant:\n  emulator: true\nprune: 0\n", encoding="utf-8")
    result = runner.invoke(main, ["validate", "-q", str(good), str(bad)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"{bad}:3: prune: 0 is a number, not a boolean; write true or false "
                                          "(allowed: true, false)"]


def test_json_format_reports_every_file_and_diagnostic(tmp_path: Path, runner: CliRunner) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenant:\n  emulator: true\nprune: 0\n", encoding="utf-8")
    result = runner.invoke(main, ["validate", "--format", "json", str(bad)])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["valid"] is False
    (report,) = document["files"]
    assert report["errors"] == 1
    assert [(d["path"], d["line"], d["severity"]) for d in report["diagnostics"]] == [("prune", 3, "error")]


def test_github_format_annotates_the_line(tmp_path: Path, runner: CliRunner) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenant:\n  emulator: true\nprune: 0\n", encoding="utf-8")
    result = runner.invoke(main, ["validate", "--format", "github", "-q", str(bad)])
    assert result.exit_code == 1
    file_prop = str(bad).replace(":", "%3A").replace(",", "%2C")
    assert result.output.startswith(f"::error file={file_prop},line=3,title=prune::{bad}:3: prune: 0 is a number")
