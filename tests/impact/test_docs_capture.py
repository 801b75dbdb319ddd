"""docs/routing.md and docs/gitops.md show a real impact section and diagram: what the code prints today.

Matrix: the worked example with C3 disabled and a connector C4 added (text plan and the diagram of the markdown
comment) in docs/routing.md; the first preview of the hybrid dev stack (the markdown comment's Mail flow section)
in docs/gitops.md. Each block sits between ``<!-- captured: NAME -->`` and ``<!-- /captured -->``; after an
intended change, regenerate with ``UPDATE_DOCS=1`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import WORKED_EXAMPLE, Project
from .test_change_kinds import DEV_STACK

ROOT = Path(__file__).resolve().parents[2]
CHANGED_EXAMPLE = WORKED_EXAMPLE.replace("  - name: C3\n", "  - name: C3\n    enabled: false\n") + """\
  - name: C4
    recipientDomains: [fabrikam.com]
    useMxRecord: false
    smartHosts: [mx.fabrikam.example]
"""


def _block(doc: Path, name: str) -> tuple[str, re.Match[str]]:
    text = doc.read_text(encoding="utf-8")
    match = re.search(rf"<!-- captured: {name} -->\n(.*?)<!-- /captured -->", text, re.S)
    assert match, f"{doc.name} has no captured block {name}"
    return text, match


def _check(doc: Path, name: str, body: str) -> None:
    text, match = _block(doc, name)
    if os.environ.get("UPDATE_DOCS"):
        doc.write_text(text[:match.start(1)] + body + text[match.end(1):], encoding="utf-8")
        return
    assert match.group(1) == body, f"{doc.name} ({name}) is not what the code prints; rerun with UPDATE_DOCS=1"


def _markdown_section(markdown: str) -> str:
    return markdown[markdown.index("#### Mail flow"):markdown.index("#### Changes")].rstrip("\n") + "\n"


@pytest.mark.parametrize("doc", ["routing"])
def test_the_routing_doc_shows_the_worked_examples_impact_as_the_plan_prints_it(project: Project, doc: str) -> None:
    project.apply(WORKED_EXAMPLE)
    text = project.plan(CHANGED_EXAMPLE, "text")
    section = text[text.index("Mail flow after this plan"):]
    section = section[:section.index("\n\n") + 1]
    _check(ROOT / "docs" / "routing.md", "impact-text", "```text\n" + section + "```\n")
    markdown = project.plan(CHANGED_EXAMPLE, "markdown")
    diagram = re.search(r"```mermaid\n.*?```\n", markdown, re.S)
    assert diagram
    _check(ROOT / "docs" / "routing.md", "impact-diagram", diagram.group(0))


def test_the_gitops_doc_shows_the_dev_stacks_first_mail_flow_section(project: Project) -> None:
    _check(ROOT / "docs" / "gitops.md", "mail-flow-section", _markdown_section(project.plan(DEV_STACK, "markdown")))
