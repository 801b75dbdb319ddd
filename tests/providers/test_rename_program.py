"""The Pulumi program under ``pulumi.runtime.set_mocks``: a connector renamed with ``renamedFrom`` is registered
with an alias to its old logical name, so the engine keeps its URN (an update, not a delete plus a create).

Matrix: a renamed inbound and a renamed outbound connector carry exactly one alias, naming the old object; the
alias sits beside the dependencies (they are kept); objects without renamedFrom carry no alias; renamedFrom is
never a resource input (it is not a field Exchange knows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .mocks import TOKEN, run_program

STACK = """\
tenant:
  emulator: true
acceptedDomains:
  - domainName: contoso.com
inboundConnectors:
  - name: Relay from copiers
    renamedFrom: Relay from printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [203.0.113.10]
  - name: From partner
    senderDomains: [partner.example.com]
outboundConnectors:
  - name: To partner (TLS)
    renamedFrom: To partner
    recipientDomains: [partner.example.com]
"""


def _register(monkeypatch: pytest.MonkeyPatch, root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    from o365_mailflow.providers.program import run

    registered, _ = run_program(monkeypatch, "renamed", lambda: run(root, "renamed"))
    return registered


def test_a_renamed_connector_is_registered_with_an_alias_to_its_old_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "renamed.yaml").write_text(STACK, encoding="utf-8")

    registered = _register(monkeypatch, tmp_path)

    inbound = registered[(TOKEN + "InboundConnector", "relay from copiers")]
    # Its declared spelling (state written before logical names were lower case) and both spellings of the old name.
    assert inbound["aliases"] == ["Relay from copiers", "Relay from printers", "relay from printers"]
    assert inbound["deps"] == {"contoso.com"}  # the alias does not replace the dependencies
    assert inbound["inputs"]["name"] == "Relay from copiers"
    assert "renamedFrom" not in inbound["inputs"]
    outbound = registered[(TOKEN + "OutboundConnector", "to partner (tls)")]
    assert outbound["aliases"] == ["To partner (TLS)", "To partner", "to partner"]
    assert registered[(TOKEN + "InboundConnector", "from partner")]["aliases"] == ["From partner"]
    assert registered[(TOKEN + "AcceptedDomain", "contoso.com")]["aliases"] == []
