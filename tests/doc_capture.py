"""Text the docs (and golden files) show, captured from what the code prints: one way to compare and regenerate.

Why: a documented transcript, comment or diagram is never written by hand; a test renders it and fails when the
checked-in text differs. With ``MAILFLOW_UPDATE_DOCS=1`` the same test writes it instead (review the diff). Whole
files go through ``check_file``, blocks between markers inside a hand-written doc through ``check_blocks``;
``placeholders`` replaces the parts that change per run (Guids, ports, paths, tenant names).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

UPDATE_ENV = "MAILFLOW_UPDATE_DOCS"
ROOT = Path(__file__).resolve().parents[1]
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The initial domain tests/conftest.py gives every emulated tenant (t + 12 hex digits).
TENANT_DOMAIN = re.compile(r"t[0-9a-f]{12}\.onmicrosoft\.com")


def updating() -> bool:
    return os.environ.get(UPDATE_ENV) == "1"


def placeholders(text: str, *replacements: tuple[str | re.Pattern[str], str]) -> str:
    """``text`` with each (literal or pattern, placeholder) replaced in order, ending in exactly one newline."""
    for old, new in replacements:
        text = old.sub(new, text) if isinstance(old, re.Pattern) else text.replace(old, new)
    return text.rstrip() + "\n"


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _diff(checked_in: str, printed: str) -> str:
    return "\n".join(difflib.unified_diff(checked_in.splitlines(), printed.splitlines(), "checked in",
                                          "printed now", lineterm=""))


def check_file(path: Path, text: str) -> None:
    """``path`` holds exactly ``text`` (with MAILFLOW_UPDATE_DOCS=1: is rewritten to it)."""
    if updating():
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{_name(path)} is missing: run the test with {UPDATE_ENV}=1 to write it"
    stale = _diff(path.read_text(encoding="utf-8"), text)
    assert not stale, f"{_name(path)} is stale (rerun with {UPDATE_ENV}=1):\n{stale}"


def check_blocks(path: Path, opening: str, body: str, closing: str) -> None:
    """Every block of ``path`` between ``opening`` and ``closing`` holds ``body`` (with MAILFLOW_UPDATE_DOCS=1:
    each is rewritten to it); the doc must have at least one such block."""
    text = path.read_text(encoding="utf-8")
    block = re.compile(re.escape(opening) + "(.*?)" + re.escape(closing), re.S)
    found = [match.group(1) for match in block.finditer(text)]
    assert found, f"{_name(path)} has no block opening with {opening!r}"
    if updating():
        path.write_text(block.sub(lambda _: opening + body + closing, text), encoding="utf-8")
        return
    stale = "\n".join(_diff(old, body) for old in found if old != body)
    assert not stale, f"{_name(path)}: the block {opening!r} is stale (rerun with {UPDATE_ENV}=1):\n{stale}"
