"""docs/routing.md and docs/gitops.md show a real impact section and diagram: what the code prints today.

Matrix: the worked example with C3 disabled and a connector C4 added (text plan and the diagram of the markdown
comment) in docs/routing.md; the first preview of the hybrid dev stack (the markdown comment's Mail flow section)
in docs/gitops.md. Each block sits between ``<!-- captured: NAME -->`` and ``<!-- /captured -->``; after an
intended change, regenerate with ``MAILFLOW_UPDATE_DOCS=1`` and review the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from doc_capture import check_blocks

from .conftest import WORKED_EXAMPLE, Project
from .test_change_kinds import DEV_STACK

ROOT = Path(__file__).resolve().parents[2]
CHANGED_EXAMPLE = WORKED_EXAMPLE.replace("  - name: C3\n", "  - name: C3\n    enabled: false\n") + """\
  - name: C4
    recipientDomains: [fabrikam.com]
    useMxRecord: false
    smartHosts: [mx.fabrikam.example]
"""


def _check(doc: Path, name: str, body: str) -> None:
    check_blocks(doc, f"<!-- captured: {name} -->\n", body, "<!-- /captured -->")


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
