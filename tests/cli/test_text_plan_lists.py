"""The text plan (what `mailflow plan` prints and `mailflow apply` asks to confirm) shows list changes item by
item, as the markdown renderer does (issue #16): one changed sender IP out of sixty is a `+` and a `-` line, not
the whole list twice; clearing a list says so; a long SPF record is shown as the 255-byte strings of its TXT
record.
"""

from __future__ import annotations

from reconcile_helpers import Project


def _relay(ips: list[str]) -> str:
    listed = ", ".join(ips)
    return f"""\
inboundConnectors:
  - name: Relay from printers
    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [{listed}]
"""


def test_one_changed_address_out_of_sixty_is_one_added_and_one_removed_line(project: Project) -> None:
    ips = [f"203.0.113.{i}" for i in range(10, 70)]
    project.write_stack(_relay(ips))
    project.apply()
    changed = [ip for ip in ips if ip != "203.0.113.10"] + ["203.0.113.200"]
    project.write_stack(_relay(changed))
    result = project.run("plan", "--stack", "test")
    lines = result.stdout.splitlines()
    assert "      senderIpAddresses: (1 added, 1 removed, 59 unchanged)   (risky)" in lines
    assert "          + 203.0.113.200" in lines and "          - 203.0.113.10" in lines
    assert not any("203.0.113.11" in line for line in lines if "senderIpAddresses" in line or "+" in line)
    head = lines.index("  ~ update InboundConnector 'Relay from printers'")
    change = lines[head:lines.index("          - 203.0.113.10") + 1]
    assert len(change) <= 6 and max(len(line) for line in change) < 120, change


def test_clearing_a_list_lists_each_removed_item(project: Project) -> None:
    project.write_stack("""\
outboundConnectors:
  - name: To partner
    connectorType: Partner
    recipientDomains: [a.example.com, b.example.com]
    comment: x
""")
    project.apply()
    project.write_stack("""\
outboundConnectors:
  - name: To partner
    connectorType: Partner
    recipientDomains: [b.example.com]
    comment: y
""")
    lines = project.run("plan", "--stack", "test").stdout.splitlines()
    assert "      recipientDomains: (0 added, 1 removed, 1 unchanged)   (risky)" in lines
    assert "          - a.example.com" in lines
    assert '      comment: "x" -> "y"' in lines  # scalars keep their before -> after line


def test_a_long_spf_record_is_shown_as_strings_of_at_most_255_bytes(project: Project) -> None:
    ips = [f"203.0.{i // 100}.{(i % 100) * 2}" for i in range(40)]  # every other address: nothing merges
    project.write_stack("acceptedDomains:\n  - domainName: contoso.com\n" + _relay(ips))
    lines = project.run("plan", "--stack", "test").stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("SPF record to publish"))
    assert "strings of at most 255 bytes" in lines[head]
    strings = []
    for line in lines[head + 1:]:
        if not line.startswith('  "'):
            break
        strings.append(line.strip()[1:-1])
    assert len(strings) >= 3 and all(len(s.encode()) <= 255 for s in strings)
    assert "".join(strings).startswith("v=spf1 ip4:203.0.0.0 ") and "".join(strings).endswith("~all")
