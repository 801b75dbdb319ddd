"""The stack loader refuses hostile or broken YAML with a FILE:LINE diagnostic (exit 1), never a hang or a crash.

Reviewer findings: aliases of aliases ("billion laughs") were walked once per use, so a few lines took minutes;
a self-referencing alias or thousands of nesting levels hit Python's recursion limit; a tab used for indentation
gave libyaml's "found character that cannot start any token"; non-UTF-8 bytes were reported by byte offset only.
Each case runs through ``mailflow validate FILE``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from o365_mailflow.cli import main
from o365_mailflow.stack import MAX_ALIAS_EXPANSION, load_stack_text, validate_stack

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
