"""The "Test your relay" transcripts in docs/routing.md and docs/getting-started.md are what the code prints.

Matrix: the printer stack of the docs, applied to a fresh tenant; `mailflow test-relay` from an IP the connector
does not list (refused, exit 2), then from a listed IP (accepted, exit 0). The text output, with the parts that
change per run (port, tenant id, message id) replaced by placeholders, must equal each block between
``<!-- transcript:NAME -->`` markers in both documents (``MAILFLOW_UPDATE_DOCS=1`` rewrites them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from doc_capture import check_blocks, placeholders

DOCS = Path(__file__).resolve().parents[2] / "docs"

PRINTER_STACK = """\
acceptedDomains:
  - domainName: contoso.com
    domainType: Authoritative
inboundConnectors:
  - name: Relay from office printers and apps
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10, 203.0.113.11]
"""

_PORT = re.compile(r"127\.0\.0\.1:\d+")
_MESSAGE_ID = re.compile(r"<[0-9a-f-]{36}@")
_INTERNAL_ID = re.compile(r"InternalId=\d+")
_SIZE = re.compile(r"<message, \d+ bytes>")

RUNS = {
    "refused": (("--source-ip", "198.51.100.20"), 2),
    "accepted": (("--source-ip", "203.0.113.10"), 0),
}


def _normalise(text: str, tenant_id: str) -> str:
    return placeholders(text, (_PORT, "127.0.0.1:PORT"), (tenant_id, "<tenant-id>"), (_MESSAGE_ID, "<MESSAGE-ID@"),
                        (_INTERNAL_ID, "InternalId=N"), (_SIZE, "<message, N bytes>"))


def render(project: Any, name: str) -> str:
    extra, exit_code = RUNS[name]
    result = project.run("test-relay", "--stack", "test", "--from", "scanner@contoso.com", "--to",
                         "someone@fabrikam.example", *extra)
    assert result.exit_code == exit_code, result.output
    return _normalise(result.stdout, project.tenant.config.tenant_id)


@pytest.mark.parametrize("name", sorted(RUNS), ids=sorted(RUNS))
def test_the_documented_transcript_is_what_test_relay_prints(project: Any, name: str) -> None:
    project.write_stack(PRINTER_STACK)
    project.apply()
    printed = render(project, name)
    for doc in (DOCS / "routing.md", DOCS / "getting-started.md"):
        check_blocks(doc, f"<!-- transcript:{name} -->\n```text\n", printed, "```")
