"""The stack loader refuses hostile or broken YAML with a FILE:LINE diagnostic (exit 1), never a hang or a crash.

Reviewer findings: aliases of aliases ("billion laughs") were walked once per use, so a few lines took minutes;
a self-referencing alias or thousands of nesting levels hit Python's recursion limit; a tab used for indentation
gave libyaml's "found character that cannot start any token"; non-UTF-8 bytes were reported by byte offset only.
Each case runs through ``mailflow validate FILE``.

Issue 11: PyYAML 6.0.4's libyaml stops at 1,000 nesting levels with its own wording, before our 200-level
check is reached, and a NUL byte was reported as ``"<unicode string>", position 0``. Matrix for those: nesting as
flow lists, flow mappings, block lists and flow lists over many lines; between 200 and 1,000 levels and far
beyond 1,000; a NUL byte (binary file) and another control character; each through libyaml and through the
pure-Python parser (the loader uses whichever pyyaml was built with). They assert our code, file and line.
"""

from __future__ import annotations

from pathlib import Path

import json

import pytest
import yaml
from click.testing import CliRunner

from o365_mailflow import stack
from o365_mailflow.cli import main
from o365_mailflow.stack import MAX_ALIAS_EXPANSION, MAX_NESTING, load_stack_text, validate_stack

HEAD = "tenant:\n  emulator: true\n"


def _laughs(levels: int, *, merge: bool = False) -> str:
    """Level 0 holds ten values; each next level refers to the previous one ten times."""
    if merge:
        lines = ["a: &a {" + ", ".join(f"k{n}: v" for n in range(10)) + "}"]
    else:
        lines = ["a: &a [" + ", ".join("x" for _ in range(10)) + "]"]
    prev = "a"
    for level in range(1, levels + 1):
        name = f"l{level}"
        if merge:
            body = "{<<: [" + ", ".join(f"*{prev}" for _ in range(10)) + f"], own{level}: v}}"
        else:
            body = "[" + ", ".join(f"*{prev}" for _ in range(10)) + "]"
        lines.append(f"{name}: &{name} {body}")
        prev = name
    return HEAD + "\n".join(lines) + "\n"


def _validate(tmp_path: Path, content: str | bytes) -> tuple[Path, list[str]]:
    stack_file = tmp_path / "stack.yaml"
    if isinstance(content, bytes):
        stack_file.write_bytes(content)
    else:
        stack_file.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(stack_file)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return stack_file, result.output.splitlines()


def test_aliases_of_aliases_are_refused_at_the_alias_line(tmp_path: Path) -> None:
    # 4 levels of 10x add 110 + 1,110 + 11,110 + 111,110 values: over the limit at level 4's aliases (line 7)
    stack_file, out = _validate(tmp_path, _laughs(4))
    assert any(line.startswith(f"{stack_file}:7: ") and "expand to more than 100,000 values" in line
               for line in out), out


def test_deeper_aliases_of_aliases_are_refused_without_expanding_them(tmp_path: Path) -> None:
    stack_file, out = _validate(tmp_path, _laughs(9))  # 10**10 values if expanded
    assert any("expand to more than" in line for line in out), out


def test_merge_keys_of_merge_keys_are_bounded_too(tmp_path: Path) -> None:
    stack_file, out = _validate(tmp_path, _laughs(8, merge=True))
    assert any(line.startswith(f"{stack_file}:") and "expand to more than" in line for line in out), out


def test_aliases_below_the_limit_still_load() -> None:
    # 3 levels add 12,330 values, well under the limit: the loader goes on to the usual unknown-key errors
    assert 12_330 < MAX_ALIAS_EXPANSION
    with pytest.raises(Exception) as info:
        load_stack_text(_laughs(3), file="s.yaml", name="s")
    summaries = [d.summary for d in info.value.diagnostics]  # type: ignore[attr-defined]
    assert any("unknown key 'l3'" in s for s in summaries), summaries
    assert not any("expand" in s for s in summaries), summaries


@pytest.mark.parametrize("text", [
    HEAD + "a: &a [*a]\n",
    HEAD + "a: &a {b: *a}\n",
    HEAD + "a: &a {<<: *a}\n",
], ids=["sequence", "mapping", "merge"])
def test_a_self_referencing_alias_is_a_diagnostic(tmp_path: Path, text: str) -> None:
    stack_file, out = _validate(tmp_path, text)
    assert any(line.startswith(f"{stack_file}:3: ") and "refers to the value that contains it" in line
               for line in out), out


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a: ", "}")], ids=["lists", "mappings"])
def test_thousands_of_nesting_levels_are_a_diagnostic(tmp_path: Path, opener: str, closer: str) -> None:
    text = HEAD + "x: " + opener * 5000 + "1" + closer * 5000 + "\n"
    stack_file, out = _validate(tmp_path, text)
    assert any(line.startswith(f"{stack_file}:3: ") and "nested more than" in line for line in out), out


def test_a_tab_used_for_indentation_is_named(tmp_path: Path) -> None:
    stack_file, out = _validate(tmp_path, "tenant:\n  emulator: true\nprune: false\ninboundConnectors:\n\t- name: x\n")
    assert any(line.startswith(f"{stack_file}:5: ") and "tab at line 5, column 1" in line
               and "tabs are not allowed for indentation" in line and "use spaces" in line for line in out), out
    assert not any("cannot start any token" in line for line in out), out


def test_bytes_that_are_not_utf8_are_reported_by_line(tmp_path: Path) -> None:
    content = (HEAD + "prune: false  # café\n").encode("utf-8") + b"inboundConnectors: [ab\xe9]\n"
    stack_file, out = _validate(tmp_path, content)
    assert any(line.startswith(f"{stack_file}:4: ") and "not UTF-8" in line and "line 4, column 23" in line
               for line in out), out
    assert validate_stack(stack_file)[1][0].line == 4


# ------------------------------------------------------------------ issue 11: whichever parser layer notices first


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The loader on libyaml (as shipped when pyyaml has it) or on pyyaml's pure-Python parser."""
    if request.param == "pure-python":
        monkeypatch.setattr(stack, "_Loader", stack._PyLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("this pyyaml was built without libyaml")
    return str(request.param)


def _validate_json(tmp_path: Path, content: str | bytes) -> tuple[Path, list[dict[str, object]]]:
    """``mailflow validate --format json FILE``: exit 1 and the file's diagnostics."""
    stack_file = tmp_path / "stack.yaml"
    if isinstance(content, bytes):
        stack_file.write_bytes(content)
    else:
        stack_file.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", "--format", "json", str(stack_file)])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    [checked] = report["files"]
    return stack_file, checked["diagnostics"]


def _nested(shape: str, levels: int) -> tuple[str, int]:
    """A stack nesting ``levels`` collections under ``x``, and the line of the one past our limit."""
    if shape == "flow-lists":
        return HEAD + "x: " + "[" * levels + "1" + "]" * levels + "\n", 3
    if shape == "flow-mappings":
        return HEAD + "x: " + "{a: " * levels + "1" + "}" * levels + "\n", 3
    if shape == "block-lists":
        return HEAD + "x:\n  " + "- " * levels + "1\n", 4
    # one "[" per line: the top mapping is level 1, so level MAX_NESTING + 1 is the MAX_NESTING-th "[" (from line 4)
    return HEAD + "x:\n" + "  [\n" * levels + "  1" + "]" * levels + "\n", 3 + MAX_NESTING


@pytest.mark.parametrize("levels", [MAX_NESTING + 100, 900, 5000], ids=["300", "900", "5000"])
@pytest.mark.parametrize("shape", ["flow-lists", "flow-mappings", "block-lists", "flow-lists-over-lines"])
def test_deep_nesting_is_our_too_deep_diagnostic_whichever_parser_notices_first(
        tmp_path: Path, parser: str, shape: str, levels: int) -> None:
    text, line = _nested(shape, levels)
    stack_file, diags = _validate_json(tmp_path, text)
    assert [(d["code"], d["file"], d["line"]) for d in diags] == [("yaml.too-deep", str(stack_file), line)], diags
    assert f"nested more than {MAX_NESTING} levels" in str(diags[0]["summary"])


def test_deep_nesting_in_text_output_is_file_line_and_our_words(tmp_path: Path, parser: str) -> None:
    stack_file, out = _validate(tmp_path, _nested("flow-lists", 5000)[0])
    assert out[0].startswith(f"{stack_file}:3: lists and mappings are nested more than {MAX_NESTING} levels"), out


def test_nesting_within_the_limit_still_loads(parser: str) -> None:
    text = HEAD + "x: " + "[" * (MAX_NESTING - 2) + "1" + "]" * (MAX_NESTING - 2) + "\n"
    with pytest.raises(Exception) as info:
        load_stack_text(text, file="s.yaml", name="s")
    codes = [d.code for d in info.value.diagnostics]  # type: ignore[attr-defined]
    assert codes == ["stack.unknown-key"], codes


@pytest.mark.parametrize(("content", "code", "line", "column"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "stack.binary", 3, 1),
    ((HEAD + "prune: fal").encode() + b"\x00se\n", "stack.binary", 3, 11),
    ((HEAD + "prune: false\n").encode() + b"inboundConnectors: []\x07\n", "stack.control-character", 4, 22),
], ids=["binary-file", "nul-byte-in-a-value", "bell-character"])
def test_a_nul_byte_or_control_character_is_named_by_line_and_column(
        tmp_path: Path, parser: str, content: bytes, code: str, line: int, column: int) -> None:
    stack_file, diags = _validate_json(tmp_path, content)
    assert [(d["code"], d["file"], d["line"]) for d in diags] == [(code, str(stack_file), line)], diags
    assert f"line {line}, column {column}" in str(diags[0]["summary"])
    stack_file, out = _validate(tmp_path, content)
    assert out[0].startswith(f"{stack_file}:{line}: "), out
    assert not any("<unicode string>" in o or "position" in o for o in out), out


@pytest.mark.parametrize("text", ["hello\n", "42\n", "'just text'\n"], ids=["word", "number", "quoted"])
def test_a_file_that_is_one_plain_value_is_a_shape_error_not_a_crash(tmp_path: Path, text: str) -> None:
    # The structure check walked a lone scalar's characters as if they were nodes (AttributeError, exit 1 as a bug).
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", "--format", "json", str(stack_file)])
    assert result.exit_code == 1, result.output
    diags = json.loads(result.output)["files"][0]["diagnostics"]
    assert [(d["code"], d["line"]) for d in diags] == [("stack.shape", 1)], diags


@pytest.mark.parametrize("value, tag", [
    ("!!int x", "!!int"), ("!!float y", "!!float"), ("!!bool maybe", "!!bool"),
    ("!!timestamp 2020-13-45", "!!timestamp"),
], ids=["int", "float", "bool", "timestamp"])
def test_an_explicit_tag_the_value_does_not_fit_is_a_diagnostic_not_a_crash(
        tmp_path: Path, parser: str, value: str, tag: str) -> None:
    # pyyaml's constructors raise ValueError / KeyError for these, which ended as "unexpected ValueError".
    stack_file, diags = _validate_json(tmp_path, HEAD + f"inboundConnectors:\n  - name: {value}\n"
                                       "    connectorType: Partner\n    senderDomains: [a.example.com]\n")
    found = [(d["code"], d["line"], d["path"]) for d in diags if d["code"] == "yaml.value"]
    assert found == [("yaml.value", 4, "inboundConnectors[0].name")], diags
    assert any(f"as {tag}: remove the {tag} tag" in str(d["summary"]) for d in diags), diags
