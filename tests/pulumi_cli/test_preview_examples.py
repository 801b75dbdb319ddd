"""docs/pulumi-previews.md: what the real ``pulumi preview --diff`` prints, captured here, never written by hand.

Four previews against the emulated tenant: a create, an update with drift made in the admin center, a
replacement, and a delete. Volatile parts (Guids, tenant ids, ports, paths, durations) are replaced by
placeholders. With ``MAILFLOW_UPDATE_DOCS=1`` the test rewrites the file; otherwise it fails when the doc no
longer matches what the CLI prints (only with the CLI version .ci/pulumi-cli pins: another version may lay out
its output differently, which is not a defect of ours).
"""

from __future__ import annotations

import re
import subprocess

import pytest
from doc_capture import GUID, TENANT_DOMAIN, check_file, placeholders, updating

from .conftest import BUILD_SCRIPT, ROOT, Project, pr_stack

DOC = ROOT / "docs" / "pulumi-previews.md"
STACK = pr_stack(name="Relay from office printers", ips="203.0.113.10, 203.0.113.11")
HEADER = """\
# What `pulumi preview --diff` shows

Captured from the real Pulumi CLI by `tests/pulumi_cli/test_preview_examples.py` against the emulated tenant
(Guids, tenant ids, paths and durations replaced by placeholders; routing warnings left out). Regenerate with
`MAILFLOW_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/pulumi_cli/test_preview_examples.py`.
"""


def _pinned_version() -> str:
    text = (BUILD_SCRIPT.parent / "pulumi" / "gomodule" / "go.mod").read_text()
    return re.search(r"github.com/pulumi/pulumi/pkg/v3 (v\S+)", text).group(1)  # type: ignore[union-attr]


_DURATION = re.compile(r"\(\d+(\.\d+)?m?s\)")
_TOTAL = re.compile(r"Duration: \S+")


def _clean(text: str, project: Project) -> str:
    text = placeholders(text, (str(project.root), "<project>"), (GUID, "<guid>"), (_DURATION, ""),
                        (_TOTAL, "Duration: <time>"), (TENANT_DOMAIN, "<tenant>.onmicrosoft.com"))
    lines = []
    skip = False
    for line in text.splitlines():
        if "warning:" in line:  # routing warnings: long, and shown by `mailflow validate` too
            skip = True
            continue
        if skip and (line.startswith("    ") and not line.strip().startswith(("+", "-", "~", "pulumi"))):
            continue
        skip = False
        if line.strip() in ("Diagnostics:", "pulumi:pulumi:Stack (o365-mailflow-test):"):
            continue
        lines.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(_sorted_blocks(lines))).strip() + "\n"


_BLOCK = re.compile(r"^    (\+-|[-+~ ]) ?pulumi-python:")


def _sorted_blocks(lines: list[str]) -> list[str]:
    """Resource blocks in URN order: the engine registers sibling resources in no fixed order."""
    out: list[str] = []
    blocks: list[list[str]] = []
    for line in lines + [""]:
        if _BLOCK.match(line):
            blocks.append([line])
        elif blocks and line.startswith("        "):
            blocks[-1].append(line)
        else:
            out += [row for block in sorted(blocks, key=lambda b: [r for r in b if "[urn=" in r]) for row in block]
            blocks = []
            out.append(line)
    return out[:-1]


def _preview(project: Project, *extra: str) -> str:
    # One step at a time: with parallel steps the order of sibling resources in the output varies.
    return _clean(project.run("preview", "--diff", "--parallel", "1", *extra).stdout, project)


def test_the_documented_previews_are_what_the_cli_prints(project: Project) -> None:
    tenant = project.tenant
    project.write_stack(STACK)
    sections = [("A new stack: everything is created", _preview(project))]
    project.up()

    guid = project.resources("InboundConnector")[0]["id"]
    tenant.invoke("Set-InboundConnector", {"Identity": guid, "SenderIPAddresses": ["203.0.113.10", "192.0.2.50"]})
    sections.append(("Drift: a sender IP changed in the admin center (the diff reads the live tenant)",
                     _preview(project)))
    project.up()

    urn = project.urn("InboundConnector", "relay from office printers")
    sections.append(("A replacement (`--target-replace`): the connector is deleted first, then created",
                     _preview(project, "--target-replace", urn)))

    project.write_stack(STACK[:STACK.index("outboundConnectors:")])
    sections.append(("A connector removed from the stack file: Pulumi deletes it", _preview(project)))

    text = HEADER + "".join(f"\n## {title}\n\n```text\n{body}```\n" for title, body in sections)
    version = subprocess.run(["pulumi", "version"], env=project.env, capture_output=True, text=True).stdout.strip()
    if version != _pinned_version() and not updating():
        pytest.skip(f"pulumi {version} on PATH is not the pinned {_pinned_version()}: its layout may differ")
    check_file(DOC, text)
